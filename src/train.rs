//! The training loop: epochs of batches on any backend, evaluation, metrics, checkpoints.

use crate::backend::{Backend, Losses};
use crate::checkpoint::{self, Progress};
use crate::config::InputMode;
use crate::cpu::softmax_xent::count_correct;
use crate::data::batches::{epoch_order, test_set, Batch, TestSet};
use crate::data::Datasets;
use crate::model::NeuronMask;
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
    Ok(counts.iter().map(|&(c, n)| if n == 0 { 0.0 } else { c as f64 / n as f64 }).collect())
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

fn check_finite(backend: &mut dyn Backend, losses: &Losses, step: u64, epoch: usize) -> Result<()> {
    if losses.is_finite() {
        let state = backend.state()?;
        let layout = &state.params.layout;
        for l in 1..layout.sizes.len() {
            for (what, range) in [("weight", &layout.weights[l - 1]), ("bias", &layout.biases[l - 1])] {
                if state.params.data[range.clone()].iter().any(|v| !v.is_finite()) {
                    bail!("training diverged by step {step} (epoch {epoch}): layer {l} {what} is not finite");
                }
            }
        }
        for (l, range) in layout.positions.iter().enumerate() {
            if state.params.data[range.clone()].iter().any(|v| !v.is_finite()) {
                bail!("training diverged by step {step} (epoch {epoch}): layer {l} position is not finite");
            }
        }
        return Ok(());
    }
    let model = backend.model_config();
    let mut what = Vec::new();
    if !losses.task.is_finite() {
        what.push("task loss".to_string());
    }
    for (k, &l) in model.spatial_layers.iter().enumerate() {
        if !losses.transport[k].is_finite() {
            what.push(format!("transport cost T({l}) of layer {l}"));
        }
        if !losses.density[k].is_finite() {
            what.push(format!("density cost V({l}) of layer {l}"));
        }
    }
    bail!(
        "training diverged by step {step} (epoch {epoch}): {} not finite (try a smaller --lr)",
        if what.is_empty() { "total loss".to_string() } else { what.join(", ") }
    )
}

/// Trains from `start` to the configured number of epochs, writing metrics, checkpoints and the
/// summary into `opts.out` (which must exist).
pub fn train(backend: &mut dyn Backend, data: &Datasets, opts: &RunOptions, start: Progress) -> Result<Outcome> {
    let model = backend.model_config().clone();
    let cfg = backend.train_config().clone();
    let mode = cfg.mode;
    let test = test_set(mode, data);
    let input_dim = model.sizes[0];
    if test.input_dim != input_dim {
        bail!("the {mode} input has {} values per example but the model's input layer has {input_dim}", test.input_dim);
    }
    let mut batch = Batch::with_capacity(cfg.batch_size, input_dim);
    let ckpt = checkpoint_path(&opts.out);
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
            backend.train_step(&batch).with_context(|| format!("training step {} (epoch {})", b, epoch + 1))?;
            samples += batch.size;
            bar.inc(1);
            let step = backend.steps();
            let stop_now = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
            let periodic = opts.checkpoint_every > 0 && step % opts.checkpoint_every as u64 == 0;
            if (stop_now || periodic) && b + 1 < n_batches {
                let progress = Progress { epoch, batch: b + 1 };
                save_checkpoint(backend, &ckpt, progress)?;
                if stop_now {
                    bar.finish_and_clear();
                    return Ok(Outcome::Interrupted(progress));
                }
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let losses = backend.take_losses()?.unwrap_or_default();
        let step = backend.steps();
        check_finite(backend, &losses, step, epoch + 1)?;
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
        save_checkpoint(backend, &ckpt, Progress { epoch: epoch + 1, batch: 0 })?;
        writeln!(metrics_file, "{}", serde_json::to_string(&m)?)
            .with_context(|| format!("cannot write {}", metrics_path(&opts.out).display()))?;
        if opts.verbose {
            println!("{}", format_epoch(&m, cfg.epochs, &model.spatial_layers));
        }
        total_seconds += seconds;
        total_samples += samples;
        last_metrics = Some(m);
        if opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) && epoch + 1 < cfg.epochs {
            return Ok(Outcome::Interrupted(Progress { epoch: epoch + 1, batch: 0 }));
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
        seconds_per_epoch: if epochs_run > 0 { total_seconds / epochs_run as f64 } else { 0.0 },
        samples_per_second: total_samples as f64 / total_seconds.max(1e-9),
        backend: backend.name(),
        model,
        train: cfg,
    };
    checkpoint::write_atomic(&summary_path(&opts.out), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(Outcome::Finished(summary))
}

fn save_checkpoint(backend: &mut dyn Backend, path: &Path, progress: Progress) -> Result<()> {
    let state = backend.state()?;
    checkpoint::save(path, backend.model_config(), backend.train_config(), &state, progress)
        .context("could not save the checkpoint; the previous one is left in place")?;
    Ok(())
}

fn progress_bar(enabled: bool, len: usize, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal, so logs stay clean.
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} batches, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("{}/{}", epoch + 1, epochs));
    bar
}

/// One human-readable line per epoch.
pub fn format_epoch(m: &EpochMetrics, epochs: usize, spatial_layers: &[usize]) -> String {
    let fmt_list = |v: &[f64]| {
        spatial_layers.iter().zip(v).map(|(l, x)| format!("{l}:{x:.4}")).collect::<Vec<_>>().join(" ")
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
