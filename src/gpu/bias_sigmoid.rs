//! Bias gradient and evaluation mask (`shaders/bias_sigmoid.wgsl`); the bias add, the sigmoid and
//! its derivative are fused into the matmul epilogue.

use super::buffers::{self, groups_for, words};
use super::context::{Bind, GpuContext};
use anyhow::Result;

pub const FILE: &str = "bias_sigmoid.wgsl";
pub const SRC: &str = include_str!("../../shaders/bias_sigmoid.wgsl");
/// uniform, src, dst.
pub const BINDS: &[Bind] = &[Bind::Uniform, Bind::Read, Bind::ReadWrite];

pub fn bias_grad_pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "bias_grad", BINDS)
}
pub fn mask_pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "mask_columns", BINDS)
}

/// `dbias[dst_off..+n] = Σ_rows dout (rows, n)`.
pub fn bias_grad_words(rows: usize, n: usize, dst_off: usize) -> ([u32; 16], [u32; 3]) {
    (
        words(&[rows as u32, n as u32, 0, dst_off as u32]),
        [groups_for(n, 64), 1, 1],
    )
}

/// `x (rows, n) *= keep[keep_off + column]`.
pub fn mask_words(ctx: &GpuContext, rows: usize, n: usize, keep_off: usize) -> ([u32; 16], [u32; 3]) {
    let g = groups_for(rows * n, 256).clamp(1, ctx.caps.max_workgroups.min(4096));
    (words(&[rows as u32, n as u32, keep_off as u32, 0]), [g, 1, 1])
}

/// One-off bias gradient of `dout (rows, n)`, for tests.
pub fn run_bias_grad(ctx: &GpuContext, dout: &[f32], rows: usize, n: usize) -> Result<Vec<f32>> {
    let src = buffers::storage_with(ctx, "dout", dout)?;
    let dst = buffers::storage(ctx, "dbias", n)?;
    let (w, g) = bias_grad_words(rows, n, 0);
    buffers::run_once(ctx, &bias_grad_pipeline(ctx)?, BINDS, &w, &[&src, &dst], g, 1)?;
    buffers::read(ctx, &dst, 0, n)
}
