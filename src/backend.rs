//! The one interface every compute backend implements (`cpu`, the reference, and `gpu`, the WGSL
//! engine). The training loop, evaluation, split and checkpoints only ever talk to this trait.

use crate::config::{ModelConfig, TrainConfig};
use crate::data::batches::{Batch, EpochOrder, TestSet};
use crate::data::Datasets;
use crate::model::{NeuronMask, TrainState};
use crate::ops::{self, softmax_xent::SoftmaxXentShape, OpError};
use serde::{Deserialize, Serialize};

/// The terms of the loss, for one step or averaged over several.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    /// Summed cross-entropy of the labelled heads, averaged over the examples.
    pub task: f64,
    /// `T(l)` for each spatial layer, in the order of `ModelConfig::spatial_layers` (before alpha).
    pub transport: Vec<f64>,
    /// `V(l)` for each spatial layer (before beta).
    pub density: Vec<f64>,
    /// `task + (1/|L|) Σ (alpha·T(l) + beta·V(l))`.
    pub total: f64,
}

impl Losses {
    /// The total loss from its terms, as METHOD.md defines it.
    pub fn with_total(mut self, model: &ModelConfig) -> Losses {
        let n = model.spatial_layers.len().max(1) as f64;
        let spatial: f64 = self
            .transport
            .iter()
            .zip(&self.density)
            .map(|(t, v)| model.alpha as f64 * t + model.beta as f64 * v)
            .sum();
        self.total = self.task + spatial / n;
        self
    }

    pub fn is_finite(&self) -> bool {
        self.total.is_finite()
            && self.task.is_finite()
            && self.transport.iter().chain(&self.density).all(|v| v.is_finite())
    }
}

/// Sums losses over steps and gives their mean.
#[derive(Clone, Debug, Default)]
pub struct LossMeter {
    sum: Losses,
    steps: u64,
}

impl LossMeter {
    pub fn add(&mut self, l: &Losses) {
        if self.steps == 0 {
            self.sum = Losses {
                transport: vec![0.0; l.transport.len()],
                density: vec![0.0; l.density.len()],
                ..Losses::default()
            };
        }
        self.sum.task += l.task;
        self.sum.total += l.total;
        for (a, b) in self.sum.transport.iter_mut().zip(&l.transport) {
            *a += b;
        }
        for (a, b) in self.sum.density.iter_mut().zip(&l.density) {
            *a += b;
        }
        self.steps += 1;
    }

    /// The mean since the last call, and a reset; `None` if no step was added.
    pub fn take_mean(&mut self) -> Option<Losses> {
        if self.steps == 0 {
            return None;
        }
        let n = self.steps as f64;
        let s = std::mem::take(&mut self.sum);
        self.steps = 0;
        Some(Losses {
            task: s.task / n,
            transport: s.transport.iter().map(|v| v / n).collect(),
            density: s.density.iter().map(|v| v / n).collect(),
            total: s.total / n,
        })
    }
}

/// A compute backend that trains and evaluates one model.
pub trait Backend {
    /// Human-readable name, e.g. `cpu` or `gpu (NVIDIA H100, Vulkan)`.
    fn name(&self) -> String;
    fn model_config(&self) -> &ModelConfig;
    fn train_config(&self) -> &TrainConfig;
    /// Number of training steps (Adam updates) taken so far, known on the host without readback.
    fn steps(&self) -> u64;

    /// Forward, backward and one Adam step on `batch`. Nothing is read back.
    fn train_step(&mut self, batch: &Batch) -> anyhow::Result<()>;

    /// Mean losses over the steps since the last call (`None` if there were none).
    fn take_losses(&mut self) -> anyhow::Result<Option<Losses>>;

    /// Output logits `(count, N_L)` for `inputs` `(count, N_0)`, with the neurons switched off by
    /// `keep` (see [`NeuronMask`]) passing nothing on.
    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>)
        -> anyhow::Result<Vec<f32>>;

    /// Per head of the model, `(correct, labelled)` over the whole test set `test` with the neurons
    /// `keep` switches off: `ops::accuracy::count_correct` of the test set's logits. The default
    /// computes the logits with [`Backend::logits`] and counts on the host
    /// ([`count_correct_on_host`]); the GPU keeps the test set on the device and counts there,
    /// reading back only the counts.
    fn count_correct(
        &mut self,
        test: &TestSet,
        keep: Option<&NeuronMask>,
    ) -> anyhow::Result<Vec<(u64, u64)>> {
        count_correct_on_host(self, test, keep)
    }

    /// Parameters, Adam's moments and step count (read back from the device if needed).
    fn state(&mut self) -> anyhow::Result<TrainState>;

    /// Replaces parameters, moments and step count.
    fn set_state(&mut self, state: &TrainState) -> anyhow::Result<()>;

    /// Returns once the device has finished every step submitted so far (a blocking device poll
    /// on the GPU; nothing to wait for on the CPU, whose steps finish inside `train_step`). Every
    /// timed region that reports a training rate ends with this call, so the time covers the work
    /// and not only its submission; it is never called inside a step.
    fn synchronize(&mut self) -> anyhow::Result<()>;

    /// The most training steps [`Backend::train_batches`] records into one submission (1 where
    /// every step runs on its own, as on the CPU). The training loop checks Ctrl-C, saves
    /// checkpoints and records history between such chunks, never inside one.
    fn steps_per_submit(&self) -> usize {
        1
    }

    /// Trains on batches `batches` of `order` (an epoch's order over `data`, made for the run's
    /// mode), in order, as `train_step` on each would. The default builds each batch on the host
    /// in `scratch` ([`train_batches_on_host`]); the GPU builds them on the device from data it
    /// holds and submits up to [`Backend::steps_per_submit`] steps at once.
    fn train_batches(
        &mut self,
        data: &Datasets,
        order: &EpochOrder,
        batches: std::ops::Range<usize>,
        scratch: &mut Batch,
    ) -> anyhow::Result<()> {
        train_batches_on_host(self, data, order, batches, scratch)
    }
}

/// [`Backend::train_batches`] with batches built on the host, one `train_step` each.
pub fn train_batches_on_host<B: Backend + ?Sized>(
    backend: &mut B,
    data: &Datasets,
    order: &EpochOrder,
    batches: std::ops::Range<usize>,
    scratch: &mut Batch,
) -> anyhow::Result<()> {
    let cfg = backend.train_config();
    let (mode, batch_size) = (cfg.mode, cfg.batch_size);
    for b in batches {
        order.fill_batch(data, mode, b, batch_size, scratch);
        backend.train_step(scratch)?;
    }
    Ok(())
}

/// [`Backend::count_correct`] from the logits of the whole test set, counted on the host.
pub fn count_correct_on_host<B: Backend + ?Sized>(
    backend: &mut B,
    test: &TestSet,
    keep: Option<&NeuronMask>,
) -> anyhow::Result<Vec<(u64, u64)>> {
    check_test_set(backend.model_config(), test, keep)?;
    let offsets = backend.model_config().head_offsets();
    let logits = backend.logits(&test.inputs, test.len, keep)?;
    Ok(ops::accuracy::count_correct(
        &logits,
        &test.labels,
        test.len,
        &offsets,
    ))
}

/// The checks of a training batch that both backends make before touching it, so that both refuse
/// the same bad input with the same error: a size between 1 and the backend's `capacity` (the
/// `--batch-size` it was built for), the model's input width, enough inputs and labels, and every
/// label a class of its head or negative (no label).
pub fn check_batch(model: &ModelConfig, capacity: usize, batch: &Batch) -> Result<(), OpError> {
    let b = batch.size;
    if b == 0 || b > capacity {
        return Err(OpError::new(
            "batch",
            format!("a batch of {b} examples does not fit the backend, built for batches of 1 to {capacity}"),
        ));
    }
    if batch.input_dim != model.sizes[0] {
        return Err(OpError::new(
            "batch",
            format!(
                "the batch has {} inputs per example, the model's input layer has {}",
                batch.input_dim, model.sizes[0]
            ),
        ));
    }
    ops::expect_at_least("batch", "the inputs", batch.inputs.len(), b * batch.input_dim)?;
    ops::expect_at_least("batch", "the labels", batch.labels.len(), b * model.heads)?;
    model.with_head_offsets(|offsets| {
        let shape = SoftmaxXentShape { batch: b, offsets };
        shape.check(b * shape.width(), &batch.labels[..b * model.heads])
    })
}

/// The checks of an evaluation's input that both backends make: `count` examples of the input
/// width, and a neuron mask (if any) with one entry per neuron of every layer `1..=L`.
pub fn check_logits_input(
    model: &ModelConfig,
    inputs: &[f32],
    count: usize,
    keep: Option<&NeuronMask>,
) -> Result<(), OpError> {
    ops::expect_len("logits", "the inputs", inputs.len(), count * model.sizes[0])?;
    if let Some(keep) = keep {
        ops::mask::flatten(keep, &model.sizes)?;
    }
    Ok(())
}

/// The checks of a test set that both backends make before counting on it: the inputs of
/// [`check_logits_input`] and one label per row and head.
pub fn check_test_set(model: &ModelConfig, test: &TestSet, keep: Option<&NeuronMask>) -> Result<(), OpError> {
    ops::expect_len(
        "accuracy",
        "the test labels",
        test.labels.len(),
        test.len * model.heads,
    )?;
    check_logits_input(model, &test.inputs, test.len, keep)
}

/// The checks of a state (parameters, Adam's moments) that both backends make before taking it:
/// the layout of the model's sizes, and every buffer as long as that layout.
pub fn check_state(model: &ModelConfig, state: &TrainState) -> Result<(), OpError> {
    let layout = crate::model::Layout::new(&model.sizes);
    if state.params.layout != layout {
        return Err(OpError::new(
            "state",
            format!(
                "parameters of shape {:?} do not fit a model of sizes {:?}",
                state.params.layout.sizes, model.sizes
            ),
        ));
    }
    ops::expect_len("state", "the parameters", state.params.data.len(), layout.len)?;
    ops::expect_len("state", "Adam's first moment", state.adam_m.len(), layout.len)?;
    ops::expect_len("state", "Adam's second moment", state.adam_v.len(), layout.len)
}
