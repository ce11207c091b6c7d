//! Accuracy on the device (`shaders/accuracy.wgsl`): per row and head, the argmax of the head's
//! logits against the label, added to per-head `(correct, total)` counters; the contract and CPU
//! twin are `ops::accuracy`. The evaluation that records it is `gpu/evaluate.rs`.

use super::buffers::groups_for;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "accuracy.wgsl",
    src: include_str!("../../shaders/accuracy.wgsl"),
};

/// `struct Params` of `accuracy.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub b: u32,
    pub first: u32,
    pub heads: u32,
    pub width: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub logits_ms: u32,
    pub counts_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
crate::uniform!(Params = "Params" { b, first, heads, width, logits_ms, counts_ms, _pad0, _pad1 });

/// `u32`s of the counters per network: `(correct, total)` per head.
pub fn counts_len(heads: usize) -> usize {
    2 * heads
}

/// Counts the [`Launch::batch`] rows of the logits, whose labels start at row [`Launch::first`]
/// of `labels`. Binds `logits`, `labels`, `head_offsets` (`heads + 1` `u32`s, see
/// `softmax_xent::offsets_bytes`) and `counts` ([`counts_len`] `u32`s per network, added to).
#[derive(Clone, Copy, Debug)]
pub struct Accuracy {
    pub heads: usize,
    /// Logits per row (the output layer's width).
    pub width: usize,
}

impl GpuOp for Accuracy {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "count_correct"
    }
    fn params(&self, at: &Launch) -> Params {
        Params {
            b: at.batch as u32,
            first: at.first as u32,
            heads: self.heads as u32,
            width: self.width as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        [groups_for(at.batch, 64), 1, 1]
    }
}
