//! The GPU backend: the training step of `cpu::forward_backward` + Adam as WGSL kernels on wgpu.
//!
//! Everything lives on the device: the flat parameter, gradient and Adam moment buffers (the
//! layout of `model::Layout`), the activations and deltas of every layer for a batch of up to
//! `capacity` examples, a scratch buffer of partial loss sums and the loss accumulator. Pipelines
//! are built once per context (`GpuContext::pipeline`), bind groups once per backend.
//!
//! One training step: the batch's inputs and labels (and, when the batch size or the step count
//! changed, the uniform blocks) are written with `queue.write_buffer`, then one command encoder
//! records a clear of the gradient buffer and one compute pass with every dispatch:
//! forward (matmul + bias + sigmoid fused) layer by layer, the fused softmax cross-entropy, the
//! backward layer by layer (weight gradient, bias gradient, input gradient with the sigmoid
//! derivative fused), transport and density of each spatial layer, the loss reductions into the
//! accumulator, and Adam over the whole parameter buffer; one submit. Nothing is read back: the
//! losses are read in [`Backend::take_losses`].
//!
//! Conventions as the CPU's: activation gradients are written with `=`; the gradient buffer is
//! cleared first, the matmul writes the weight gradient, transport and density add (`+=`).

pub mod adam;
pub mod bias_sigmoid;
pub mod buffers;
pub mod context;
pub mod density;
pub mod matmul;
pub mod reduce;
pub mod softmax_xent;
pub mod transport;

pub use context::{adapter_report, hardware_adapter_available, GpuContext, ADAPTER_ENV};
pub use matmul::Variant;

use crate::backend::{Backend, Losses};
use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::adam::AdamStep;
use crate::data::batches::Batch;
use crate::model::{Layout, NeuronMask, TrainState};
use anyhow::{bail, Context, Result};
use buffers::Uniforms;
use context::Bind;
use matmul::MatmulArgs;
use std::sync::Arc;

/// Environment variable that makes GPU tests fail (instead of skip) when no adapter is found.
pub const REQUIRE_ADAPTER_ENV: &str = "SPATIAL_GPU_REQUIRE_ADAPTER";

/// How the matmul variant of each product is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulChoice {
    /// Time every variant on each shape at start-up and keep the fastest (cached per adapter).
    Autotune,
    /// Always this variant.
    Fixed(Variant),
}

/// Options of [`GpuBackend::with_options`].
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    pub matmul: MatmulChoice,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            matmul: MatmulChoice::Autotune,
        }
    }
}

/// For tests: a context on the adapter the environment selects, or `None` (printing
/// "skipped: no adapter") when there is none, unless `SPATIAL_GPU_REQUIRE_ADAPTER=1`, which
/// turns a missing adapter into a panic (CI sets it, so GPU tests cannot pass by skipping).
pub fn test_context() -> Option<Arc<GpuContext>> {
    static CTX: std::sync::OnceLock<std::result::Result<Arc<GpuContext>, String>> =
        std::sync::OnceLock::new();
    let ctx = CTX.get_or_init(|| GpuContext::new(None).map_err(|e| format!("{e:#}")));
    match ctx {
        Ok(c) => {
            eprintln!("GPU tests on {}", c.describe());
            Some(c.clone())
        }
        Err(e) => {
            if std::env::var(REQUIRE_ADAPTER_ENV).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_ADAPTER_ENV}=1 but no GPU adapter could be opened: {e}");
            }
            eprintln!("skipped: no adapter ({e})");
            None
        }
    }
}

/// Activations, gradient and state after a step, for tests: the GPU twin of
/// `cpu::Workspace::acts`, `CpuBackend::last_grads()` and `CpuBackend::state()`.
#[derive(Clone, Debug)]
pub struct GpuSnapshot {
    /// `acts[l]` is `(B, N_l)` for `l = 1..=L` (the valid rows of the last batch); `acts[0]` is empty.
    pub acts: Vec<Vec<f32>>,
    /// The gradient of the last step, before Adam applied it.
    pub grads: Vec<f32>,
    pub state: TrainState,
}

/// What [`GpuBackend::step_breakdown`] measured.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct StepBreakdown {
    /// Seconds of one whole training step (upload, all dispatches, submit, wait).
    pub step_seconds: f64,
    /// Seconds of the step's matmul dispatches alone.
    pub matmul_seconds: f64,
    /// Dispatches in a training step, and how many of them are matmuls.
    pub dispatches: usize,
    pub matmuls: usize,
}

/// A dispatch of a plan: pipeline, bind group (made once), uniform slot and what it computes.
struct Op {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    slot: usize,
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A matmul whose `m` (forward, input gradient) or `k` (weight gradient) is the batch size.
    Matmul {
        args: MatmulArgs,
        batch_is_m: bool,
        variant: Variant,
    },
    BiasGrad {
        n: usize,
        dst_off: usize,
    },
    Mask {
        n: usize,
        keep_off: usize,
    },
    Softmax,
    TransportRows(transport::TransportArgs),
    TransportCols(transport::TransportArgs),
    Density {
        n: usize,
        p_off: usize,
        partial_off: usize,
        coeff: f32,
    },
    /// `None` length: the batch size (the task loss, scale 1/B).
    Reduce {
        src_off: usize,
        len: Option<usize>,
        acc_idx: usize,
        scale: f32,
    },
    Adam,
}

/// A list of dispatches sharing one uniform buffer, written when the batch size changes.
struct Plan {
    ops: Vec<Op>,
    uniforms: Uniforms,
    batch: Option<usize>,
}

/// Every device buffer of a model.
struct Buffers {
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    adam_m: wgpu::Buffer,
    adam_v: wgpu::Buffer,
    input: wgpu::Buffer,
    labels: wgpu::Buffer,
    /// `acts[l]`, `deltas[l]` for `l = 1..=L` (index 0 unused, a 1-element buffer).
    acts: Vec<wgpu::Buffer>,
    deltas: Vec<wgpu::Buffer>,
    partials: wgpu::Buffer,
    acc: wgpu::Buffer,
    keep: wgpu::Buffer,
    dummy: wgpu::Buffer,
}

/// The WGSL engine behind [`Backend`].
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    model: ModelConfig,
    train: TrainConfig,
    layout: Layout,
    capacity: usize,
    step: u64,
    bufs: Buffers,
    train_plan: Plan,
    eval_plan: Plan,
    /// Index of the Adam op in `train_plan` (its uniform changes every step).
    adam_op: usize,
    /// Steps whose losses sit in the accumulator.
    pending_steps: u64,
    /// Size of the last training batch (for snapshots).
    last_batch: usize,
    acc_len: usize,
    keep_offsets: Vec<usize>,
}

impl GpuBackend {
    /// A backend on `ctx` with the default options (matmul variants autotuned).
    pub fn new(
        ctx: Arc<GpuContext>,
        model: ModelConfig,
        train: TrainConfig,
        state: TrainState,
    ) -> Result<GpuBackend> {
        Self::with_options(ctx, model, train, state, GpuOptions::default())
    }

    pub fn with_options(
        ctx: Arc<GpuContext>,
        model: ModelConfig,
        train: TrainConfig,
        state: TrainState,
        opts: GpuOptions,
    ) -> Result<GpuBackend> {
        model.validate()?;
        train.validate()?;
        ctx.check()?;
        let layout = Layout::new(&model.sizes);
        if state.params.layout != layout {
            bail!(
                "parameters of shape {:?} do not fit a model of sizes {:?}",
                state.params.layout.sizes,
                model.sizes
            );
        }
        let cap = train.batch_size;
        let sizes = model.sizes.clone();
        let last = model.num_layers();
        let heads = model.heads;
        let n_spatial = model.spatial_layers.len();
        let max_u32 = u32::MAX as usize;
        if layout.len >= max_u32 / 4 || cap * sizes.iter().max().copied().unwrap_or(0) >= max_u32 / 4 {
            bail!(
                "the model or batch is too large for 32-bit indexing on the GPU: use a smaller --batch-size"
            );
        }
        for (l, &n) in sizes.iter().enumerate() {
            if n > ctx.caps.max_workgroups as usize {
                bail!(
                    "layer {l} has {n} neurons, more than the adapter's {} workgroups per dimension",
                    ctx.caps.max_workgroups
                );
            }
        }

        // Buffers.
        let mk = |label: &str, len: usize| buffers::storage(&ctx, label, len);
        let layer_bufs = |what: &str| -> Result<Vec<wgpu::Buffer>> {
            (0..=last)
                .map(|l| {
                    mk(
                        &format!("{what} of layer {l} ({cap} x {})", sizes[l]),
                        if l == 0 { 1 } else { cap * sizes[l] },
                    )
                })
                .collect()
        };
        // Partials: the task's per-example losses, then per spatial layer its transport and density rows.
        let mut partial_len = cap;
        let mut spatial_offs = Vec::new();
        for &l in &model.spatial_layers {
            spatial_offs.push((partial_len, partial_len + sizes[l]));
            partial_len += 2 * sizes[l];
        }
        let acc_len = 1 + 2 * n_spatial;
        let mut keep_offsets = vec![0; last + 1];
        let mut keep_len = 0;
        for l in 1..=last {
            keep_offsets[l] = keep_len;
            keep_len += sizes[l];
        }
        let bufs = Buffers {
            params: buffers::storage_with(&ctx, "parameters", &state.params.data)?,
            grads: mk("gradients", layout.len)?,
            adam_m: buffers::storage_with(&ctx, "adam m", &state.adam_m)?,
            adam_v: buffers::storage_with(&ctx, "adam v", &state.adam_v)?,
            input: mk(&format!("input batch ({cap} x {})", sizes[0]), cap * sizes[0])?,
            labels: mk("labels", cap * heads)?,
            acts: layer_bufs("activations")?,
            deltas: layer_bufs("deltas")?,
            partials: mk("partial losses", partial_len)?,
            acc: mk("loss accumulator", acc_len)?,
            keep: mk("neuron mask", keep_len)?,
            dummy: mk("unused", 4)?,
        };

        let fixed = match opts.matmul {
            MatmulChoice::Fixed(v) => v,
            MatmulChoice::Autotune => Variant::Tiled,
        };
        let mm_pipe = fixed.pipeline(&ctx)?;
        let (b, d) = (&bufs, &bufs.dummy);
        let inp = |l: usize| if l == 1 { &b.input } else { &b.acts[l - 1] };

        // The forward dispatch of layer l (bias and, for hidden layers, the sigmoid fused in),
        // shared by the training and the evaluation plans.
        let forward = |l: usize| {
            let args = MatmulArgs::forward(
                cap,
                sizes[l - 1],
                sizes[l],
                layout.weights[l - 1].start,
                layout.biases[l - 1].start,
                l < last,
            );
            let kind = Kind::Matmul {
                args,
                batch_is_m: true,
                variant: fixed,
            };
            (kind, vec![inp(l), &b.params, &b.params, d, &b.acts[l]])
        };

        // The training plan.
        let mut kinds: Vec<(Kind, Vec<&wgpu::Buffer>)> = Vec::new();
        for l in 1..=last {
            kinds.push(forward(l));
        }
        kinds.push((
            Kind::Softmax,
            vec![&b.acts[last], &b.labels, &b.deltas[last], &b.partials],
        ));
        for l in (1..=last).rev() {
            let (c, oc) = (sizes[l - 1], sizes[l]);
            let args = MatmulArgs::weight_grad(cap, c, oc, layout.weights[l - 1].start, false);
            kinds.push((
                Kind::Matmul {
                    args,
                    batch_is_m: false,
                    variant: fixed,
                },
                vec![&b.deltas[l], inp(l), d, d, &b.grads],
            ));
            kinds.push((
                Kind::BiasGrad {
                    n: oc,
                    dst_off: layout.biases[l - 1].start,
                },
                vec![&b.deltas[l], &b.grads],
            ));
            if l > 1 {
                let args = MatmulArgs::input_grad(cap, c, oc, layout.weights[l - 1].start, true);
                kinds.push((
                    Kind::Matmul {
                        args,
                        batch_is_m: true,
                        variant: fixed,
                    },
                    vec![&b.deltas[l], &b.params, d, &b.acts[l - 1], &b.deltas[l - 1]],
                ));
            }
        }
        let ns = n_spatial.max(1) as f32;
        let (ct, cv) = (model.alpha / ns, model.beta / ns);
        let spatial_bufs = || vec![&b.params, &b.grads, &b.partials];
        let mut reduces = vec![(
            Kind::Reduce {
                src_off: 0,
                len: None,
                acc_idx: 0,
                scale: 0.0,
            },
            vec![&b.partials, &b.acc],
        )];
        for (s, &l) in model.spatial_layers.iter().enumerate() {
            let (c, oc) = (sizes[l - 1], sizes[l]);
            let t = transport::TransportArgs {
                c,
                oc,
                w_off: layout.weights[l - 1].start,
                pin_off: layout.positions[l - 1].start,
                pout_off: layout.positions[l].start,
                partial_off: spatial_offs[s].0,
                norm: model.transport_norm,
                weight_norm: model.weight_norm,
                coeff: ct,
            };
            kinds.push((Kind::TransportRows(t), spatial_bufs()));
            kinds.push((Kind::TransportCols(t), spatial_bufs()));
            let p_off = layout.positions[l].start;
            kinds.push((
                Kind::Density {
                    n: oc,
                    p_off,
                    partial_off: spatial_offs[s].1,
                    coeff: cv,
                },
                spatial_bufs(),
            ));
            reduces.push((
                Kind::Reduce {
                    src_off: spatial_offs[s].0,
                    len: Some(oc),
                    acc_idx: 1 + s,
                    scale: t.scale(),
                },
                vec![&b.partials, &b.acc],
            ));
            reduces.push((
                Kind::Reduce {
                    src_off: spatial_offs[s].1,
                    len: Some(oc),
                    acc_idx: 1 + n_spatial + s,
                    scale: density::inv_n2(oc),
                },
                vec![&b.partials, &b.acc],
            ));
        }
        kinds.extend(reduces);
        let adam_op = kinds.len();
        kinds.push((Kind::Adam, vec![&b.grads, &b.params, &b.adam_m, &b.adam_v]));
        let train_plan = make_plan(&ctx, "training uniforms", kinds, &mm_pipe)?;

        // The evaluation plan: forward, each layer followed by its mask (dispatched only with a mask).
        let mut kinds: Vec<(Kind, Vec<&wgpu::Buffer>)> = Vec::new();
        for l in 1..=last {
            let oc = sizes[l];
            kinds.push(forward(l));
            kinds.push((
                Kind::Mask {
                    n: oc,
                    keep_off: keep_offsets[l],
                },
                vec![&b.keep, &b.acts[l]],
            ));
        }
        let eval_plan = make_plan(&ctx, "evaluation uniforms", kinds, &mm_pipe)?;

        let mut gb = GpuBackend {
            ctx,
            model,
            train,
            layout,
            capacity: cap,
            step: state.step,
            bufs,
            train_plan,
            eval_plan,
            adam_op,
            pending_steps: 0,
            last_batch: 0,
            acc_len,
            keep_offsets,
        };
        if opts.matmul == MatmulChoice::Autotune {
            gb.autotune()?;
        }
        gb.ctx.check()?;
        Ok(gb)
    }

    /// Chooses the matmul variant of every product of both plans by measurement at full batch.
    fn autotune(&mut self) -> Result<()> {
        let cap = self.capacity;
        let ctx = self.ctx.clone();
        for train in [true, false] {
            self.prepare(train, cap, self.step.max(1));
            let plan = if train {
                &mut self.train_plan
            } else {
                &mut self.eval_plan
            };
            for op in plan.ops.iter_mut() {
                if let Kind::Matmul {
                    args,
                    batch_is_m,
                    variant,
                } = &mut op.kind
                {
                    let a = with_batch(args, *batch_is_m, cap);
                    *variant = matmul::autotune(&ctx, &a, &op.bind_group)?;
                    op.pipeline = variant.pipeline(&ctx)?;
                }
            }
        }
        Ok(())
    }

    /// The matmul variant chosen for each product of the training step, in dispatch order, with
    /// its shape: for logs and benchmarks.
    pub fn matmul_variants(&self) -> Vec<(String, Variant)> {
        self.train_plan
            .ops
            .iter()
            .filter_map(|op| match op.kind {
                Kind::Matmul {
                    args,
                    batch_is_m,
                    variant,
                } => Some((with_batch(&args, batch_is_m, self.capacity).shape_key(), variant)),
                _ => None,
            })
            .collect()
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Waits until every submitted step has finished (for benchmarks).
    pub fn sync(&self) -> Result<()> {
        self.ctx.wait()
    }

    /// Wall seconds of one whole training step on `batch` and of the same step's matmul dispatches
    /// alone (same pipelines, bind groups and batch size, one pass and one submit each), each the
    /// mean of `iters` submits after one warm-up, waiting for the GPU inside the timed region. This
    /// is the performance budget of issue 6: the non-matmul kernels and the dispatch overhead must
    /// not dominate a step. The model's state is restored afterwards.
    pub fn step_breakdown(&mut self, batch: &Batch, iters: usize) -> Result<StepBreakdown> {
        let iters = iters.max(1);
        let saved = self.state()?;
        self.train_step(batch)?;
        self.sync()?;
        let t0 = std::time::Instant::now();
        for _ in 0..iters {
            self.train_step(batch)?;
        }
        self.sync()?;
        let step_seconds = t0.elapsed().as_secs_f64() / iters as f64;

        let b = batch.size;
        let matmuls_only = |this: &Self| {
            let mut enc = this
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("matmuls only"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("matmuls only"),
                    timestamp_writes: None,
                });
                let hp = adam_step(&this.train, this.step.max(1));
                for op in this
                    .train_plan
                    .ops
                    .iter()
                    .filter(|op| matches!(op.kind, Kind::Matmul { .. }))
                {
                    let (_, groups) = op.params(&this.ctx, &this.model, b, this.layout.len, hp);
                    buffers::dispatch(&mut pass, &op.pipeline, &op.bind_group, groups);
                }
            }
            this.ctx.queue.submit([enc.finish()]);
        };
        matmuls_only(self);
        self.sync()?;
        let t0 = std::time::Instant::now();
        for _ in 0..iters {
            matmuls_only(self);
        }
        self.sync()?;
        let matmul_seconds = t0.elapsed().as_secs_f64() / iters as f64;
        let matmuls = self
            .train_plan
            .ops
            .iter()
            .filter(|op| matches!(op.kind, Kind::Matmul { .. }))
            .count();
        let dispatches = self
            .train_plan
            .ops
            .iter()
            .filter(|op| !matches!(op.kind, Kind::Mask { .. }))
            .count();
        self.set_state(&saved)?;
        self.take_losses()?;
        Ok(StepBreakdown {
            step_seconds,
            matmul_seconds,
            dispatches,
            matmuls,
        })
    }

    /// Activations of the last step, its gradient and the state, read back (waits).
    pub fn debug_snapshot(&mut self) -> Result<GpuSnapshot> {
        let b = self.last_batch;
        let sizes = &self.model.sizes;
        let mut ranges: Vec<(&wgpu::Buffer, usize, usize)> = Vec::new();
        for (act, &n) in self.bufs.acts.iter().zip(sizes).skip(1) {
            ranges.push((act, 0, b * n));
        }
        ranges.push((&self.bufs.grads, 0, self.layout.len));
        let mut out = buffers::read_many(&self.ctx, &ranges)?;
        let grads = out.pop().unwrap_or_default();
        let mut acts = vec![Vec::new()];
        acts.extend(out);
        Ok(GpuSnapshot {
            acts,
            grads,
            state: self.state()?,
        })
    }

    fn check_batch(&self, b: usize, input_dim: usize) -> Result<()> {
        if b == 0 || b > self.capacity {
            bail!(
                "batch of {b} examples does not fit the GPU backend's capacity of {}",
                self.capacity
            );
        }
        if input_dim != self.model.sizes[0] {
            bail!(
                "batch has {input_dim} inputs per example, the model expects {}",
                self.model.sizes[0]
            );
        }
        Ok(())
    }
}

/// `args` with the batch dimension set to `b`.
fn with_batch(args: &MatmulArgs, batch_is_m: bool, b: usize) -> MatmulArgs {
    let mut a = *args;
    if batch_is_m {
        a.m = b;
    } else {
        a.k = b;
    }
    a
}

fn binds_of(kind: &Kind) -> &'static [Bind] {
    match kind {
        Kind::Matmul { .. } => matmul::BINDS,
        Kind::BiasGrad { .. } | Kind::Mask { .. } => bias_sigmoid::BINDS,
        Kind::Softmax => softmax_xent::BINDS,
        Kind::TransportRows(_) | Kind::TransportCols(_) => transport::BINDS,
        Kind::Density { .. } => density::BINDS,
        Kind::Reduce { .. } => reduce::BINDS,
        Kind::Adam => adam::BINDS,
    }
}

fn make_plan(
    ctx: &GpuContext,
    label: &str,
    kinds: Vec<(Kind, Vec<&wgpu::Buffer>)>,
    mm: &wgpu::ComputePipeline,
) -> Result<Plan> {
    let uniforms = Uniforms::new(ctx, label, kinds.len());
    let mut ops = Vec::new();
    for (slot, (kind, bufs)) in kinds.into_iter().enumerate() {
        let pipeline = match kind {
            Kind::Matmul { .. } => mm.clone(),
            Kind::BiasGrad { .. } => bias_sigmoid::bias_grad_pipeline(ctx)?,
            Kind::Mask { .. } => bias_sigmoid::mask_pipeline(ctx)?,
            Kind::Softmax => softmax_xent::pipeline(ctx)?,
            Kind::TransportRows(_) => transport::rows_pipeline(ctx)?,
            Kind::TransportCols(_) => transport::cols_pipeline(ctx)?,
            Kind::Density { .. } => density::pipeline(ctx)?,
            Kind::Reduce { .. } => reduce::pipeline(ctx)?,
            Kind::Adam => adam::pipeline(ctx)?,
        };
        let bind_group = buffers::bind_group(ctx, binds_of(&kind), uniforms.binding(slot), &bufs);
        ops.push(Op {
            pipeline,
            bind_group,
            slot,
            kind,
        });
    }
    Ok(Plan {
        ops,
        uniforms,
        batch: None,
    })
}

impl Op {
    /// Uniform words and workgroups for a batch of `b`, at Adam step `step`.
    fn params(
        &self,
        ctx: &GpuContext,
        model: &ModelConfig,
        b: usize,
        n_params: usize,
        hp: AdamStep,
    ) -> ([u32; 16], [u32; 3]) {
        match self.kind {
            Kind::Matmul {
                args,
                batch_is_m,
                variant,
            } => {
                let a = with_batch(&args, batch_is_m, b);
                (a.words(), a.groups(variant))
            }
            Kind::BiasGrad { n, dst_off } => bias_sigmoid::bias_grad_words(b, n, dst_off),
            Kind::Mask { n, keep_off } => bias_sigmoid::mask_words(ctx, b, n, keep_off),
            Kind::Softmax => softmax_xent::params(b, model.heads, model.head_size(), 0),
            Kind::TransportRows(t) => (t.words(), t.rows_groups()),
            Kind::TransportCols(t) => (t.words(), t.cols_groups()),
            Kind::Density {
                n,
                p_off,
                partial_off,
                coeff,
            } => density::params(n, p_off, partial_off, coeff),
            Kind::Reduce {
                src_off,
                len,
                acc_idx,
                scale,
            } => match len {
                Some(len) => reduce::params(src_off, len, acc_idx, scale),
                None => reduce::params(src_off, b, acc_idx, 1.0 / b as f32),
            },
            Kind::Adam => adam::params(ctx, n_params, hp),
        }
    }
}

fn adam_step(train: &TrainConfig, step: u64) -> AdamStep {
    AdamStep {
        lr: train.lr,
        beta1: train.beta1,
        beta2: train.beta2,
        eps: train.eps,
        step,
    }
}

impl GpuBackend {
    /// Fills the uniforms of `which` plan for batch `b`, and the Adam block for step `step`.
    fn prepare(&mut self, train_plan: bool, b: usize, step: u64) {
        let n = self.layout.len;
        let hp = adam_step(&self.train, step);
        let plan = if train_plan {
            &mut self.train_plan
        } else {
            &mut self.eval_plan
        };
        if plan.batch != Some(b) {
            for i in 0..plan.ops.len() {
                let (w, _) = plan.ops[i].params(&self.ctx, &self.model, b, n, hp);
                let slot = plan.ops[i].slot;
                plan.uniforms.set(slot, &w);
            }
            plan.batch = Some(b);
        } else if train_plan {
            let op = &plan.ops[self.adam_op];
            let (w, _) = op.params(&self.ctx, &self.model, b, n, hp);
            let slot = op.slot;
            plan.uniforms.set(slot, &w);
        }
        plan.uniforms.upload(&self.ctx);
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>, train_plan: bool, b: usize, masked: bool) {
        let plan = if train_plan {
            &self.train_plan
        } else {
            &self.eval_plan
        };
        let hp = adam_step(&self.train, self.step.max(1));
        for op in &plan.ops {
            if matches!(op.kind, Kind::Mask { .. }) && !masked {
                continue;
            }
            let (_, groups) = op.params(&self.ctx, &self.model, b, self.layout.len, hp);
            buffers::dispatch(pass, &op.pipeline, &op.bind_group, groups);
        }
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        format!("gpu ({})", self.ctx.describe())
    }
    fn model_config(&self) -> &ModelConfig {
        &self.model
    }
    fn train_config(&self) -> &TrainConfig {
        &self.train
    }
    fn steps(&self) -> u64 {
        self.step
    }

    fn train_step(&mut self, batch: &Batch) -> Result<()> {
        self.ctx.check()?;
        let b = batch.size;
        self.check_batch(b, batch.input_dim)?;
        let heads = self.model.heads;
        if batch.inputs.len() < b * batch.input_dim || batch.labels.len() < b * heads {
            bail!(
                "batch of {b} examples holds {} inputs and {} labels: too few",
                batch.inputs.len(),
                batch.labels.len()
            );
        }
        let q = &self.ctx.queue;
        q.write_buffer(
            &self.bufs.input,
            0,
            bytemuck::cast_slice(&batch.inputs[..b * batch.input_dim]),
        );
        q.write_buffer(
            &self.bufs.labels,
            0,
            bytemuck::cast_slice(&batch.labels[..b * heads]),
        );
        self.step += 1;
        self.prepare(true, b, self.step);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train step"),
            });
        enc.clear_buffer(&self.bufs.grads, 0, None);
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("train step"),
                timestamp_writes: None,
            });
            self.record(&mut pass, true, b, false);
        }
        self.ctx.queue.submit([enc.finish()]);
        self.pending_steps += 1;
        self.last_batch = b;
        Ok(())
    }

    fn take_losses(&mut self) -> Result<Option<Losses>> {
        if self.pending_steps == 0 {
            return Ok(None);
        }
        let acc = buffers::read(&self.ctx, &self.bufs.acc, 0, self.acc_len)?;
        self.ctx
            .queue
            .write_buffer(&self.bufs.acc, 0, bytemuck::cast_slice(&vec![0f32; self.acc_len]));
        let n = self.pending_steps as f64;
        self.pending_steps = 0;
        let s = self.model.spatial_layers.len();
        let mean = |i: usize| acc[i] as f64 / n;
        Ok(Some(
            Losses {
                task: mean(0),
                transport: (0..s).map(|i| mean(1 + i)).collect(),
                density: (0..s).map(|i| mean(1 + s + i)).collect(),
                total: 0.0,
            }
            .with_total(&self.model),
        ))
    }

    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>) -> Result<Vec<f32>> {
        self.ctx.check()?;
        let n0 = self.model.sizes[0];
        let out_dim = self.model.output_dim();
        if inputs.len() != count * n0 {
            bail!("{} input values are not {count} examples of {n0}", inputs.len());
        }
        if let Some(keep) = keep {
            let mut flat = Vec::new();
            for l in 1..self.model.sizes.len() {
                let k = keep
                    .get(l)
                    .filter(|k| k.len() == self.model.sizes[l])
                    .with_context(|| {
                        format!(
                            "the neuron mask of layer {l} must have {} entries",
                            self.model.sizes[l]
                        )
                    })?;
                debug_assert_eq!(flat.len(), self.keep_offsets[l]);
                flat.extend_from_slice(k);
            }
            self.ctx
                .queue
                .write_buffer(&self.bufs.keep, 0, bytemuck::cast_slice(&flat));
        }
        let last = self.model.num_layers();
        let mut out = Vec::with_capacity(count * out_dim);
        for start in (0..count).step_by(self.capacity) {
            let b = self.capacity.min(count - start);
            self.ctx.queue.write_buffer(
                &self.bufs.input,
                0,
                bytemuck::cast_slice(&inputs[start * n0..(start + b) * n0]),
            );
            self.prepare(false, b, self.step.max(1));
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("logits"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("logits"),
                    timestamp_writes: None,
                });
                self.record(&mut pass, false, b, keep.is_some());
            }
            self.ctx.queue.submit([enc.finish()]);
            out.extend(buffers::read(&self.ctx, &self.bufs.acts[last], 0, b * out_dim)?);
        }
        Ok(out)
    }

    fn state(&mut self) -> Result<TrainState> {
        let n = self.layout.len;
        let mut out = buffers::read_many(
            &self.ctx,
            &[
                (&self.bufs.params, 0, n),
                (&self.bufs.adam_m, 0, n),
                (&self.bufs.adam_v, 0, n),
            ],
        )?;
        let adam_v = out.pop().unwrap_or_default();
        let adam_m = out.pop().unwrap_or_default();
        let data = out.pop().unwrap_or_default();
        Ok(TrainState {
            params: crate::model::Params {
                layout: self.layout.clone(),
                data,
            },
            adam_m,
            adam_v,
            step: self.step,
        })
    }

    fn set_state(&mut self, state: &TrainState) -> Result<()> {
        self.ctx.check()?;
        if state.params.layout != self.layout {
            bail!(
                "state of shape {:?} does not fit a model of sizes {:?}",
                state.params.layout.sizes,
                self.model.sizes
            );
        }
        let q = &self.ctx.queue;
        q.write_buffer(&self.bufs.params, 0, bytemuck::cast_slice(&state.params.data));
        q.write_buffer(&self.bufs.adam_m, 0, bytemuck::cast_slice(&state.adam_m));
        q.write_buffer(&self.bufs.adam_v, 0, bytemuck::cast_slice(&state.adam_v));
        self.step = state.step;
        Ok(())
    }
}
