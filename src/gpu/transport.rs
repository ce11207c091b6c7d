//! Transport cost of one layer, forward and backward fused (`shaders/transport.wgsl`).

use super::buffers::{self, words};
use super::context::{Bind, GpuContext};
use crate::config::{TransportNorm, WeightNorm};
use crate::cpu::transport::transport_scale;
use anyhow::Result;

pub const FILE: &str = "transport.wgsl";
pub const SRC: &str = include_str!("../../shaders/transport.wgsl");
/// uniform, params, grads, partials.
pub const BINDS: &[Bind] = &[Bind::Uniform, Bind::Read, Bind::ReadWrite, Bind::ReadWrite];

pub fn rows_pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "transport_rows", BINDS)
}
pub fn cols_pipeline(ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
    ctx.pipeline(FILE, SRC, "transport_cols", BINDS)
}

/// One layer's transport: where its tensors sit in the flat buffers and how it is weighted.
#[derive(Clone, Copy, Debug)]
pub struct TransportArgs {
    pub c: usize,
    pub oc: usize,
    pub w_off: usize,
    pub pin_off: usize,
    pub pout_off: usize,
    pub partial_off: usize,
    pub norm: TransportNorm,
    pub weight_norm: WeightNorm,
    /// The weight of `T` in the total loss (`alpha / |L|`).
    pub coeff: f32,
}

impl TransportArgs {
    /// The normalising constant, the same f32 as the CPU's.
    pub fn scale(&self) -> f32 {
        transport_scale(self.norm, self.c, self.oc)
    }
    pub fn words(&self) -> [u32; 16] {
        let g = self.coeff * self.scale();
        words(&[
            self.c as u32,
            self.oc as u32,
            self.w_off as u32,
            self.pin_off as u32,
            self.pout_off as u32,
            self.partial_off as u32,
            (self.weight_norm == WeightNorm::L2) as u32,
            0,
            g.to_bits(),
        ])
    }
    pub fn rows_groups(&self) -> [u32; 3] {
        [self.oc as u32, 1, 1]
    }
    pub fn cols_groups(&self) -> [u32; 3] {
        [self.c as u32, 1, 1]
    }
}

/// One-off on host data laid out as one flat `params`/`grads` pair; returns the new `grads` and
/// the value `T`. For tests.
pub fn run(ctx: &GpuContext, args: &TransportArgs, params: &[f32], grads: &[f32]) -> Result<(Vec<f32>, f64)> {
    let p = buffers::storage_with(ctx, "params", params)?;
    let g = buffers::storage_with(ctx, "grads", grads)?;
    let part = buffers::storage(ctx, "partials", args.partial_off + args.oc)?;
    let bufs = [&p, &g, &part];
    buffers::run_once(
        ctx,
        &rows_pipeline(ctx)?,
        BINDS,
        &args.words(),
        &bufs,
        args.rows_groups(),
        1,
    )?;
    buffers::run_once(
        ctx,
        &cols_pipeline(ctx)?,
        BINDS,
        &args.words(),
        &bufs,
        args.cols_groups(),
        1,
    )?;
    let mut out = buffers::read_many(ctx, &[(&g, 0, grads.len()), (&part, args.partial_off, args.oc)])?;
    let rows = out.pop().unwrap_or_default();
    let value = rows.iter().map(|&v| v as f64).sum::<f64>() * args.scale() as f64;
    Ok((out.pop().unwrap_or_default(), value))
}
