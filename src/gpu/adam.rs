//! Adam over the whole flat parameter buffer (`shaders/adam.wgsl`); the step's constants and bias
//! corrections are `ops::adam::AdamStep`'s, computed on the host as the CPU computes them; the
//! learning rate is each network's own, in its record of `hyper` (`gpu/hyper.rs`).

use super::buffers::groups_for;
use super::hyper::HyperLayout;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "adam.wgsl",
    src: include_str!("../../shaders/adam.wgsl"),
};

/// `struct Params` of `adam.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub n: u32,
    pub lr_at: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// The recording's first record in the step table (`step_table.rs`), which holds each
    /// network's bias corrections, and its stride.
    pub step_at: u32,
    pub steps_ms: u32,
    /// Per-model stride (`kernel::Dispatch::per_model`).
    pub params_ms: u32,
    pub hyper_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
crate::uniform!(Params = "Params" {
    n, lr_at, beta1, beta2, eps, step_at, steps_ms, params_ms, hyper_ms, _pad0, _pad1, _pad2
});

/// One step over `n` parameters with [`Launch::adam`]'s betas and eps, each network at its own step
/// (its record of the step table; one that sits the recording out is left unchanged). Binds
/// `grads`, `params`, `m`, `v`, `hyper`, `steps`.
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    pub n: usize,
    /// The adapter's limit on workgroups per dimension (the kernel loops over the rest).
    pub max_workgroups: u32,
}

impl GpuOp for Adam {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "adam"
    }
    fn params(&self, at: &Launch) -> Params {
        let hp = at.adam;
        Params {
            n: self.n as u32,
            lr_at: HyperLayout::LR as u32,
            beta1: hp.beta1,
            beta2: hp.beta2,
            eps: hp.eps,
            step_at: at.step_at as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [
            groups_for(self.n, 256).clamp(1, self.max_workgroups.min(4096)),
            1,
            1,
        ]
    }
}
