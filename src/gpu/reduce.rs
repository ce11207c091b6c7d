//! Loss reduction into the on-device accumulator (`shaders/reduce.wgsl`).

use super::buffers::{self, words};
use super::context::{Bind, GpuContext};
use anyhow::Result;

pub const FILE: &str = "reduce.wgsl";
pub const SRC: &str = include_str!("../../shaders/reduce.wgsl");
/// uniform, src, acc.
pub const BINDS: &[Bind] = &[Bind::Uniform, Bind::Read, Bind::ReadWrite];

pub fn pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "reduce_sum", BINDS)
}

/// `acc[acc_idx] += scale · Σ src[src_off..src_off + len]`, one workgroup.
pub fn params(src_off: usize, len: usize, acc_idx: usize, scale: f32) -> ([u32; 16], [u32; 3]) {
    (
        words(&[src_off as u32, len as u32, acc_idx as u32, scale.to_bits()]),
        [1, 1, 1],
    )
}

/// One-off sum of `src` times `scale`, for tests.
pub fn run(ctx: &GpuContext, src: &[f32], scale: f32) -> Result<f32> {
    let s = buffers::storage_with(ctx, "src", src)?;
    let acc = buffers::storage(ctx, "acc", 1)?;
    let (w, g) = params(0, src.len(), 0, scale);
    buffers::run_once(ctx, &pipeline(ctx)?, BINDS, &w, &[&s, &acc], g, 1)?;
    Ok(buffers::read(ctx, &acc, 0, 1)?[0])
}
