//! Bias gradient of a dense layer (`shaders/bias_grad.wgsl`): `dbias = Σ_rows dout`. The bias add,
//! the activation and its derivative are fused into the matmul epilogue (`matmul.rs`).

use super::buffers::groups_for;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "bias_grad.wgsl",
    src: include_str!("../../shaders/bias_grad.wgsl"),
};

/// `struct Params` of `bias_grad.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub n: u32,
    pub dbias_off: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub dout_ms: u32,
    pub grads_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
crate::uniform!(Params = "Params" { rows, n, dbias_off, dout_ms, grads_ms, _pad0, _pad1, _pad2 });

/// `grads[dbias_off..+n] = Σ_rows dout (batch, n)`. Binds `dout`, `grads`.
#[derive(Clone, Copy, Debug)]
pub struct BiasGrad {
    pub n: usize,
    pub dbias_off: usize,
}

impl GpuOp for BiasGrad {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "bias_grad"
    }
    fn params(&self, at: &Launch) -> Params {
        Params {
            rows: at.batch as u32,
            n: self.n as u32,
            dbias_off: self.dbias_off as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [groups_for(self.n, 64), 1, 1]
    }
}
