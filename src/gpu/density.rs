//! Density cost of one layer, forward and backward fused (`shaders/density.wgsl`).

use super::buffers::{self, words};
use super::context::{Bind, GpuContext};
use anyhow::Result;

pub const FILE: &str = "density.wgsl";
pub const SRC: &str = include_str!("../../shaders/density.wgsl");
/// uniform, params, grads, partials.
pub const BINDS: &[Bind] = &[Bind::Uniform, Bind::Read, Bind::ReadWrite, Bind::ReadWrite];

pub fn pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "density", BINDS)
}

/// `1/N²`, the same f32 as the CPU's.
pub fn inv_n2(n: usize) -> f32 {
    1.0 / (n as f32 * n as f32)
}

/// Uniform and workgroups for `n` neurons at `p_off`, weight `coeff` (`beta / |L|`).
pub fn params(n: usize, p_off: usize, partial_off: usize, coeff: f32) -> ([u32; 16], [u32; 3]) {
    let g = coeff * inv_n2(n);
    (
        words(&[n as u32, p_off as u32, partial_off as u32, 0, g.to_bits()]),
        [n as u32, 1, 1],
    )
}

/// One-off on host data; returns the new `grads` and the value `V`. For tests.
pub fn run(
    ctx: &GpuContext,
    n: usize,
    p_off: usize,
    coeff: f32,
    params_data: &[f32],
    grads: &[f32],
) -> Result<(Vec<f32>, f64)> {
    let p = buffers::storage_with(ctx, "params", params_data)?;
    let g = buffers::storage_with(ctx, "grads", grads)?;
    let part = buffers::storage(ctx, "partials", n)?;
    let (w, groups) = params(n, p_off, 0, coeff);
    buffers::run_once(ctx, &pipeline(ctx)?, BINDS, &w, &[&p, &g, &part], groups, 1)?;
    let mut out = buffers::read_many(ctx, &[(&g, 0, grads.len()), (&part, 0, n)])?;
    let rows = out.pop().unwrap_or_default();
    let value = rows.iter().map(|&v| v as f64).sum::<f64>() * inv_n2(n) as f64;
    Ok((out.pop().unwrap_or_default(), value))
}
