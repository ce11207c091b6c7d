//! Multi-head softmax cross-entropy, forward and backward fused (`shaders/softmax_xent.wgsl`).

use super::buffers::{self, groups_for, words};
use super::context::{Bind, GpuContext};
use anyhow::Result;

pub const FILE: &str = "softmax_xent.wgsl";
pub const SRC: &str = include_str!("../../shaders/softmax_xent.wgsl");
/// uniform, logits, labels, dlogits, row losses.
pub const BINDS: &[Bind] = &[
    Bind::Uniform,
    Bind::Read,
    Bind::Read,
    Bind::ReadWrite,
    Bind::ReadWrite,
];

pub fn pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "softmax_xent", BINDS)
}

pub fn params(b: usize, heads: usize, classes: usize, loss_off: usize) -> ([u32; 16], [u32; 3]) {
    (
        words(&[b as u32, heads as u32, classes as u32, loss_off as u32]),
        [groups_for(b, 64), 1, 1],
    )
}

/// One-off: returns `(dlogits, per-example loss)`, for tests.
pub fn run(
    ctx: &GpuContext,
    logits: &[f32],
    labels: &[i32],
    b: usize,
    heads: usize,
    classes: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let lg = buffers::storage_with(ctx, "logits", logits)?;
    let lb = buffers::storage(ctx, "labels", labels.len())?;
    ctx.queue.write_buffer(&lb, 0, bytemuck::cast_slice(labels));
    let dl = buffers::storage(ctx, "dlogits", logits.len())?;
    let rl = buffers::storage(ctx, "row_loss", b)?;
    let (w, g) = params(b, heads, classes, 0);
    buffers::run_once(ctx, &pipeline(ctx)?, BINDS, &w, &[&lg, &lb, &dl, &rl], g, 1)?;
    let mut out = buffers::read_many(ctx, &[(&dl, 0, logits.len()), (&rl, 0, b)])?;
    let rl = out.pop().unwrap_or_default();
    Ok((out.pop().unwrap_or_default(), rl))
}
