//! Adam over the whole flat parameter buffer (`shaders/adam.wgsl`).

use super::buffers::{self, groups_for, words};
use super::context::{Bind, GpuContext};
use crate::cpu::adam::AdamStep;
use anyhow::Result;

pub const FILE: &str = "adam.wgsl";
pub const SRC: &str = include_str!("../../shaders/adam.wgsl");
/// uniform, grads, params, m, v.
pub const BINDS: &[Bind] = &[
    Bind::Uniform,
    Bind::Read,
    Bind::ReadWrite,
    Bind::ReadWrite,
    Bind::ReadWrite,
];

pub fn pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "adam", BINDS)
}

/// Uniform and workgroups of one step over `n` elements; the bias corrections are the CPU's.
pub fn params(ctx: &GpuContext, n: usize, hp: AdamStep) -> ([u32; 16], [u32; 3]) {
    let (c1, c2) = hp.corrections();
    let g = groups_for(n, 256).clamp(1, ctx.caps.max_workgroups.min(4096));
    let w = words(&[
        n as u32,
        hp.lr.to_bits(),
        hp.beta1.to_bits(),
        hp.beta2.to_bits(),
        hp.eps.to_bits(),
        c1.to_bits(),
        c2.to_bits(),
    ]);
    (w, [g, 1, 1])
}

/// One-off: returns `(params, m, v)` after one step. For tests.
pub fn run(
    ctx: &GpuContext,
    hp: AdamStep,
    params_data: &[f32],
    grads: &[f32],
    m: &[f32],
    v: &[f32],
) -> Result<[Vec<f32>; 3]> {
    let n = params_data.len();
    let g = buffers::storage_with(ctx, "grads", grads)?;
    let p = buffers::storage_with(ctx, "params", params_data)?;
    let mb = buffers::storage_with(ctx, "m", m)?;
    let vb = buffers::storage_with(ctx, "v", v)?;
    let (w, groups) = params(ctx, n, hp);
    buffers::run_once(ctx, &pipeline(ctx)?, BINDS, &w, &[&g, &p, &mb, &vb], groups, 1)?;
    let mut out = buffers::read_many(ctx, &[(&p, 0, n), (&mb, 0, n), (&vb, 0, n)])?;
    let v = out.pop().unwrap_or_default();
    let m = out.pop().unwrap_or_default();
    Ok([out.pop().unwrap_or_default(), m, v])
}
