//! True timing: the seconds `train` reports for an epoch (`metrics.jsonl`, and from them
//! `summary.json`'s `seconds` and `seconds_per_epoch`) cover the device finishing the epoch's steps,
//! not only their submission. A backend wrapper records when each `synchronize` call returned and
//! when the first step after the previous one began; each epoch's reported seconds must cover that
//! span, and `synchronize` must be called once per epoch (never inside a step). Before the epoch
//! clock waited for the device, `train` never called `synchronize` and this failed.
//!
//! The GPU half runs on the adapter of `gpu::test_context` (lavapipe in CI; skipped without one
//! unless `SPATIAL_GPU_REQUIRE_ADAPTER=1`).

mod support;

use spatial_gpu::backend::{Backend, Losses};
use spatial_gpu::checkpoint::Progress;
use spatial_gpu::config::{InputMode, ModelConfig, TrainConfig};
use spatial_gpu::data::batches::Batch;
use spatial_gpu::model::{NeuronMask, Params, TrainState};
use spatial_gpu::train::{self, Outcome};
use std::time::Instant;
use support::*;

/// Delegates to `inner`, recording for each `synchronize` call the instant the first step since the
/// previous call began and the instant the device was done.
struct Timed {
    inner: Box<dyn Backend>,
    /// The first step since the last `synchronize`, if any step was taken since.
    first_step: Option<Instant>,
    /// Per `synchronize` call: (first step before it, when it returned); `None` for a call with no
    /// step before it.
    syncs: Vec<(Option<Instant>, Instant)>,
    /// Steps taken, and `synchronize` calls, as (steps so far) at each call.
    steps_at_sync: Vec<u64>,
}

impl Backend for Timed {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn model_config(&self) -> &ModelConfig {
        self.inner.model_config()
    }
    fn train_config(&self) -> &TrainConfig {
        self.inner.train_config()
    }
    fn steps(&self) -> u64 {
        self.inner.steps()
    }
    fn train_step(&mut self, batch: &Batch) -> anyhow::Result<()> {
        self.first_step.get_or_insert_with(Instant::now);
        self.inner.train_step(batch)
    }
    fn take_losses(&mut self) -> anyhow::Result<Option<Losses>> {
        self.inner.take_losses()
    }
    fn logits(
        &mut self,
        inputs: &[f32],
        count: usize,
        keep: Option<&NeuronMask>,
    ) -> anyhow::Result<Vec<f32>> {
        self.inner.logits(inputs, count, keep)
    }
    fn state(&mut self) -> anyhow::Result<TrainState> {
        self.inner.state()
    }
    fn set_state(&mut self, state: &TrainState) -> anyhow::Result<()> {
        self.inner.set_state(state)
    }
    fn synchronize(&mut self) -> anyhow::Result<()> {
        self.inner.synchronize()?;
        self.syncs.push((self.first_step.take(), Instant::now()));
        self.steps_at_sync.push(self.inner.steps());
        Ok(())
    }
}

/// Trains `inner` for 3 epochs through [`Timed`] and checks the epoch clocks.
fn check_epoch_clock_covers_the_device(
    make: impl Fn(&ModelConfig, &TrainConfig, TrainState) -> Box<dyn Backend>,
) {
    let data = small_data();
    let epochs = 3;
    let (model, cfg) = small_configs(InputMode::Concat, &data, epochs, 5);
    let state = TrainState::new(Params::init(&model, cfg.seed));
    let mut b = Timed {
        inner: make(&model, &cfg, state),
        first_step: None,
        syncs: Vec::new(),
        steps_at_sync: Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let outcome = train::train(&mut b, &data, &quiet_options(dir.path()), Progress::default()).unwrap();
    let Outcome::Finished(summary) = outcome else {
        panic!("{outcome:?}");
    };
    let steps_per_epoch = b.steps() / epochs as u64;
    let want: Vec<u64> = (1..=epochs as u64).map(|e| e * steps_per_epoch).collect();
    assert_eq!(
        b.steps_at_sync, want,
        "synchronize must be called once per epoch, after its last step (steps at each call)"
    );
    let text = std::fs::read_to_string(train::metrics_path(dir.path())).unwrap();
    let seconds: Vec<f64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seconds"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(seconds.len(), epochs);
    for (e, ((first, done), reported)) in b.syncs.iter().zip(&seconds).enumerate() {
        let first = first.expect("steps before each synchronize");
        let span = (*done - first).as_secs_f64();
        assert!(
            *reported >= span,
            "epoch {}: metrics.jsonl says {reported} s, but from its first step to the device finishing took {span} s",
            e + 1
        );
    }
    let total: f64 = seconds.iter().sum();
    assert!(
        (summary.seconds - total).abs() <= 1e-9 * total.max(1.0),
        "{} vs {total}",
        summary.seconds
    );
}

#[test]
fn cpu_epoch_clock_covers_the_work() {
    check_epoch_clock_covers_the_device(|m, t, s| {
        Box::new(spatial_gpu::cpu::CpuBackend::new(m.clone(), t.clone(), s).unwrap())
    });
}

#[test]
fn gpu_epoch_clock_waits_for_the_device() {
    use spatial_gpu::gpu::{GpuBackend, GpuOptions, MatmulChoice, Variant};
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    check_epoch_clock_covers_the_device(|m, t, s| {
        // A fixed matmul variant: autotuning on a software adapter takes long and changes nothing here.
        let opts = GpuOptions {
            matmul: MatmulChoice::Fixed(Variant::Tiled),
            ..GpuOptions::default()
        };
        Box::new(GpuBackend::with_options(ctx.clone(), m.clone(), t.clone(), s, opts).unwrap())
    });
}
