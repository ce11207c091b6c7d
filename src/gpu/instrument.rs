//! Instrumentation beside the runtime: the step breakdown (whole step against its matmuls alone),
//! the matmul variants chosen, and a snapshot of activations, gradient and state for tests.

use super::autotune::Choice;
use super::buffers;
use super::matmul::Variant;
use super::step_table::StepRecord;
use super::Resident;
use super::{gather, GpuBackend};
use crate::backend::Backend;
use crate::data::batches::{Batch, EpochOrder};
use crate::data::Datasets;
use crate::model::TrainState;
use anyhow::{bail, Result};

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

impl GpuBackend {
    /// The matmul variant that runs each product of the training step, in dispatch order, with
    /// its shape: for logs and benchmarks.
    pub fn matmul_variants(&self) -> Vec<(String, Variant)> {
        self.train_plan
            .steps
            .iter()
            .filter_map(|s| s.op.matmul())
            .map(|mm| (mm.args_at(self.capacity).shape_key(), mm.running()))
            .collect()
    }

    /// [`matmul_variants`](Self::matmul_variants) with the autotune's reason where it chose (every
    /// variant's median, the clock): `None` for a fixed variant.
    pub fn matmul_choices(&self) -> Vec<(String, Variant, Option<Choice>)> {
        let known = super::autotune::choices(&self.ctx);
        self.matmul_variants()
            .into_iter()
            .map(|(shape, v)| {
                let c = known.get(&shape).cloned();
                (shape, v, c)
            })
            .collect()
    }

    /// Wall seconds of one whole training step on `batch` and of the same step's matmul dispatches
    /// alone (same pipelines, bind groups and batch size, one pass and one submit each), each the
    /// mean of `iters` submits after one warm-up, waiting for the GPU inside the timed region: the
    /// non-matmul kernels and the dispatch overhead must not dominate a step. The model's state is
    /// restored afterwards.
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

        // The uniforms hold the last step's (same batch size), so the matmuls are recorded as is.
        let at = self.launch(batch.size, self.step[0].max(1));
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
                this.train_plan.record(&mut pass, &at, |k| k.matmul().is_some());
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
        let steps = &self.train_plan.steps;
        let matmuls = steps.iter().filter(|s| s.op.matmul().is_some()).count();
        let dispatches = steps.len();
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

    /// Batch `b` of `order` as the device's gather builds it, read back (waits): the GPU twin of
    /// `EpochOrder::fill_batch`, for tests. Trains nothing.
    pub fn gathered_batch(&mut self, data: &Datasets, order: &EpochOrder, b: usize) -> Result<Batch> {
        if !self.make_resident(data, &[Some(order)])? {
            bail!(
                "the training sets are not on the device: {:?}",
                self.device_data_status()
            );
        }
        let bs = self.train.batch_size;
        let first = b * bs;
        if first >= order.len() {
            bail!("batch {b} is past the end of the epoch");
        }
        let at = self.launch(bs.min(order.len() - first), 1);
        self.write_step_table(&[StepRecord::active(
            at.batch,
            first,
            gather::mode_code(order.mode()),
            at.adam,
        )]);
        let Resident::Yes { data: dd, plan } = &mut self.resident else {
            bail!("the training sets are not on the device");
        };
        dd.set_order(&self.ctx, 0, order)?;
        plan.write_uniforms(&self.ctx, &at);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gather"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gather"),
                timestamp_writes: None,
            });
            plan.record(&mut pass, &at, |_| true);
        }
        self.ctx.queue.submit([enc.finish()]);
        let width = self.model.sizes[0];
        let heads = self.model.heads;
        let mut out = buffers::read_many(
            &self.ctx,
            &[
                (&self.bufs.input, 0, at.batch * width),
                (&self.bufs.labels, 0, at.batch * heads),
            ],
        )?;
        let labels = out.pop().unwrap_or_default();
        let inputs = out.pop().unwrap_or_default();
        Ok(Batch {
            size: at.batch,
            input_dim: width,
            inputs,
            labels: labels.iter().map(|l| l.to_bits() as i32).collect(),
        })
    }
}
