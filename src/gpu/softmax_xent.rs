//! Multi-head softmax cross-entropy, forward and backward fused, heads of any sizes
//! (`shaders/softmax_xent.wgsl`); the contract (shapes, label checks, `1/B`) is
//! `ops::softmax_xent`.

use super::buffers::groups_for;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "softmax_xent.wgsl",
    src: include_str!("../../shaders/softmax_xent.wgsl"),
};

/// `struct Params` of `softmax_xent.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub b: u32,
    pub heads: u32,
    pub width: u32,
    pub loss_off: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub logits_ms: u32,
    pub labels_ms: u32,
    pub row_loss_ms: u32,
    /// The recording's first record in the step table (`step_table.rs`), and its stride.
    pub step_at: u32,
    pub steps_ms: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
crate::uniform!(Params = "Params" {
    b, heads, width, loss_off, logits_ms, labels_ms, row_loss_ms, step_at, steps_ms, _pad0, _pad1, _pad2
});

/// The loss of a batch: `dlogits` and the per-example losses at `row_loss[loss_off..]`, over each
/// network's own rows (its record of the step table). Binds `logits`, `labels`, `dlogits`,
/// `row_loss`, `head_offsets` (`heads + 1` `u32`s, see [`offsets_bytes`]) and `steps`.
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxXent {
    pub heads: usize,
    /// Logits per example (the output layer's width).
    pub width: usize,
    pub loss_off: usize,
}

/// The `head_offsets` buffer's content: `ModelConfig::head_offsets` as `u32`s.
pub fn offsets_bytes(offsets: &[usize]) -> Vec<u8> {
    let v: Vec<u32> = offsets.iter().map(|&o| o as u32).collect();
    bytemuck::cast_slice(&v).to_vec()
}

impl GpuOp for SoftmaxXent {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "softmax_xent"
    }
    fn params(&self, at: &Launch) -> Params {
        Params {
            b: at.batch as u32,
            heads: self.heads as u32,
            width: self.width as u32,
            loss_off: self.loss_off as u32,
            step_at: at.step_at as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        [groups_for(at.batch, 64), 1, 1]
    }
}
