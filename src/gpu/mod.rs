//! The GPU backend: the training step of `cpu::forward_backward` + Adam as WGSL kernels on wgpu.
//!
//! Layout: one module per op (`matmul`, `bias_grad`, `mask`, `softmax_xent`, `transport`,
//! `density`, `reduce`, `adam`, `accuracy`), each owning its shader, its uniform block (a `#[repr(C)]` mirror
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

pub mod accuracy;
pub mod adam;
pub mod autotune;
pub mod bias_grad;
pub mod buffers;
pub mod chunk;
pub mod context;
pub mod density;
pub mod evaluate;
pub mod gather;
pub mod hyper;
pub mod instrument;
pub mod kernel;
pub mod mask;
pub mod matmul;
pub mod plan;
pub mod population;
pub mod reduce;
pub mod shader;
pub mod softmax_xent;
pub mod step_table;
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
    matmul::SHADER_VEC4,
    bias_grad::SHADER,
    mask::SHADER,
    softmax_xent::SHADER,
    transport::SHADER,
    density::SHADER,
    reduce::SHADER,
    adam::SHADER,
    gather::SHADER,
    accuracy::SHADER,
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
#[allow(clippy::large_enum_variant)] // one per backend: not worth a box
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

/// The WGSL engine behind [`Backend`]: one network, or a population of networks of one shape
/// trained in the same dispatches (`population.rs`).
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    /// The configurations of network 0 (the population's shape, batch size and schedule; its
    /// networks may differ in what [`hyper::population_key`] leaves out).
    model: ModelConfig,
    train: TrainConfig,
    /// Networks in the population (1 for a single run), and each one's configurations.
    models: usize,
    configs: Vec<ModelConfig>,
    trains: Vec<TrainConfig>,
    layout: Layout,
    capacity: usize,
    /// Per network: Adam steps taken (networks whose epochs differ in length, or that joined at
    /// different points of their runs, stand at different steps).
    step: Vec<u64>,
    /// Per network: its input mode's code for the gather (`gather::mode_code`).
    modes: Vec<u32>,
    bufs: Buffers,
    train_plan: Compiled,
    /// The evaluation pass without and with the neuron mask.
    eval_plan: Compiled,
    eval_masked_plan: Compiled,
    /// Per network: steps whose losses sit in its accumulator.
    pending: Vec<u64>,
    /// Changes whenever the parameters may have (a training step or chunk, a new state), so that
    /// an evaluation of every network can be reused until then (`evaluate.rs`).
    version: u64,
    /// Size of the last training batch (for snapshots).
    last_batch: usize,
    opts: GpuOptions,
    resident: Resident,
    /// The test set on the device (`evaluate.rs`).
    eval: evaluate::EvalData,
    /// The test set evaluated before that one, still on the device (`evaluate.rs`).
    eval_spare: Option<Box<evaluate::DeviceTest>>,
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
        Self::build(ctx, vec![model], vec![train], vec![state], opts)
    }

    /// The engine of `trains.len()` networks (one network: a single run), network `k` of
    /// `models[k]` with `trains[k]` from `states[k]` (each at its own step). The networks share
    /// their shape, data, batch size and Adam's betas, and may differ in seed, initialisation,
    /// learning rate, alpha, beta, both norms, epochs, and input mode where the input width is the
    /// same (mixed and sequential) ([`hyper::check_population`]).
    pub(crate) fn build(
        ctx: Arc<GpuContext>,
        models: Vec<ModelConfig>,
        trains: Vec<TrainConfig>,
        states: Vec<TrainState>,
        opts: GpuOptions,
    ) -> Result<GpuBackend> {
        let (Some(model), Some(train)) = (models.first().cloned(), trains.first().cloned()) else {
            bail!("a population needs at least one network");
        };
        if trains.len() != states.len() || models.len() != trains.len() {
            bail!(
                "{} model configurations, {} training configurations and {} states",
                models.len(),
                trains.len(),
                states.len()
            );
        }
        for (m, t) in models.iter().zip(&trains) {
            m.validate()?;
            t.validate()?;
        }
        hyper::check_population(&models, &trains)?;
        let configs = models;
        ctx.check()?;
        let layout = Layout::new(&model.sizes);
        for state in &states {
            crate::backend::check_state(&model, state)?;
        }
        let models = trains.len();
        let hyper_layout = hyper::HyperLayout::of(&model);
        let records: Vec<_> = configs.iter().zip(&trains).collect();
        let hyper_records = hyper_layout.records(&records);
        let cap = train.batch_size;
        let max_u32 = u32::MAX as usize;
        let widest = model.sizes.iter().max().copied().unwrap_or(0);
        if layout.len * models >= max_u32 / 4 || cap * widest * models >= max_u32 / 4 {
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
        if opts.steps_per_submit == 0 {
            bail!("the GPU's steps per submit must be at least 1");
        }
        let bufs = Buffers::new(
            &ctx,
            &model,
            &layout,
            cap,
            &states,
            &hyper_records,
            opts.steps_per_submit,
        )?;
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
            shared_input: false,
        };
        let train_plan = Compiled::population(
            &ctx,
            "training step",
            plan::training_step(&inputs),
            opts.steps_per_submit,
            models,
        )?;
        // Evaluation: every network on the same inputs (those of network 0's batch).
        let inputs = PlanInputs {
            shared_input: true,
            ..inputs
        };
        let eval_plan =
            Compiled::population(&ctx, "evaluation", plan::evaluation(&inputs, false), 1, models)?;
        let eval_masked_plan = Compiled::population(
            &ctx,
            "masked evaluation",
            plan::evaluation(&inputs, true),
            1,
            models,
        )?;
        let step = states.iter().map(|s| s.step).collect();
        let modes = trains.iter().map(|t| gather::mode_code(t.mode)).collect();
        let mut gb = GpuBackend {
            ctx,
            model,
            train,
            models,
            configs,
            trains,
            layout,
            capacity: cap,
            step,
            modes,
            bufs,
            train_plan,
            eval_plan,
            eval_masked_plan,
            pending: vec![0; models],
            version: 0,
            last_batch: 0,
            opts,
            resident: Resident::No,
            eval: evaluate::EvalData::No,
            eval_spare: None,
        };
        if opts.matmul == MatmulChoice::Autotune {
            gb.autotune()?;
        }
        gb.ctx.check()?;
        Ok(gb)
    }

    /// What a recording at batch `b` and Adam step `step` needs (its step table records at 0).
    fn launch(&self, batch: usize, step: u64) -> Launch {
        Launch {
            batch,
            adam: AdamStep::of(&self.train, step),
            step_at: 0,
            networks: None,
            first: 0,
        }
    }

    /// Writes the step table's first `records.len()` records (`step_table.rs`): record
    /// `r · models + z` is network `z`'s in recording `r`.
    fn write_step_table(&self, records: &[step_table::StepRecord]) {
        debug_assert!(records.len() <= step_table::len(self.opts.steps_per_submit, self.models));
        self.ctx
            .queue
            .write_buffer(&self.bufs.steps, 0, step_table::bytes(records));
    }

    /// Adam steps network `k` has taken (`k` must be a network of the population).
    pub fn steps_of(&self, k: usize) -> u64 {
        self.step[k]
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

    /// Chooses the matmul variant of every product of every plan by measurement at full batch.
    fn autotune(&mut self) -> Result<()> {
        let at = self.launch(self.capacity, self.step[0].max(1));
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

impl GpuBackend {
    /// [`Backend::take_losses`] of network `k`.
    pub fn take_losses_of(&mut self, k: usize) -> Result<Option<Losses>> {
        self.check_model(k)?;
        if self.pending[k] == 0 {
            return Ok(None);
        }
        let slots = self.bufs.slots;
        let at = k * self.bufs.strides.acc;
        let acc = buffers::read(&self.ctx, &self.bufs.acc, at, slots.len())?;
        self.ctx.queue.write_buffer(
            &self.bufs.acc,
            (at * 4) as u64,
            bytemuck::cast_slice(&vec![0f32; slots.len()]),
        );
        let n = self.pending[k] as f64;
        self.pending[k] = 0;
        let mean = |i: usize| acc[i] as f64 / n;
        Ok(Some(
            Losses {
                task: mean(LossSlots::TASK),
                transport: (0..slots.spatial).map(|s| mean(slots.transport(s))).collect(),
                density: (0..slots.spatial).map(|s| mean(slots.density(s))).collect(),
                total: 0.0,
            }
            .with_total(&self.configs[k]),
        ))
    }

    /// [`Backend::logits`] of network `k` (a population computes them for every network on the
    /// same inputs and reads back network `k`'s).
    pub fn logits_of(
        &mut self,
        k: usize,
        inputs: &[f32],
        count: usize,
        keep: Option<&NeuronMask>,
    ) -> Result<Vec<f32>> {
        self.ctx.check()?;
        self.check_model(k)?;
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
            let at = self.launch(b, self.step[0].max(1));
            let which = if keep.is_some() {
                Which::EvalMasked
            } else {
                Which::Eval
            };
            self.submit(which, &at, "logits");
            let at = k * self.bufs.strides.layer[last];
            out.extend(buffers::read(&self.ctx, &self.bufs.acts[last], at, b * out_dim)?);
        }
        Ok(out)
    }

    /// [`Backend::state`] of network `k`.
    pub fn state_of(&mut self, k: usize) -> Result<TrainState> {
        self.check_model(k)?;
        let n = self.layout.len;
        let at = k * self.bufs.strides.params;
        let mut out = buffers::read_many(
            &self.ctx,
            &[
                (&self.bufs.params, at, n),
                (&self.bufs.adam_m, at, n),
                (&self.bufs.adam_v, at, n),
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
            step: self.step[k],
        })
    }

    /// [`Backend::set_state`] of network `k` (its own step with it).
    pub fn set_state_of(&mut self, k: usize, state: &TrainState) -> Result<()> {
        self.ctx.check()?;
        self.check_model(k)?;
        crate::backend::check_state(&self.model, state)?;
        let q = &self.ctx.queue;
        let at = (k * self.bufs.strides.params * 4) as u64;
        q.write_buffer(&self.bufs.params, at, bytemuck::cast_slice(&state.params.data));
        q.write_buffer(&self.bufs.adam_m, at, bytemuck::cast_slice(&state.adam_m));
        q.write_buffer(&self.bufs.adam_v, at, bytemuck::cast_slice(&state.adam_v));
        self.step[k] = state.step;
        self.version += 1;
        Ok(())
    }

    /// Networks trained together (1 for a single run).
    pub fn models(&self) -> usize {
        self.models
    }

    /// The training configuration of network `k`.
    pub fn train_config_of(&self, k: usize) -> &TrainConfig {
        &self.trains[k]
    }

    /// The model configuration of network `k`.
    pub fn model_config_of(&self, k: usize) -> &ModelConfig {
        &self.configs[k]
    }

    fn check_model(&self, k: usize) -> Result<()> {
        if k >= self.models {
            bail!("network {k} of a population of {}", self.models);
        }
        Ok(())
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
        self.step[0]
    }

    fn train_step(&mut self, batch: &Batch) -> Result<()> {
        self.ctx.check()?;
        if self.models > 1 {
            bail!("a population trains through `train_orders`, with one order per network");
        }
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
        self.step[0] += 1;
        self.version += 1;
        let at = self.launch(b, self.step[0]);
        self.write_step_table(&[step_table::StepRecord::active(b, 0, self.modes[0], at.adam)]);
        self.submit(Which::Train, &at, "train step");
        self.pending[0] += 1;
        self.last_batch = b;
        Ok(())
    }

    fn take_losses(&mut self) -> Result<Option<Losses>> {
        self.take_losses_of(0)
    }

    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>) -> Result<Vec<f32>> {
        self.logits_of(0, inputs, count, keep)
    }

    fn count_correct(
        &mut self,
        test: &crate::data::batches::TestSet,
        keep: Option<&NeuronMask>,
    ) -> Result<Vec<(u64, u64)>> {
        self.count_correct_of(0, test, keep)
    }

    fn state(&mut self) -> Result<TrainState> {
        self.state_of(0)
    }

    fn set_state(&mut self, state: &TrainState) -> Result<()> {
        self.set_state_of(0, state)
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
        if self.models > 1 {
            bail!("a population trains through `train_orders`, with one order per network");
        }
        if !self.train_orders(data, &[Some(order)], std::slice::from_ref(&batches))? {
            return crate::backend::train_batches_on_host(self, data, order, batches, scratch);
        }
        Ok(())
    }
}
