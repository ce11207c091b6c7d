//! Evaluation mask (`shaders/mask.wgsl`): `acts (batch, n) *= keep[keep_off + column]`; the
//! contract (flattening and checking a `NeuronMask`) is `ops::mask`.

use super::buffers::groups_for;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "mask.wgsl",
    src: include_str!("../../shaders/mask.wgsl"),
};

/// `struct Params` of `mask.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub rows: u32,
    pub n: u32,
    pub keep_off: u32,
    /// Per-model stride of `acts` (`kernel::Dispatch::per_model`).
    pub acts_ms: u32,
}
crate::uniform!(Params = "Params" { rows, n, keep_off, acts_ms });

/// One layer's mask. Binds `keep`, `acts`.
#[derive(Clone, Copy, Debug)]
pub struct Mask {
    pub n: usize,
    pub keep_off: usize,
    /// The adapter's limit on workgroups per dimension (the kernel loops over the rest).
    pub max_workgroups: u32,
}

impl GpuOp for Mask {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        "mask_columns"
    }
    fn params(&self, at: &Launch) -> Params {
        Params {
            rows: at.batch as u32,
            n: self.n as u32,
            keep_off: self.keep_off as u32,
            acts_ms: 0,
        }
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        [
            groups_for(at.batch * self.n, 256).clamp(1, self.max_workgroups.min(4096)),
            1,
            1,
        ]
    }
}
