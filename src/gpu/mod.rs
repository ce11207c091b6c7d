//! The GPU backend: the training step of `cpu::forward_backward` + Adam as WGSL kernels on wgpu.
//!
//! Layout: one module per op (`matmul`, `bias_grad`, `mask`, `softmax_xent`, `transport`,
//! `density`, `reduce`, `adam`), each owning its shader, its uniform block (a `#[repr(C)]` mirror
//! of the WGSL struct) and a `GpuOp` implementation; `plan` lists the dispatches of a training
//! step and of an evaluation pass; `kernel` compiles a plan (pipelines, named bind groups, one
//! uniform slot per dispatch) and records it; `context`, `shader` and `buffers` are the runtime
//! (device, reflection, buffers); `instrument` and `testing` sit beside it.
//!
//! Everything lives on the device: the flat parameter, gradient and Adam moment buffers (the
//! layout of `model::Layout`), the activations and deltas of every layer for a batch of up to
//! `capacity` examples, a scratch buffer of partial loss sums and the loss accumulator.
//!
//! One training step: the batch's inputs and labels and the plan's uniform blocks are written with
//! `queue.write_buffer`, then one command encoder records a clear of the gradient buffer and one
//! compute pass with every dispatch of `plan::training_step`; one submit. Nothing is read back:
//! the losses are read in [`Backend::take_losses`].

pub mod adam;
pub mod bias_grad;
pub mod buffers;
pub mod context;
pub mod density;
pub mod gather;
pub mod instrument;
pub mod kernel;
pub mod mask;
pub mod matmul;
pub mod plan;
pub mod reduce;
pub mod shader;
pub mod softmax_xent;
pub mod testing;
pub mod transport;

pub use context::{adapter_report, auto_uses_gpu, disable_mesa_device_select_layer, GpuContext, ADAPTER_ENV};
pub use instrument::{GpuSnapshot, StepBreakdown};
pub use matmul::Variant;

use crate::backend::{Backend, Losses};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::batches::{Batch, EpochOrder};
use crate::data::Datasets;
use crate::model::{Layout, NeuronMask, TrainState};
use crate::ops::adam::AdamStep;
use crate::ops::mask::flatten as flatten_mask;
use crate::ops::reduce::LossSlots;
use anyhow::{bail, Result};
use kernel::{Compiled, Launch};
use plan::{Buffers, PlanInputs};
use std::sync::Arc;

/// Every shader of the engine (the tests validate and translate each, and check its uniform block).
pub const SHADERS: &[shader::Shader] = &[
    matmul::SHADER,
    bias_grad::SHADER,
    mask::SHADER,
    softmax_xent::SHADER,
    transport::SHADER,
    density::SHADER,
    reduce::SHADER,
    adam::SHADER,
    gather::SHADER,
];

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

/// Training steps recorded into one submission by default (see [`GpuOptions::steps_per_submit`]).
pub const DEFAULT_STEPS_PER_SUBMIT: usize = 64;

/// Options of [`GpuBackend::with_options`].
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    pub matmul: MatmulChoice,
    /// Training steps recorded into one command buffer and submitted at once, with no host wait
    /// between them (at least 1). Checkpoints, Ctrl-C and the history act at the boundaries of
    /// these chunks (the training loop cuts a chunk short where one is due).
    pub steps_per_submit: usize,
    /// Keep the training sets on the device and build each batch there (`gpu/gather.rs`), so that
    /// a step uploads nothing. Without it (or when the sets do not fit the device) each batch is
    /// built on the host and uploaded.
    pub device_data: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            matmul: MatmulChoice::Autotune,
            steps_per_submit: DEFAULT_STEPS_PER_SUBMIT,
            device_data: true,
        }
    }
}

/// The training sets on the device, once uploaded, with the plan of the gather.
enum Resident {
    /// Not uploaded yet (or turned off by [`GpuOptions::device_data`]).
    No,
    Yes {
        data: gather::DeviceData,
        plan: Compiled,
    },
    /// They could not be uploaded (too large for the device): batches come from the host.
    Unavailable(String),
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

/// The WGSL engine behind [`Backend`].
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    model: ModelConfig,
    train: TrainConfig,
    layout: Layout,
    capacity: usize,
    step: u64,
    bufs: Buffers,
    train_plan: Compiled,
    /// The evaluation pass without and with the neuron mask.
    eval_plan: Compiled,
    eval_masked_plan: Compiled,
    /// Steps whose losses sit in the accumulator.
    pending_steps: u64,
    /// Size of the last training batch (for snapshots).
    last_batch: usize,
    opts: GpuOptions,
    resident: Resident,
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
        crate::backend::check_state(&model, &state)?;
        let cap = train.batch_size;
        let max_u32 = u32::MAX as usize;
        let widest = model.sizes.iter().max().copied().unwrap_or(0);
        if layout.len >= max_u32 / 4 || cap * widest >= max_u32 / 4 {
            bail!(
                "the model or batch is too large for 32-bit indexing on the GPU: use a smaller --batch-size"
            );
        }
        for (l, &n) in model.sizes.iter().enumerate() {
            if n > ctx.caps.max_workgroups as usize {
                bail!(
                    "layer {l} has {n} neurons, more than the adapter's {} workgroups per dimension",
                    ctx.caps.max_workgroups
                );
            }
        }
        let bufs = Buffers::new(&ctx, &model, &layout, cap, &state)?;
        let variant = match opts.matmul {
            MatmulChoice::Fixed(v) => v,
            MatmulChoice::Autotune => Variant::Tiled,
        };
        let inputs = PlanInputs {
            model: &model,
            layout: &layout,
            bufs: &bufs,
            capacity: cap,
            variant,
            max_workgroups: ctx.caps.max_workgroups,
        };
        if opts.steps_per_submit == 0 {
            bail!("the GPU's steps per submit must be at least 1");
        }
        let train_plan = Compiled::chunked(
            &ctx,
            "training step",
            plan::training_step(&inputs),
            opts.steps_per_submit,
        )?;
        let eval_plan = Compiled::new(&ctx, "evaluation", plan::evaluation(&inputs, false))?;
        let eval_masked_plan = Compiled::new(&ctx, "masked evaluation", plan::evaluation(&inputs, true))?;
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
            eval_masked_plan,
            pending_steps: 0,
            last_batch: 0,
            opts,
            resident: Resident::No,
        };
        if opts.matmul == MatmulChoice::Autotune {
            gb.autotune()?;
        }
        gb.ctx.check()?;
        Ok(gb)
    }

    /// What a recording at batch `b` and Adam step `step` needs.
    fn launch(&self, batch: usize, step: u64) -> Launch {
        Launch {
            batch,
            adam: AdamStep::of(&self.train, step),
            first: 0,
        }
    }

    /// The options the backend was made with.
    pub fn options(&self) -> GpuOptions {
        self.opts
    }

    /// Whether the training sets are on the device (after the first [`Backend::train_batches`]);
    /// `Err` says why they could not be put there.
    pub fn device_data_status(&self) -> std::result::Result<bool, String> {
        match &self.resident {
            Resident::No => Ok(false),
            Resident::Yes { .. } => Ok(true),
            Resident::Unavailable(why) => Err(why.clone()),
        }
    }

    /// Puts `data`'s training sets and `order` on the device (each once); `false` when the
    /// batches must come from the host instead.
    fn make_resident(&mut self, data: &Datasets, order: &EpochOrder) -> Result<bool> {
        if !self.opts.device_data || matches!(self.resident, Resident::Unavailable(_)) {
            return Ok(false);
        }
        if let Resident::Yes { data: dd, .. } = &self.resident {
            if dd.fingerprint != gather::fingerprint(data) {
                self.resident = Resident::No;
            }
        }
        if matches!(self.resident, Resident::No) {
            if self.capacity > self.ctx.caps.max_workgroups as usize {
                self.resident = Resident::Unavailable(format!(
                    "a batch of {} rows is more than the adapter's {} workgroups per dimension",
                    self.capacity, self.ctx.caps.max_workgroups
                ));
                return Ok(false);
            }
            let dd = match gather::DeviceData::upload(
                &self.ctx,
                data,
                self.train.mode,
                order.device_indices().len(),
            ) {
                Ok(dd) => dd,
                Err(e) => {
                    self.resident = Resident::Unavailable(format!("{e:#}"));
                    return Ok(false);
                }
            };
            let width = self.model.sizes[0];
            let tasks = data.tasks.len();
            let gather_op = |part| gather::Gather {
                part,
                width,
                tasks,
                mode: self.train.mode,
            };
            let bind = |op| {
                kernel::Dispatch::new(
                    op,
                    [
                        ("data", &dd.data),
                        ("sets", &dd.sets),
                        ("order", &dd.order),
                        ("input", &self.bufs.input),
                        ("labels", &self.bufs.labels),
                    ],
                )
            };
            let plan = Compiled::chunked(
                &self.ctx,
                "batch gather",
                vec![
                    bind(gather_op(gather::Part::Inputs)),
                    bind(gather_op(gather::Part::Labels)),
                ],
                self.opts.steps_per_submit,
            )?;
            self.resident = Resident::Yes { data: dd, plan };
        }
        let Resident::Yes { data: dd, .. } = &mut self.resident else {
            return Ok(false);
        };
        dd.set_order(&self.ctx, order)?;
        Ok(true)
    }

    /// Records the steps `ats` (at most a chunk) into one command encoder, each gathering its batch
    /// on the device, and submits them at once.
    fn submit_chunk(&mut self, ats: &[Launch]) -> Result<()> {
        let Resident::Yes {
            plan: gather_plan, ..
        } = &mut self.resident
        else {
            bail!("the training sets are not on the device");
        };
        gather_plan.write_chunk_uniforms(&self.ctx, ats);
        self.train_plan.write_chunk_uniforms(&self.ctx, ats);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train chunk"),
            });
        for (r, at) in ats.iter().enumerate() {
            // Transport and density add into the gradient buffer: each step starts from zero.
            enc.clear_buffer(&self.bufs.grads, 0, None);
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("train step"),
                timestamp_writes: None,
            });
            gather_plan.record_nth(&mut pass, at, r, |_| true);
            self.train_plan.record_nth(&mut pass, at, r, |_| true);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Chooses the matmul variant of every product of every plan by measurement at full batch.
    fn autotune(&mut self) -> Result<()> {
        let at = self.launch(self.capacity, self.step.max(1));
        let ctx = self.ctx.clone();
        for plan in [
            &mut self.train_plan,
            &mut self.eval_plan,
            &mut self.eval_masked_plan,
        ] {
            plan.write_uniforms(&ctx, &at);
            plan.autotune(&ctx, &at)?;
        }
        Ok(())
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Waits until every submitted step has finished (for benchmarks).
    pub fn sync(&self) -> Result<()> {
        self.ctx.wait()
    }

    /// Writes `plan`'s uniforms for `at`, records it in one pass and submits.
    fn submit(&mut self, which: Which, at: &Launch, label: &str) {
        let plan = match which {
            Which::Train => &mut self.train_plan,
            Which::Eval => &mut self.eval_plan,
            Which::EvalMasked => &mut self.eval_masked_plan,
        };
        plan.write_uniforms(&self.ctx, at);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        if which == Which::Train {
            enc.clear_buffer(&self.bufs.grads, 0, None);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            plan.record(&mut pass, at, |_| true);
        }
        self.ctx.queue.submit([enc.finish()]);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Train,
    Eval,
    EvalMasked,
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
        crate::backend::check_batch(&self.model, self.capacity, batch)?;
        let b = batch.size;
        let heads = self.model.heads;
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
        let at = self.launch(b, self.step);
        self.submit(Which::Train, &at, "train step");
        self.pending_steps += 1;
        self.last_batch = b;
        Ok(())
    }

    fn take_losses(&mut self) -> Result<Option<Losses>> {
        if self.pending_steps == 0 {
            return Ok(None);
        }
        let slots = self.bufs.slots;
        let acc = buffers::read(&self.ctx, &self.bufs.acc, 0, slots.len())?;
        self.ctx
            .queue
            .write_buffer(&self.bufs.acc, 0, bytemuck::cast_slice(&vec![0f32; slots.len()]));
        let n = self.pending_steps as f64;
        self.pending_steps = 0;
        let mean = |i: usize| acc[i] as f64 / n;
        Ok(Some(
            Losses {
                task: mean(LossSlots::TASK),
                transport: (0..slots.spatial).map(|s| mean(slots.transport(s))).collect(),
                density: (0..slots.spatial).map(|s| mean(slots.density(s))).collect(),
                total: 0.0,
            }
            .with_total(&self.model),
        ))
    }

    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>) -> Result<Vec<f32>> {
        self.ctx.check()?;
        let n0 = self.model.sizes[0];
        let out_dim = self.model.output_dim();
        crate::backend::check_logits_input(&self.model, inputs, count, keep)?;
        if let Some(keep) = keep {
            let flat = flatten_mask(keep, &self.model.sizes)?;
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
            let at = self.launch(b, self.step.max(1));
            let which = if keep.is_some() {
                Which::EvalMasked
            } else {
                Which::Eval
            };
            self.submit(which, &at, "logits");
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
        crate::backend::check_state(&self.model, state)?;
        let q = &self.ctx.queue;
        q.write_buffer(&self.bufs.params, 0, bytemuck::cast_slice(&state.params.data));
        q.write_buffer(&self.bufs.adam_m, 0, bytemuck::cast_slice(&state.adam_m));
        q.write_buffer(&self.bufs.adam_v, 0, bytemuck::cast_slice(&state.adam_v));
        self.step = state.step;
        Ok(())
    }

    fn synchronize(&mut self) -> Result<()> {
        self.ctx.wait()
    }

    fn steps_per_submit(&self) -> usize {
        self.opts.steps_per_submit
    }

    fn train_batches(
        &mut self,
        data: &Datasets,
        order: &EpochOrder,
        batches: std::ops::Range<usize>,
        scratch: &mut Batch,
    ) -> Result<()> {
        self.ctx.check()?;
        if !self.make_resident(data, order)? {
            return crate::backend::train_batches_on_host(self, data, order, batches, scratch);
        }
        let bs = self.train.batch_size;
        let len = order.len();
        if batches.end > order.num_batches(bs) {
            bail!(
                "batches {}..{} of an epoch of {} batches",
                batches.start,
                batches.end,
                order.num_batches(bs)
            );
        }
        let mut b = batches.start;
        while b < batches.end {
            let n = (batches.end - b).min(self.opts.steps_per_submit);
            let ats: Vec<Launch> = (0..n)
                .map(|i| {
                    let first = (b + i) * bs;
                    Launch {
                        batch: bs.min(len - first),
                        adam: AdamStep::of(&self.train, self.step + 1 + i as u64),
                        first,
                    }
                })
                .collect();
            self.submit_chunk(&ats)?;
            self.step += n as u64;
            self.pending_steps += n as u64;
            self.last_batch = ats.last().map_or(0, |a| a.batch);
            b += n;
        }
        Ok(())
    }
}
