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
pub mod autotune;
pub mod bias_grad;
pub mod buffers;
pub mod context;
pub mod density;
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
use crate::data::batches::Batch;
use crate::model::{Layout, NeuronMask, TrainState};
use crate::ops::adam::AdamStep;
use crate::ops::mask::flatten as flatten_mask;
use crate::ops::reduce::LossSlots;
use anyhow::{bail, Result};
use kernel::{Compiled, Launch};
use plan::{Buffers, PlanInputs};
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
        let train_plan = Compiled::new(&ctx, "training step", plan::training_step(&inputs))?;
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
        }
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
}
