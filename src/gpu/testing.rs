//! One-off kernel runs on host data, for the kernel tests (`tests/gpu_kernels.rs`) and the
//! benchmarks: each builds its buffers, runs one op of the engine once through the same named
//! bindings as the plans, and reads the result back (waits). Inputs are checked against the op's
//! contract in `ops::*` first.

use super::accuracy::{counts_len, Accuracy};
use super::adam::Adam;
use super::bias_grad::BiasGrad;
use super::buffers::{self, Uniforms};
use super::context::GpuContext;
use super::density::Density;
use super::hyper::HyperLayout;
use super::kernel::{GpuOp, Kernel, Launch};
use super::matmul::{BatchDim, MatmulArgs, MatmulOp, Variant};
use super::reduce::{Reduce, Terms};
use super::softmax_xent::SoftmaxXent;
use super::step_table::{self, StepRecord};
use super::transport::{TransportArgs, TransportCols, TransportRows};
use crate::config::{TrainConfig, TransportNorm, WeightNorm};
use crate::ops::adam::AdamStep;
use crate::ops::density::density_scale;
use crate::ops::softmax_xent::SoftmaxXentShape;
use crate::ops::{self, expect_at_least};
use anyhow::Result;

/// A launch at batch `batch` and the default optimiser's first step (only Adam reads it).
pub fn launch(batch: usize) -> Launch {
    Launch {
        batch,
        adam: AdamStep::of(&TrainConfig::default(), 1),
        step_at: 0,
        networks: None,
        first: 0,
    }
}

/// A step table of one network's one record: a batch of `rows` rows from 0 at Adam step `adam`
/// (the kernels that read the table: the loss, the loss reduction, Adam, the gather).
pub fn step_record(ctx: &GpuContext, rows: usize, adam: AdamStep) -> Result<wgpu::Buffer> {
    let buf = buffers::storage(ctx, "step table", step_table::WORDS)?;
    let rec = StepRecord::active(rows, 0, 0, adam);
    ctx.queue
        .write_buffer(&buf, 0, step_table::bytes(std::slice::from_ref(&rec)));
    Ok(buf)
}

/// An op bound to its buffers with its own uniform buffer, ready to record (for benchmarks).
pub struct Bound {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub groups: [u32; 3],
    _uniforms: Uniforms,
}

/// Binds `op` to `buffers` (by name) with its uniform block for `at`.
pub fn bind(
    ctx: &GpuContext,
    op: &dyn Kernel,
    buffers: &[(&str, &wgpu::Buffer)],
    at: &Launch,
) -> Result<Bound> {
    let mut uniforms = Uniforms::new(ctx, "one-off uniforms", 1);
    op.write_uniform(at, &mut uniforms, 0);
    uniforms.upload(ctx);
    let bind_group = ctx.bind_group(op.shader(), uniforms.binding(0, op.uniform_size()), buffers)?;
    Ok(Bound {
        pipeline: ctx.pipeline(op.shader(), op.entry())?,
        bind_group,
        groups: op.workgroups(at),
        _uniforms: uniforms,
    })
}

/// Runs `op` once on `buffers` at `at` and waits.
pub fn run_once(
    ctx: &GpuContext,
    op: &impl GpuOp,
    buffers: &[(&str, &wgpu::Buffer)],
    at: &Launch,
) -> Result<()> {
    let bound = bind(ctx, op, buffers, at)?;
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("one-off"),
        });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        buffers::dispatch(&mut pass, &bound.pipeline, &bound.bind_group, bound.groups);
    }
    ctx.queue.submit([enc.finish()]);
    ctx.wait()
}

/// One product on host data; returns `c` afterwards (`c` holds its initial value, for
/// ACCUMULATE). Unused operands may be empty.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    ctx: &GpuContext,
    variant: Variant,
    args: &MatmulArgs,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    aux: &[f32],
    c: &[f32],
) -> Result<Vec<f32>> {
    expect_at_least("linear", "the output", c.len(), args.m * args.n)?;
    let st = |label, data| buffers::storage_with(ctx, label, data);
    let (ab, bb, biasb, auxb, cb) = (
        st("a", a)?,
        st("b", b)?,
        st("bias", bias)?,
        st("aux", aux)?,
        st("c", c)?,
    );
    let op = MatmulOp {
        args: *args,
        batch_dim: BatchDim::M,
        variant,
    };
    let named = [
        ("a", &ab),
        ("b", &bb),
        ("bias", &biasb),
        ("aux", &auxb),
        ("c", &cb),
    ];
    run_once(ctx, &op, &named, &launch(args.m))?;
    buffers::read(ctx, &cb, 0, c.len())
}

/// Bias gradient of `dout (rows, n)`.
pub fn bias_grad(ctx: &GpuContext, dout: &[f32], rows: usize, n: usize) -> Result<Vec<f32>> {
    ops::expect_len("linear", "the output gradient", dout.len(), rows * n)?;
    let src = buffers::storage_with(ctx, "dout", dout)?;
    let dst = buffers::storage(ctx, "dbias", n)?;
    let op = BiasGrad { n, dbias_off: 0 };
    run_once(ctx, &op, &[("dout", &src), ("grads", &dst)], &launch(rows))?;
    buffers::read(ctx, &dst, 0, n)
}

/// A `hyper` buffer of one network's record: `lr`, and spatial layer 0 as `set` writes it.
fn one_record(ctx: &GpuContext, lr: f32, set: impl FnOnce(&mut [f32])) -> Result<wgpu::Buffer> {
    let mut r = HyperLayout { spatial: 1 }.empty_record(lr);
    set(&mut r);
    buffers::storage_with(ctx, "hyperparameters", &r)
}

/// Sum of `src` times `scale`, the scale given in the uniform block (`per_network`: false) or
/// read from the network's record of `hyper` (true, as a transport's normalisation is).
pub fn reduce(ctx: &GpuContext, src: &[f32], scale: f32, per_network: bool) -> Result<f32> {
    let s = buffers::storage_with(ctx, "src", src)?;
    let acc = buffers::storage(ctx, "acc", 1)?;
    let len = src.len();
    let at = HyperLayout::transport_scale(0);
    let hyper = one_record(ctx, 0.0, |r| r[at] = scale)?;
    let terms = if per_network {
        Terms::Hyper { len, at }
    } else {
        Terms::Fixed { len, scale }
    };
    let op = Reduce {
        src_off: 0,
        acc_idx: 0,
        terms,
    };
    let steps = step_record(ctx, 1, launch(1).adam)?;
    run_once(
        ctx,
        &op,
        &[("src", &s), ("acc", &acc), ("hyper", &hyper), ("steps", &steps)],
        &launch(1),
    )?;
    Ok(buffers::read(ctx, &acc, 0, 1)?[0])
}

/// Returns `(dlogits, per-example loss)`.
pub fn softmax_xent(
    ctx: &GpuContext,
    logits: &[f32],
    labels: &[i32],
    b: usize,
    offsets: &[usize],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let shape = SoftmaxXentShape { batch: b, offsets };
    shape.check(logits.len(), labels)?;
    let offs = buffers::storage(ctx, "head offsets", offsets.len())?;
    ctx.queue
        .write_buffer(&offs, 0, &super::softmax_xent::offsets_bytes(offsets));
    let lg = buffers::storage_with(ctx, "logits", logits)?;
    let lb = buffers::storage(ctx, "labels", labels.len())?;
    ctx.queue.write_buffer(&lb, 0, bytemuck::cast_slice(labels));
    let dl = buffers::storage(ctx, "dlogits", logits.len())?;
    let rl = buffers::storage(ctx, "row_loss", b)?;
    let op = SoftmaxXent {
        heads: shape.heads(),
        width: shape.width(),
        loss_off: 0,
    };
    let named = [
        ("logits", &lg),
        ("labels", &lb),
        ("dlogits", &dl),
        ("row_loss", &rl),
        ("head_offsets", &offs),
        ("steps", &step_record(ctx, b, launch(b).adam)?),
    ];
    run_once(ctx, &op, &named, &launch(b))?;
    let mut out = buffers::read_many(ctx, &[(&dl, 0, logits.len()), (&rl, 0, b)])?;
    let rl = out.pop().unwrap_or_default();
    Ok((out.pop().unwrap_or_default(), rl))
}

/// The accuracy counts of `b` rows of `logits` against `labels` rows `first..first + b` (labels
/// holds whole rows of `heads` labels, as a test set's), once; returns `(correct, total)` per head.
pub fn accuracy(
    ctx: &GpuContext,
    logits: &[f32],
    labels: &[i32],
    first: usize,
    b: usize,
    offsets: &[usize],
) -> Result<Vec<(u64, u64)>> {
    let heads = offsets.len().saturating_sub(1);
    let width = offsets.last().copied().unwrap_or(0);
    ops::expect_len("accuracy", "the logits", logits.len(), b * width)?;
    expect_at_least("accuracy", "the labels", labels.len(), (first + b) * heads)?;
    let offs = buffers::storage(ctx, "head offsets", offsets.len())?;
    ctx.queue
        .write_buffer(&offs, 0, &super::softmax_xent::offsets_bytes(offsets));
    let lg = buffers::storage_with(ctx, "logits", logits)?;
    let lb = buffers::storage(ctx, "labels", labels.len())?;
    if !labels.is_empty() {
        ctx.queue.write_buffer(&lb, 0, bytemuck::cast_slice(labels));
    }
    let counts = buffers::storage(ctx, "counts", counts_len(heads))?;
    let op = Accuracy { heads, width };
    let named = [
        ("logits", &lg),
        ("labels", &lb),
        ("head_offsets", &offs),
        ("counts", &counts),
    ];
    let at = Launch { first, ..launch(b) };
    run_once(ctx, &op, &named, &at)?;
    let words = buffers::read_u32(ctx, &counts, 0, counts_len(heads))?;
    Ok(words
        .chunks_exact(2)
        .map(|c| (c[0] as u64, c[1] as u64))
        .collect())
}

/// Transport on host data laid out as one flat `params`/`grads` pair, weighted `coeff` with the
/// norms `norm` and `weight_norm`; returns the new `grads` and the value `T`. `args.spatial` must
/// be 0 (the record holds one spatial layer).
pub fn transport(
    ctx: &GpuContext,
    args: &TransportArgs,
    (norm, weight_norm, coeff): (TransportNorm, WeightNorm, f32),
    params: &[f32],
    grads: &[f32],
) -> Result<(Vec<f32>, f64)> {
    anyhow::ensure!(args.spatial == 0, "a one-off transport is spatial layer 0");
    let end = (args.w_off + args.oc * args.c)
        .max(args.pin_off + 2 * args.c)
        .max(args.pout_off + 2 * args.oc);
    expect_at_least("transport", "the parameter buffer", params.len(), end)?;
    ops::expect_len("transport", "the gradient buffer", grads.len(), params.len())?;
    let p = buffers::storage_with(ctx, "params", params)?;
    let g = buffers::storage_with(ctx, "grads", grads)?;
    let part = buffers::storage(ctx, "partials", args.partial_off + args.oc)?;
    let hyper = one_record(ctx, 0.0, |r| {
        HyperLayout::set_transport(r, 0, norm, weight_norm, coeff, args.c, args.oc)
    })?;
    let named = [
        ("params", &p),
        ("grads", &g),
        ("partials", &part),
        ("hyper", &hyper),
    ];
    run_once(ctx, &TransportRows(*args), &named, &launch(1))?;
    run_once(ctx, &TransportCols(*args), &named, &launch(1))?;
    let mut out = buffers::read_many(ctx, &[(&g, 0, grads.len()), (&part, args.partial_off, args.oc)])?;
    let rows = out.pop().unwrap_or_default();
    let scale = crate::ops::transport::transport_scale(norm, args.c, args.oc);
    let value = rows.iter().map(|&v| v as f64).sum::<f64>() * scale as f64;
    Ok((out.pop().unwrap_or_default(), value))
}

/// Density of `n` neurons at `p_off` of `params`; returns the new `grads` and the value `V`.
pub fn density(
    ctx: &GpuContext,
    n: usize,
    p_off: usize,
    coeff: f32,
    params: &[f32],
    grads: &[f32],
) -> Result<(Vec<f32>, f64)> {
    ops::density::check(n, p_off, params.len())?;
    ops::expect_len("density", "the gradient buffer", grads.len(), params.len())?;
    let p = buffers::storage_with(ctx, "params", params)?;
    let g = buffers::storage_with(ctx, "grads", grads)?;
    let part = buffers::storage(ctx, "partials", n)?;
    let hyper = one_record(ctx, 0.0, |r| HyperLayout::set_density(r, 0, coeff, n))?;
    let op = Density {
        n,
        p_off,
        partial_off: 0,
        spatial: 0,
    };
    run_once(
        ctx,
        &op,
        &[
            ("params", &p),
            ("grads", &g),
            ("partials", &part),
            ("hyper", &hyper),
        ],
        &launch(1),
    )?;
    let mut out = buffers::read_many(ctx, &[(&g, 0, grads.len()), (&part, 0, n)])?;
    let rows = out.pop().unwrap_or_default();
    let value = rows.iter().map(|&v| v as f64).sum::<f64>() * density_scale(n) as f64;
    Ok((out.pop().unwrap_or_default(), value))
}

/// One Adam step; returns `(params, m, v)`.
pub fn adam(
    ctx: &GpuContext,
    hp: AdamStep,
    params: &[f32],
    grads: &[f32],
    m: &[f32],
    v: &[f32],
) -> Result<[Vec<f32>; 3]> {
    ops::adam::check(params.len(), grads.len(), m.len(), v.len())?;
    let n = params.len();
    let g = buffers::storage_with(ctx, "grads", grads)?;
    let p = buffers::storage_with(ctx, "params", params)?;
    let mb = buffers::storage_with(ctx, "m", m)?;
    let vb = buffers::storage_with(ctx, "v", v)?;
    let hyper = one_record(ctx, hp.lr, |_| ())?;
    let op = Adam {
        n,
        max_workgroups: ctx.caps.max_workgroups,
    };
    let at = Launch {
        adam: hp,
        ..launch(1)
    };
    let steps = step_record(ctx, 1, hp)?;
    run_once(
        ctx,
        &op,
        &[
            ("grads", &g),
            ("params", &p),
            ("m", &mb),
            ("v", &vb),
            ("hyper", &hyper),
            ("steps", &steps),
        ],
        &at,
    )?;
    let mut out = buffers::read_many(ctx, &[(&p, 0, n), (&mb, 0, n), (&vb, 0, n)])?;
    let v = out.pop().unwrap_or_default();
    let m = out.pop().unwrap_or_default();
    Ok([out.pop().unwrap_or_default(), m, v])
}
