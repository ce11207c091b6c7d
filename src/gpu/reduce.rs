//! Loss reduction into the on-device accumulator (`shaders/reduce.wgsl`); the accumulator's
//! slots are `ops::reduce::LossSlots`.

use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use crate::ops::softmax_xent::inv_batch;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "reduce.wgsl",
    src: include_str!("../../shaders/reduce.wgsl"),
};

/// `struct Params` of `reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub src_off: u32,
    pub len: u32,
    pub acc_idx: u32,
    pub scale: f32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub src_ms: u32,
    pub acc_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
crate::uniform!(Params = "Params" { src_off, len, acc_idx, scale, src_ms, acc_ms, _pad0, _pad1 });

/// How many values are summed, and by what they are multiplied.
#[derive(Clone, Copy, Debug)]
pub enum Terms {
    /// One per example of the batch, times `1/B`: the task loss's mean.
    BatchMean,
    /// A fixed count times a fixed scale (a spatial cost's rows).
    Fixed { len: usize, scale: f32 },
}

/// `acc[acc_idx] += scale · Σ src[src_off..+len]`, one workgroup. Binds `src`, `acc`.
#[derive(Clone, Copy, Debug)]
pub struct Reduce {
    pub src_off: usize,
    pub acc_idx: usize,
    pub terms: Terms,
}

impl GpuOp for Reduce {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "reduce_sum"
    }
    fn params(&self, at: &Launch) -> Params {
        let (len, scale) = match self.terms {
            Terms::BatchMean => (at.batch, inv_batch(at.batch)),
            Terms::Fixed { len, scale } => (len, scale),
        };
        Params {
            src_off: self.src_off as u32,
            len: len as u32,
            acc_idx: self.acc_idx as u32,
            scale,
            ..Params::default()
        }
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [1, 1, 1]
    }
}
