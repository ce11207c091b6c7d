//! Density cost of one layer, forward and backward fused (`shaders/density.wgsl`); its scale
//! `1/N²` is `ops::density::density_scale`, its factor `g = (beta / |L|) / N²` each network's own,
//! in its record of `hyper` (`gpu/hyper.rs`).

use super::hyper::HyperLayout;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "density.wgsl",
    src: include_str!("../../shaders/density.wgsl"),
};

/// `struct Params` of `density.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub p_off: u32,
    pub partial_off: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub params_ms: u32,
    pub g_at: u32,
    pub partials_ms: u32,
    pub hyper_ms: u32,
    pub _pad3: u32,
}
crate::uniform!(Params = "Params" { n, p_off, partial_off, params_ms, g_at, partials_ms, hyper_ms, _pad3 });

/// `n` neurons at `p_off`, spatial layer number `spatial` (whose factor `g` each network's record
/// of `hyper` holds); the row sums go to `partials[partial_off..+n]`. Binds `params`, `grads`,
/// `partials`, `hyper`.
#[derive(Clone, Copy, Debug)]
pub struct Density {
    pub n: usize,
    pub p_off: usize,
    pub partial_off: usize,
    pub spatial: usize,
}

impl GpuOp for Density {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "density"
    }
    fn params(&self, _: &Launch) -> Params {
        Params {
            n: self.n as u32,
            p_off: self.p_off as u32,
            partial_off: self.partial_off as u32,
            g_at: HyperLayout::density_g(self.spatial) as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [self.n as u32, 1, 1]
    }
}
