//! Multi-head softmax cross-entropy, forward and backward fused (`shaders/softmax_xent.wgsl`);
//! the contract (shapes, label checks, `1/B`) is `ops::softmax_xent`.

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
    pub classes: u32,
    pub loss_off: u32,
}
crate::uniform!(Params = "Params" { b, heads, classes, loss_off });

/// The loss of a batch: `dlogits` and the per-example losses at `row_loss[loss_off..]`. Binds
/// `logits`, `labels`, `dlogits`, `row_loss`.
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxXent {
    pub heads: usize,
    pub classes: usize,
    pub loss_off: usize,
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
            classes: self.classes as u32,
            loss_off: self.loss_off as u32,
        }
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        [groups_for(at.batch, 64), 1, 1]
    }
}
