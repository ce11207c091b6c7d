//! The training loop: epochs of batches on any backend, evaluation, metrics, checkpoints.

use crate::backend::{Backend, Losses};
use crate::checkpoint::{self, EpochLosses, Progress};
use crate::config::InputMode;
use crate::config::ModelConfig;
use crate::cpu::softmax_xent::count_correct;
use crate::data::batches::{epoch_order, test_set, Batch, TestSet};
use crate::data::Datasets;
use crate::model::{Layout, NeuronMask, TrainState};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based number of the epoch just finished.
    pub epoch: usize,
    /// Wall seconds of this epoch's training steps (evaluation excluded).
    pub seconds: f64,
    /// Training examples per second over this epoch's steps.
    pub samples_per_second: f64,
    /// Mean task loss over the epoch's steps.
    pub task_loss: f64,
    /// Mean total loss over the epoch's steps.
    pub total_loss: f64,
    /// Mean `T(l)` per spatial layer.
    pub transport: Vec<f64>,
    /// Mean `V(l)` per spatial layer.
    pub density: Vec<f64>,
    /// Test accuracy per task (MNIST, Fashion-MNIST).
    pub task_accuracy: Vec<f64>,
    /// Mean of the tasks' test accuracies.
    pub accuracy: f64,
}

/// `summary.json`, written when training ends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub mode: InputMode,
    pub spatial: bool,
    pub seed: u64,
    pub epochs: usize,
    pub full_accuracy: f64,
    pub task_accuracy: Vec<f64>,
    /// Wall seconds of all training steps of this invocation (evaluation excluded).
    pub seconds: f64,
    pub seconds_per_epoch: f64,
    pub samples_per_second: f64,
    pub backend: String,
    pub model: crate::config::ModelConfig,
    pub train: crate::config::TrainConfig,
}

/// Per-task test accuracy of the backend's current model, with `keep` switching neurons off.
pub fn evaluate(backend: &mut dyn Backend, test: &TestSet, keep: Option<&NeuronMask>) -> Result<Vec<f64>> {
    let model = backend.model_config().clone();
    let logits = backend.logits(&test.inputs, test.len, keep)?;
    let counts = count_correct(&logits, &test.labels, test.len, model.heads, model.head_size());
    Ok(counts
        .iter()
        .map(|&(c, n)| if n == 0 { 0.0 } else { c as f64 / n as f64 })
        .collect())
}

/// How a training run reports and where it saves.
pub struct RunOptions {
    pub out: PathBuf,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Print one line per epoch to stdout.
    pub verbose: bool,
    /// Save a checkpoint every this many steps as well as at every epoch end (0 = epochs only).
    pub checkpoint_every: usize,
    /// Set (e.g. by a SIGINT handler) to stop at the next step boundary after saving.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Why `train` returned.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // returned once per run: not worth a box for its callers
pub enum Outcome {
    Finished(Summary),
    /// Stopped on request; a checkpoint at this point was saved.
    Interrupted(Progress),
}

pub fn metrics_path(out: &Path) -> PathBuf {
    out.join("metrics.jsonl")
}
pub fn summary_path(out: &Path) -> PathBuf {
    out.join("summary.json")
}
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.join(checkpoint::FILE_NAME)
}

/// Training produced a NaN or an infinity: at which step, in which layer, in which quantity.
///
/// The CPU backend checks its losses, gradients, parameters and moments after every step and reports
/// the exact step; other backends are checked at the end of each epoch and before every save (the
/// state read back), which gives a range of steps. No checkpoint is ever written from such a state.
#[derive(Clone, Debug, PartialEq)]
pub struct Diverged {
    /// The step (1-based Adam step) whose computation produced it, or the last step before the check.
    pub step: u64,
    /// For a check that runs less often than every step: the first step it may have happened at.
    pub since: Option<u64>,
    /// What is not finite, e.g. `layer 3 weight gradient`.
    pub what: String,
    /// Where in the run (epoch and batch); filled in by [`train`].
    pub place: String,
    /// What became of the checkpoint and what to try; filled in by [`train`].
    pub note: String,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.since {
            Some(s) if s < self.step => write!(f, "training diverged between steps {s} and {}", self.step)?,
            _ => write!(f, "training diverged at step {}", self.step)?,
        }
        if !self.place.is_empty() {
            write!(f, " ({})", self.place)?;
        }
        write!(f, ": {} is not finite{}", self.what, self.note)
    }
}

impl std::error::Error for Diverged {}

impl Diverged {
    pub fn at(step: u64, what: impl Into<String>) -> Diverged {
        Diverged {
            step,
            since: None,
            what: what.into(),
            place: String::new(),
            note: String::new(),
        }
    }
}

/// The exponent bits of an `f32`: all set for NaN and the infinities.
const EXP_BITS: u32 = 0x7f80_0000;
/// Exponent bits of 2^64: a value at least this large has a square that overflows `f32`.
const SQUARE_OVERFLOW_BITS: u32 = (64 + 127) << 23;

crate::multiversion! {
    /// True when every value's exponent bits are below `limit`: a branch-free scan, compiled per
    /// instruction set (src/cpu/simd.rs) because the CPU backend runs it over its gradient and
    /// parameters every step; the AVX-512 version takes half the baseline's time.
    fn all_below(data: &[f32], limit: u32) -> bool {
        data.chunks(1024).all(|c| {
            c.iter()
                .fold(0u32, |acc, v| acc | ((v.to_bits() & EXP_BITS >= limit) as u32))
                == 0
        })
    }
}

/// True when no value is a NaN or an infinity.
pub fn all_finite(data: &[f32]) -> bool {
    all_below(data, EXP_BITS)
}

/// The first tensor of `data` (a buffer of `layout`) with a value whose exponent bits reach `limit`,
/// named like `layer 3 weight`.
fn first_tensor_reaching(layout: &Layout, data: &[f32], limit: u32) -> Option<String> {
    if all_below(data, limit) {
        return None;
    }
    for l in 1..layout.sizes.len() {
        for (what, range) in [
            ("weight", &layout.weights[l - 1]),
            ("bias", &layout.biases[l - 1]),
        ] {
            if !all_below(&data[range.clone()], limit) {
                return Some(format!("layer {l} {what}"));
            }
        }
    }
    for (l, range) in layout.positions.iter().enumerate() {
        if !all_below(&data[range.clone()], limit) {
            return Some(format!("layer {l} position"));
        }
    }
    None
}

/// The first tensor of `data` (a buffer of `layout`) that holds a NaN or an infinity, named like
/// `layer 3 weight`; `None` if all are finite.
pub fn non_finite_tensor(layout: &Layout, data: &[f32]) -> Option<String> {
    first_tensor_reaching(layout, data, EXP_BITS)
}

/// What in a gradient would make Adam's step non-finite: a NaN or an infinity (`layer 3 weight
/// gradient`), or a value of 2^64 or more, whose square overflows Adam's second moment (`layer 3
/// weight gradient's square (Adam's second moment)`). One scan; `None` if the gradient is safe.
pub fn bad_gradient(layout: &Layout, grads: &[f32]) -> Option<String> {
    let t = first_tensor_reaching(layout, grads, SQUARE_OVERFLOW_BITS)?;
    Some(match non_finite_tensor(layout, grads) {
        Some(t) => format!("{t} gradient"),
        None => format!("{t} gradient's square (Adam's second moment)"),
    })
}

/// The terms of `losses` that are not finite, named with their layer (empty if all are finite).
pub fn non_finite_losses(model: &ModelConfig, losses: &Losses) -> Vec<String> {
    let mut what = Vec::new();
    if !losses.task.is_finite() {
        what.push(format!(
            "the task loss (cross-entropy of output layer {})",
            model.num_layers()
        ));
    }
    for (k, &l) in model.spatial_layers.iter().enumerate() {
        if losses.transport.get(k).is_some_and(|v| !v.is_finite()) {
            what.push(format!("the transport cost T({l}) of layer {l}"));
        }
        if losses.density.get(k).is_some_and(|v| !v.is_finite()) {
            what.push(format!("the density cost V({l}) of layer {l}"));
        }
    }
    if what.is_empty() && !losses.is_finite() {
        what.push("the total loss".into());
    }
    what
}

/// Joins the names of several non-finite quantities: the first, then the others in parentheses.
pub fn describe_non_finite(what: &[String]) -> String {
    match what {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {})", rest.join(", ")),
    }
}

/// The first tensor of a state holding a NaN or an infinity: parameters, then Adam's moments.
pub fn non_finite_state(state: &TrainState) -> Option<String> {
    let layout = &state.params.layout;
    if let Some(t) = non_finite_tensor(layout, &state.params.data) {
        return Some(t);
    }
    if let Some(t) = non_finite_tensor(layout, &state.adam_m) {
        return Some(format!("Adam's first moment of {t}"));
    }
    non_finite_tensor(layout, &state.adam_v).map(|t| format!("Adam's second moment of {t}"))
}

/// Trains from `start` to the configured number of epochs, writing metrics, checkpoints and the
/// summary into `opts.out` (which must exist).
///
/// `start` must be where the backend's state stands (`Progress::default()` for a new run, else the
/// progress of the checkpoint the state came from): the backend's step count is checked against it
/// and the data, which catches a resume on other data. Metrics lines of epochs after `start` (left by
/// a run that went further before an older checkpoint was restored) are dropped, and the line of
/// epoch `start.epoch`, if a crash lost it, is restored from the checkpoint.
pub fn train(
    backend: &mut dyn Backend,
    data: &Datasets,
    opts: &RunOptions,
    start: Progress,
) -> Result<Outcome> {
    let model = backend.model_config().clone();
    let cfg = backend.train_config().clone();
    let mode = cfg.mode;
    let test = test_set(mode, data);
    let input_dim = model.sizes[0];
    if test.input_dim != input_dim {
        bail!(
            "the {mode} input has {} values per example but the model's input layer has {input_dim}",
            test.input_dim
        );
    }
    check_start(backend, data, start)?;
    let mut batch = Batch::with_capacity(cfg.batch_size, input_dim);
    let mut saver = Saver::new(checkpoint_path(&opts.out), backend, start);
    if start != Progress::default() {
        trim_metrics(
            &metrics_path(&opts.out),
            start.epoch,
            saver.last_metrics.as_deref(),
        )?;
    }
    let mut metrics_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(metrics_path(&opts.out))
        .with_context(|| format!("cannot open {}", metrics_path(&opts.out).display()))?;

    let mut total_seconds = 0.0;
    let mut total_samples = 0usize;
    let mut last_metrics: Option<EpochMetrics> = None;
    for epoch in start.epoch..cfg.epochs {
        let order = epoch_order(mode, data, cfg.seed, epoch);
        let n_batches = order.num_batches(cfg.batch_size);
        let first_batch = if epoch == start.epoch { start.batch } else { 0 };
        let bar = progress_bar(opts.progress, n_batches, epoch, cfg.epochs);
        bar.set_position(first_batch as u64);
        let t0 = Instant::now();
        let mut samples = 0;
        for b in first_batch..n_batches {
            order.fill_batch(data, mode, b, cfg.batch_size, &mut batch);
            if let Err(e) = backend.train_step(&batch) {
                bar.finish_and_clear();
                let place = format!("epoch {}, batch {} of {n_batches}", epoch + 1, b + 1);
                return Err(match e.downcast::<Diverged>() {
                    Ok(d) => saver.explain(d, place).into(),
                    Err(e) => e.context(format!("training step {} ({place})", backend.steps() + 1)),
                });
            }
            samples += batch.size;
            bar.inc(1);
            let step = backend.steps();
            let stop_now = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
            let periodic = opts.checkpoint_every > 0 && step.is_multiple_of(opts.checkpoint_every as u64);
            if (stop_now || periodic) && b + 1 < n_batches {
                let progress = Progress { epoch, batch: b + 1 };
                let place = format!("epoch {}, batch {} of {n_batches}", epoch + 1, b + 1);
                saver.save(backend, progress, None, &place)?;
                if stop_now {
                    bar.finish_and_clear();
                    return Ok(Outcome::Interrupted(progress));
                }
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let losses = saver.finish_epoch(backend)?;
        let mut what = non_finite_losses(&model, &losses);
        if what.is_empty() {
            what.extend(non_finite_state(&backend.state()?));
        }
        if !what.is_empty() {
            let d = saver.diverged(backend.steps(), describe_non_finite(&what));
            return Err(saver
                .explain(d, format!("found at the end of epoch {}", epoch + 1))
                .into());
        }
        saver.checked_step = backend.steps();
        let task_accuracy = evaluate(backend, &test, None)?;
        let accuracy = task_accuracy.iter().sum::<f64>() / task_accuracy.len() as f64;
        let m = EpochMetrics {
            epoch: epoch + 1,
            seconds,
            samples_per_second: samples as f64 / seconds.max(1e-9),
            task_loss: losses.task,
            total_loss: losses.total,
            transport: losses.transport.clone(),
            density: losses.density.clone(),
            task_accuracy,
            accuracy,
        };
        // The checkpoint first: a metrics line never describes an epoch that was not saved.
        let place = format!("end of epoch {}", epoch + 1);
        let line = serde_json::to_string(&m)?;
        saver.save(
            backend,
            Progress {
                epoch: epoch + 1,
                batch: 0,
            },
            Some(&line),
            &place,
        )?;
        writeln!(metrics_file, "{line}")
            .with_context(|| format!("cannot write {}", metrics_path(&opts.out).display()))?;
        if opts.verbose {
            println!("{}", format_epoch(&m, cfg.epochs, &model.spatial_layers));
        }
        total_seconds += seconds;
        total_samples += samples;
        last_metrics = Some(m);
        if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) && epoch + 1 < cfg.epochs {
            return Ok(Outcome::Interrupted(Progress {
                epoch: epoch + 1,
                batch: 0,
            }));
        }
    }
    // A run resumed after its last epoch has no new metrics: evaluate what it has.
    let task_accuracy = match last_metrics {
        Some(m) => m.task_accuracy,
        None => evaluate(backend, &test, None)?,
    };
    let epochs_run = cfg.epochs - start.epoch;
    let summary = Summary {
        mode,
        spatial: model.is_spatial(),
        seed: cfg.seed,
        epochs: cfg.epochs,
        full_accuracy: task_accuracy.iter().sum::<f64>() / task_accuracy.len() as f64,
        task_accuracy,
        seconds: total_seconds,
        seconds_per_epoch: if epochs_run > 0 {
            total_seconds / epochs_run as f64
        } else {
            0.0
        },
        samples_per_second: total_samples as f64 / total_seconds.max(1e-9),
        backend: backend.name(),
        model,
        train: cfg,
    };
    checkpoint::write_atomic(
        &summary_path(&opts.out),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(Outcome::Finished(summary))
}

/// Checks that `start` fits the run and the data: not past the configured epochs, a batch cursor
/// inside an epoch, and as many steps taken as the epochs and batches finished make.
fn check_start(backend: &dyn Backend, data: &Datasets, start: Progress) -> Result<()> {
    let cfg = backend.train_config();
    if start.epoch > cfg.epochs {
        bail!(
            "the run has already finished {} epochs, more than the {} asked for",
            start.epoch,
            cfg.epochs
        );
    }
    // Every epoch has the same number of batches (only the order changes).
    let n_batches = epoch_order(cfg.mode, data, cfg.seed, 0).num_batches(cfg.batch_size);
    if start.batch > 0 && start.batch >= n_batches {
        bail!(
            "the checkpoint stands at batch {} of epoch {}, but an epoch of this data has only {n_batches} batches: \
             is this the data the run was trained on?",
            start.batch,
            start.epoch + 1
        );
    }
    let expected = start.epoch as u64 * n_batches as u64 + start.batch as u64;
    if backend.steps() != expected {
        bail!(
            "the checkpoint has taken {} steps, but {} epochs and {} batches of this data ({n_batches} batches of {} \
             per epoch) make {expected}: this is not the data the run was trained on, or the checkpoint was altered",
            backend.steps(),
            start.epoch,
            start.batch,
            cfg.batch_size
        );
    }
    Ok(())
}

/// Keeps the lines of `metrics.jsonl` of epochs `1..=epochs` that parse, dropping later epochs and a
/// line cut short by a crash, and appends `last` (the line of epoch `epochs`, from the checkpoint) if
/// a crash came between the checkpoint and its line; rewrites the file (atomically) only if
/// something changed.
fn trim_metrics(path: &Path, epochs: usize, last: Option<&str>) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let epoch_of = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|m| m["epoch"].as_u64())
    };
    let mut kept: Vec<&str> = text
        .lines()
        .filter(|line| epoch_of(line).is_some_and(|e| e <= epochs as u64))
        .collect();
    let has_last = kept.last().and_then(|l| epoch_of(l)) == Some(epochs as u64);
    let mut changed = kept.len() != text.lines().count() || (!text.is_empty() && !text.ends_with('\n'));
    if let Some(line) = last.filter(|l| !has_last && epoch_of(l) == Some(epochs as u64)) {
        kept.push(line);
        changed = true;
    }
    if changed {
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        checkpoint::write_atomic(path, out.as_bytes())?;
    }
    Ok(())
}

/// Where a checkpoint stands, in words: `saved at the end of epoch 2` or `saved in epoch 3 after
/// batch 17`.
pub fn describe_progress(p: Progress) -> String {
    if p.batch == 0 {
        format!("saved at the end of epoch {}", p.epoch)
    } else {
        format!("saved in epoch {} after batch {}", p.epoch + 1, p.batch)
    }
}

/// The checkpoint of a run as it trains: where it goes, the last one saved (what a failure falls
/// back on), how far the state was checked for divergence, and the losses of the epoch under way
/// taken from the backend at mid-epoch saves (saved with them, so the epoch's metrics cover all its
/// steps even across a resume).
struct Saver {
    path: PathBuf,
    saved: Option<Progress>,
    /// Every step up to this one was checked for divergence.
    checked_step: u64,
    epoch_losses: EpochLosses,
    /// The backend's step count when its losses were last taken.
    taken_step: u64,
    /// The metrics line saved in the checkpoint the run started from, if it ends an epoch.
    last_metrics: Option<String>,
}

impl Saver {
    /// For a run starting at `start` with the checkpoint `path` (its losses of the epoch under way are
    /// picked up when `start` is mid-epoch and the checkpoint is the one the state came from).
    fn new(path: PathBuf, backend: &dyn Backend, start: Progress) -> Saver {
        let saved = path.exists().then_some(start);
        let mut epoch_losses = EpochLosses::default();
        let mut last_metrics = None;
        if start != Progress::default() {
            if let Ok(ck) = checkpoint::load(&path) {
                if ck.progress == start && ck.state.step == backend.steps() {
                    epoch_losses = ck.epoch_losses.unwrap_or_default();
                    last_metrics = ck.epoch_metrics;
                }
            }
        }
        let step = backend.steps();
        Saver {
            path,
            saved,
            checked_step: step,
            epoch_losses,
            taken_step: step,
            last_metrics,
        }
    }

    /// Moves the losses the backend gathered since the last take into `epoch_losses`.
    fn take_losses(&mut self, backend: &mut dyn Backend) -> Result<()> {
        let step = backend.steps();
        if let Some(mean) = backend.take_losses()? {
            self.epoch_losses.add_mean(&mean, step - self.taken_step);
        }
        self.taken_step = step;
        Ok(())
    }

    /// The mean losses of the epoch just finished, and a fresh start for the next.
    fn finish_epoch(&mut self, backend: &mut dyn Backend) -> Result<Losses> {
        let losses = if self.epoch_losses.steps == 0 {
            // No save during the epoch: the backend's mean, exactly.
            self.taken_step = backend.steps();
            backend.take_losses()?.unwrap_or_default()
        } else {
            self.take_losses(backend)?;
            self.epoch_losses.mean().unwrap_or_default()
        };
        self.epoch_losses = EpochLosses::default();
        Ok(losses)
    }

    /// A divergence found by a check of the steps since the last one, up to `step`.
    fn diverged(&self, step: u64, what: String) -> Diverged {
        Diverged {
            since: Some(self.checked_step + 1),
            ..Diverged::at(step, what)
        }
    }

    /// Fills in where a divergence happened and what became of the checkpoint.
    fn explain(&self, mut d: Diverged, place: String) -> Diverged {
        d.place = place;
        d.note = match self.saved {
            Some(p) => format!(
                ". The last good checkpoint, {} ({}), is left as it was; try a smaller --lr (or --alpha, --beta)",
                self.path.display(),
                describe_progress(p)
            ),
            None => ". No checkpoint had been saved yet; try a smaller --lr (or --alpha, --beta)".to_string(),
        };
        d
    }

    /// Saves the backend's state, with the losses of the epoch so far if `progress` is mid-epoch or
    /// the epoch's metrics line if it is an epoch's end,
    /// unless a loss or the state holds a NaN or an infinity (then the previous checkpoint stays and
    /// training stops with [`Diverged`]).
    fn save(
        &mut self,
        backend: &mut dyn Backend,
        progress: Progress,
        metrics_line: Option<&str>,
        place: &str,
    ) -> Result<()> {
        let mut what = Vec::new();
        if progress.batch > 0 {
            self.take_losses(backend)?;
            let mean = self.epoch_losses.mean().unwrap_or_default();
            what = non_finite_losses(backend.model_config(), &mean);
        }
        let state = backend.state()?;
        if what.is_empty() {
            what.extend(non_finite_state(&state));
        }
        if !what.is_empty() {
            let d = self.diverged(state.step, describe_non_finite(&what));
            return Err(self
                .explain(d, format!("found when saving the checkpoint, {place}"))
                .into());
        }
        let extras = checkpoint::Extras {
            epoch_losses: (progress.batch > 0).then_some(&self.epoch_losses),
            epoch_metrics: metrics_line,
        };
        let (model, cfg) = (backend.model_config(), backend.train_config());
        checkpoint::save_with(&self.path, model, cfg, &state, progress, extras)
            .with_context(|| format!("saving the checkpoint ({place})"))?;
        self.saved = Some(progress);
        self.checked_step = state.step;
        Ok(())
    }
}

fn progress_bar(enabled: bool, len: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal, so logs stay clean.
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {msg} [{bar:30}] {pos}/{len} batches, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("{}/{}", epoch + 1, epochs));
    bar
}

/// One human-readable line per epoch.
pub fn format_epoch(m: &EpochMetrics, epochs: usize, spatial_layers: &[usize]) -> String {
    let fmt_list = |v: &[f64]| {
        spatial_layers
            .iter()
            .zip(v)
            .map(|(l, x)| format!("{l}:{x:.4}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "epoch {:>3}/{epochs}  {:6.2} s  {:8.0} samples/s  task loss {:.4}  T [{}]  V [{}]  acc {}  mean {:.4}",
        m.epoch,
        m.seconds,
        m.samples_per_second,
        m.task_loss,
        fmt_list(&m.transport),
        fmt_list(&m.density),
        m.task_accuracy.iter().map(|a| format!("{a:.4}")).collect::<Vec<_>>().join(" / "),
        m.accuracy
    )
}
