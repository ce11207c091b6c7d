//! Transport cost of one layer, forward and backward fused (`shaders/transport.wgsl`): two
//! passes, rows (`dW`, `dp_out`, the value) then columns (`dp_in`). The scale is
//! `ops::transport::transport_scale`; the factor `g`, the weight norm and the scale are each
//! network's own, in its record of `hyper` (`gpu/hyper.rs`), so that the networks of a population
//! may differ in alpha and both norms.

use super::hyper::HyperLayout;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "transport.wgsl",
    src: include_str!("../../shaders/transport.wgsl"),
};

/// `struct Params` of `transport.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub c: u32,
    pub oc: u32,
    pub w_off: u32,
    pub pin_off: u32,
    pub pout_off: u32,
    pub partial_off: u32,
    pub l2_at: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub params_ms: u32,
    pub g_at: u32,
    pub partials_ms: u32,
    pub hyper_ms: u32,
    pub _pad3: u32,
}
crate::uniform!(Params = "Params" {
    c, oc, w_off, pin_off, pout_off, partial_off, l2_at, params_ms, g_at, partials_ms, hyper_ms, _pad3
});

/// One layer's transport: where its tensors sit in the flat buffers, and which spatial layer it is
/// (where its weighting sits in each network's record of `hyper`).
#[derive(Clone, Copy, Debug)]
pub struct TransportArgs {
    pub c: usize,
    pub oc: usize,
    pub w_off: usize,
    pub pin_off: usize,
    pub pout_off: usize,
    pub partial_off: usize,
    /// The layer's number among the spatial layers.
    pub spatial: usize,
}

impl TransportArgs {
    pub fn params(&self) -> Params {
        Params {
            c: self.c as u32,
            oc: self.oc as u32,
            w_off: self.w_off as u32,
            pin_off: self.pin_off as u32,
            pout_off: self.pout_off as u32,
            partial_off: self.partial_off as u32,
            l2_at: HyperLayout::transport_l2(self.spatial) as u32,
            g_at: HyperLayout::transport_g(self.spatial) as u32,
            ..Params::default()
        }
    }
}

/// The rows pass: one workgroup per output neuron. Binds `params`, `grads`, `partials`, `hyper`.
#[derive(Clone, Copy, Debug)]
pub struct TransportRows(pub TransportArgs);

/// The columns pass: one workgroup per input neuron. Binds `params`, `grads`, `partials`, `hyper`.
#[derive(Clone, Copy, Debug)]
pub struct TransportCols(pub TransportArgs);

impl GpuOp for TransportRows {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "transport_rows"
    }
    fn params(&self, _: &Launch) -> Params {
        self.0.params()
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [self.0.oc as u32, 1, 1]
    }
}

impl GpuOp for TransportCols {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "transport_cols"
    }
    fn params(&self, _: &Launch) -> Params {
        self.0.params()
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [self.0.c as u32, 1, 1]
    }
}
