//! Transport cost of one layer, forward and backward fused (`shaders/transport.wgsl`): two
//! passes, rows (`dW`, `dp_out`, the value) then columns (`dp_in`). The scale is
//! `ops::transport::transport_scale`.

use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use crate::config::{TransportNorm, WeightNorm};
use crate::ops::transport::transport_scale;
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
    pub l2: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub params_ms: u32,
    pub g: f32,
    pub partials_ms: u32,
    pub _pad2: u32,
    pub _pad3: u32,
}
crate::uniform!(Params = "Params" {
    c, oc, w_off, pin_off, pout_off, partial_off, l2, params_ms, g, partials_ms, _pad2, _pad3
});

/// One layer's transport: where its tensors sit in the flat buffers and how it is weighted.
#[derive(Clone, Copy, Debug)]
pub struct TransportArgs {
    pub c: usize,
    pub oc: usize,
    pub w_off: usize,
    pub pin_off: usize,
    pub pout_off: usize,
    pub partial_off: usize,
    pub norm: TransportNorm,
    pub weight_norm: WeightNorm,
    /// The weight of `T` in the total loss (`alpha / |L|`).
    pub coeff: f32,
}

impl TransportArgs {
    /// The normalising constant, the same f32 as the CPU's.
    pub fn scale(&self) -> f32 {
        transport_scale(self.norm, self.c, self.oc)
    }

    pub fn params(&self) -> Params {
        Params {
            c: self.c as u32,
            oc: self.oc as u32,
            w_off: self.w_off as u32,
            pin_off: self.pin_off as u32,
            pout_off: self.pout_off as u32,
            partial_off: self.partial_off as u32,
            l2: (self.weight_norm == WeightNorm::L2) as u32,
            g: self.coeff * self.scale(),
            ..Params::default()
        }
    }
}

/// The rows pass: one workgroup per output neuron. Binds `params`, `grads`, `partials`.
#[derive(Clone, Copy, Debug)]
pub struct TransportRows(pub TransportArgs);

/// The columns pass: one workgroup per input neuron. Binds `params`, `grads`, `partials`.
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
