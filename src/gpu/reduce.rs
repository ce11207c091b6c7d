//! Loss reduction into the on-device accumulator (`shaders/reduce.wgsl`); the accumulator's
//! slots are `ops::reduce::LossSlots`. A factor that differs between the networks of a population
//! (the transport normalisation) is read from each network's record of `hyper` (`gpu/hyper.rs`).

use super::hyper::HyperLayout;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
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
    pub scale_at: u32,
    pub hyper_ms: u32,
    /// 1: also times each network's own `1/B` (its record of the step table, `step_table.rs`).
    pub batch_mean: u32,
    pub step_at: u32,
    pub steps_ms: u32,
    pub _pad: u32,
}
crate::uniform!(Params = "Params" {
    src_off, len, acc_idx, scale, src_ms, acc_ms, scale_at, hyper_ms, batch_mean, step_at, steps_ms, _pad
});

/// How many values are summed, and by what they are multiplied.
#[derive(Clone, Copy, Debug)]
pub enum Terms {
    /// One per example of the batch, times each network's own `1/B`: the task loss's mean.
    BatchMean,
    /// A fixed count times a fixed scale (a density's rows: `1/N²`).
    Fixed { len: usize, scale: f32 },
    /// A fixed count times each network's own value at `at` of its record of `hyper` (a
    /// transport's rows: the normalisation, which the networks of a population may choose apart).
    Hyper { len: usize, at: usize },
}

/// `acc[acc_idx] += scale · Σ src[src_off..+len]`, one workgroup per network; a network that sits
/// the recording out (step table) adds nothing. Binds `src`, `acc`, `hyper`, `steps`.
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
        let (len, scale, scale_at) = match self.terms {
            Terms::BatchMean => (at.batch, 1.0, HyperLayout::ONE),
            Terms::Fixed { len, scale } => (len, scale, HyperLayout::ONE),
            Terms::Hyper { len, at } => (len, 1.0, at),
        };
        Params {
            src_off: self.src_off as u32,
            len: len as u32,
            acc_idx: self.acc_idx as u32,
            scale,
            scale_at: scale_at as u32,
            batch_mean: matches!(self.terms, Terms::BatchMean) as u32,
            step_at: at.step_at as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, _: &Launch) -> [u32; 3] {
        [1, 1, 1]
    }
}
