//! The training loop: epochs of batches on any backend, evaluation, metrics, checkpoints.

use crate::analysis::{cheap_measures, CheapMeasures};
use crate::backend::{Backend, Losses};
use crate::checkpoint::{self, EpochLosses, Progress};
use crate::config::InputMode;
use crate::data::batches::{epoch_order, test_set, Batch};
use crate::data::Datasets;
use crate::guard::{describe_non_finite, non_finite_losses, non_finite_state, Diverged};
use crate::provenance::{At, Invocation, Provenance, Segments};
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
    /// Test accuracy per task, in the order of `tasks`.
    pub task_accuracy: Vec<f64>,
    /// The tasks' names (`mnist`, `fashion-mnist`, ...), in head order. Absent in lines written
    /// before tasks could be chosen, whose two tasks are MNIST and Fashion-MNIST.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
    /// Mean of the tasks' test accuracies.
    pub accuracy: f64,
    /// The modularity measures cheap enough for every epoch (METHOD.md, "Modularity measures"):
    /// cross-task |w| share and segregation score per split layer, `Q` of the task partition.
    /// Absent in lines written before they were tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modularity: Option<CheapMeasures>,
}

/// `summary.json`, written when training ends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub mode: InputMode,
    pub spatial: bool,
    pub seed: u64,
    pub epochs: usize,
    pub full_accuracy: f64,
    /// Test accuracy per task, in the order of `tasks`.
    pub task_accuracy: Vec<f64>,
    /// The tasks' names, in head order (absent in summaries written before tasks could be chosen).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Wall seconds of all training steps of the run, across resumes (evaluation excluded).
    pub seconds: f64,
    pub seconds_per_epoch: f64,
    pub samples_per_second: f64,
    pub backend: String,
    pub model: crate::config::ModelConfig,
    pub train: crate::config::TrainConfig,
    /// The program, command line, data and times of the run (absent in summaries written before
    /// they were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

pub use crate::metrics::evaluate;

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
    /// What is running: recorded in each checkpoint and in the summary (see `crate::provenance`).
    pub invocation: Invocation,
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
    train_observed(backend, data, opts, start, &mut NoObserver)
}

/// What a run tells an observer (history, TensorBoard; see `crate::run_log`) as it trains. Each
/// call may read the backend's state; an error stops the run.
pub trait TrainObserver {
    /// Before the first step of this invocation, the state standing at `start`.
    fn start(&mut self, _backend: &mut dyn Backend, _start: Progress) -> Result<()> {
        Ok(())
    }
    /// After each chunk of steps (see [`Backend::steps_per_submit`]); `progress` is where the run
    /// stands after it (`{e + 1, 0}` at an epoch's end).
    fn step(&mut self, _backend: &mut dyn Backend, _progress: Progress) -> Result<()> {
        Ok(())
    }
    /// The observer wants [`TrainObserver::step`] called after every step that is a multiple of
    /// this (0: only at epoch ends and wherever a chunk happens to end); chunks end there.
    fn step_interval(&self) -> usize {
        0
    }
    /// Just before a checkpoint at `progress` is saved: what the observer keeps in step with the
    /// checkpoint is saved first, so that a resume never finds it behind.
    fn saving(&mut self, _progress: Progress) -> Result<()> {
        Ok(())
    }
    /// After an epoch's metrics line is written.
    fn epoch(&mut self, _metrics: &EpochMetrics) -> Result<()> {
        Ok(())
    }
}

/// Observes nothing: plain [`train`].
pub struct NoObserver;
impl TrainObserver for NoObserver {}

/// [`train`], telling `observer` about each step, checkpoint and epoch.
pub fn train_observed(
    backend: &mut dyn Backend,
    data: &Datasets,
    opts: &RunOptions,
    start: Progress,
    observer: &mut dyn TrainObserver,
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
    checkpoint::check_tasks(&model, data)?;
    check_start(backend, data, start)?;
    let mut batch = Batch::with_capacity(cfg.batch_size, input_dim);
    let mut saver = Saver::new(checkpoint_path(&opts.out), backend, start);
    // Recorded in every checkpoint, so that a resume or a split on other data is refused.
    saver.data_digests = data.digests();
    saver
        .segments
        .start(opts.invocation.clone(), backend.name(), start);
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

    observer.start(backend, start)?;
    // Time and examples of the epochs finished before `start` count in the run's totals.
    let invocation_start = Instant::now();
    let mut total_seconds = seconds_in_metrics(&metrics_path(&opts.out), start.epoch);
    let epoch_examples = epoch_order(mode, data, cfg.seed, 0).len();
    let mut total_samples = start.epoch * epoch_examples;
    let mut last_metrics: Option<EpochMetrics> = None;
    for epoch in start.epoch..cfg.epochs {
        let order = epoch_order(mode, data, cfg.seed, epoch);
        let n_batches = order.num_batches(cfg.batch_size);
        let first_batch = if epoch == start.epoch { start.batch } else { 0 };
        let bar = progress_bar(opts.progress, n_batches, epoch, cfg.epochs);
        bar.set_position(first_batch as u64);
        let t0 = Instant::now();
        // A resumed epoch carries the time and examples of its steps before the stop.
        let seconds_before = if epoch == start.epoch {
            saver.epoch_losses.seconds
        } else {
            0.0
        };
        let mut samples = first_batch * cfg.batch_size;
        let chunk = backend.steps_per_submit().max(1);
        let observed_every = observer.step_interval();
        let mut b = first_batch;
        while b < n_batches {
            // A chunk of steps runs without the host looking: it ends where a checkpoint or a
            // history point is due (and at the epoch's end), so those land on the same steps as
            // with one step at a time; Ctrl-C is seen at its end.
            let step0 = backend.steps();
            let mut end = (b + chunk).min(n_batches);
            for every in [opts.checkpoint_every, observed_every] {
                if every > 0 {
                    let due = (every as u64 - step0 % every as u64) as usize;
                    end = end.min(b + due);
                }
            }
            if let Err(e) = backend.train_batches(data, &order, b..end, &mut batch) {
                bar.finish_and_clear();
                let place = if end - b == 1 {
                    format!("epoch {}, batch {} of {n_batches}", epoch + 1, b + 1)
                } else {
                    format!("epoch {}, batches {}-{} of {n_batches}", epoch + 1, b + 1, end)
                };
                return Err(match e.downcast::<Diverged>() {
                    Ok(d) => saver.explain(d, place).into(),
                    Err(e) => e.context(format!("training step {} ({place})", step0 + 1)),
                });
            }
            samples += (end * cfg.batch_size).min(order.len()) - b * cfg.batch_size;
            bar.inc((end - b) as u64);
            b = end;
            let after = if b < n_batches {
                Progress { epoch, batch: b }
            } else {
                Progress {
                    epoch: epoch + 1,
                    batch: 0,
                }
            };
            observer.step(backend, after)?;
            let step = backend.steps();
            let stop_now = opts.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
            let periodic = opts.checkpoint_every > 0 && step.is_multiple_of(opts.checkpoint_every as u64);
            if (stop_now || periodic) && b < n_batches {
                // The clock of the steps so far stops once the device has done them.
                backend.synchronize()?;
                saver.epoch_losses.seconds = seconds_before + t0.elapsed().as_secs_f64();
                let progress = Progress { epoch, batch: b };
                let place = format!("epoch {}, batch {b} of {n_batches}", epoch + 1);
                observer.saving(progress)?;
                saver.save(backend, progress, None, &place)?;
                if stop_now {
                    bar.finish_and_clear();
                    return Ok(Outcome::Interrupted(progress));
                }
            }
        }
        // The epoch's clock stops once the device has finished its steps, not after the last
        // submit: the time is the work's, not the host's submission rate.
        backend.synchronize()?;
        let seconds = seconds_before + t0.elapsed().as_secs_f64();
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
            tasks: model.task_names(),
            accuracy,
            modularity: Some(cheap_measures(&model, &backend.state()?.params)?),
        };
        // The checkpoint first: a metrics line never describes an epoch that was not saved.
        let place = format!("end of epoch {}", epoch + 1);
        let line = serde_json::to_string(&m)?;
        observer.saving(Progress {
            epoch: epoch + 1,
            batch: 0,
        })?;
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
            // The epochs still to train take as long as those of this invocation did, evaluation included.
            let done_here = (epoch + 1 - start.epoch) as f64;
            let eta = invocation_start.elapsed().as_secs_f64() / done_here * (cfg.epochs - epoch - 1) as f64;
            println!(
                "{}",
                format_epoch(&m, cfg.epochs, &model.spatial_layers, Some(eta))
            );
        }
        observer.epoch(&m)?;
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
    // The segment ends with the checkpoint of the run's last epoch (a run resumed after it, which
    // trains nothing, ends now).
    let end = Progress {
        epoch: cfg.epochs,
        batch: 0,
    };
    if saver
        .segments
        .segments
        .last()
        .is_none_or(|s| s.to != At::from(end) || s.from == s.to)
    {
        saver.segments.reach(end);
    }
    let provenance = Provenance::new(saver.segments.clone(), &saver.data_digests);
    let summary = Summary {
        mode,
        spatial: model.is_spatial(),
        seed: cfg.seed,
        epochs: cfg.epochs,
        full_accuracy: task_accuracy.iter().sum::<f64>() / task_accuracy.len() as f64,
        task_accuracy,
        tasks: model.task_names(),
        seconds: total_seconds,
        seconds_per_epoch: total_seconds / cfg.epochs.max(1) as f64,
        samples_per_second: total_samples as f64 / total_seconds.max(1e-9),
        backend: backend.name(),
        model,
        train: cfg,
        provenance: Some(provenance),
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

/// The sum of the `seconds` of the lines of `metrics.jsonl` of epochs `1..=epochs`.
fn seconds_in_metrics(path: &Path, epochs: usize) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<EpochMetrics>(line).ok())
        .filter(|m| m.epoch <= epochs)
        .map(|m| m.seconds)
        .sum()
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
    /// The run's data files and their SHA-256, saved with each checkpoint.
    data_digests: Vec<(String, String)>,
    /// The invocations that trained the run, this one last, saved with each checkpoint.
    segments: Segments,
}

impl Saver {
    /// For a run starting at `start` with the checkpoint `path` (its losses of the epoch under way are
    /// picked up when `start` is mid-epoch and the checkpoint is the one the state came from).
    fn new(path: PathBuf, backend: &dyn Backend, start: Progress) -> Saver {
        let saved = path.exists().then_some(start);
        let mut epoch_losses = EpochLosses::default();
        let mut last_metrics = None;
        let mut segments = Segments::default();
        if start != Progress::default() {
            if let Ok(ck) = checkpoint::load(&path) {
                if ck.progress == start && ck.state.step == backend.steps() {
                    epoch_losses = ck.epoch_losses.unwrap_or_default();
                    last_metrics = ck.epoch_metrics;
                    segments = Segments::from_metadata(ck.provenance.as_deref());
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
            data_digests: Vec::new(),
            segments,
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
        self.segments.reach(progress);
        let segments = self.segments.to_json();
        let extras = checkpoint::Extras {
            epoch_losses: (progress.batch > 0).then_some(&self.epoch_losses),
            epoch_metrics: metrics_line,
            provenance: Some(&segments),
        };
        let (model, cfg) = (backend.model_config(), backend.train_config());
        checkpoint::save_with_data(
            &self.path,
            model,
            cfg,
            &state,
            progress,
            extras,
            &self.data_digests,
        )
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
            "epoch {msg} [{bar:24}] batch {pos}/{len}, {rate}, epoch done in {eta}",
        )
        .expect("valid template")
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} batches/s", s.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    bar.set_message(format!("{}/{}", epoch + 1, epochs));
    bar
}

/// The widest line [`format_epoch`] writes (with up to three spatial layers, and any number of
/// tasks: their accuracies wrap): fits a terminal of 100 columns.
pub const EPOCH_LINE_WIDTH: usize = 100;

/// Seconds as `42 s`, `3 min 20 s` or `2 h 05 min`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// The human-readable lines of an epoch: each task's test accuracy and the run's time left
/// (`eta_seconds`, when known) first; then the epoch's time, rate and losses; then transport and
/// density per spatial layer (`L3 0.1234` is layer 3's), on two lines when one would not fit.
pub fn format_epoch(
    m: &EpochMetrics,
    epochs: usize,
    spatial_layers: &[usize],
    eta_seconds: Option<f64>,
) -> String {
    let tasks = crate::config::task_names_or_legacy(&m.tasks, m.task_accuracy.len());
    let per_task: Vec<String> = m
        .task_accuracy
        .iter()
        .enumerate()
        .map(|(i, a)| match tasks.get(i) {
            Some(name) => format!("{name} {a:.4}"),
            None => format!("task{i} {a:.4}"),
        })
        .collect();
    let eta = eta_seconds
        .filter(|_| m.epoch < epochs)
        .map(|eta| format!("  run done in {}", format_duration(eta)))
        .unwrap_or_default();
    let one_line = format!(
        "epoch {:>3}/{epochs}  accuracy: {}, mean {:.4}{eta}",
        m.epoch,
        per_task.join(", "),
        m.accuracy
    );
    let mut lines = Vec::new();
    if one_line.chars().count() <= EPOCH_LINE_WIDTH {
        lines.push(one_line);
    } else {
        // Many tasks: the mean first, then the tasks' accuracies on lines of their own.
        lines.push(format!(
            "epoch {:>3}/{epochs}  mean accuracy {:.4}{eta}",
            m.epoch, m.accuracy
        ));
        let mut line = String::from("    accuracy:");
        for (k, item) in per_task.iter().enumerate() {
            let sep = if k + 1 < per_task.len() { "," } else { "" };
            if line.len() + 1 + item.len() + sep.len() > EPOCH_LINE_WIDTH && line.len() > 4 {
                lines.push(std::mem::replace(&mut line, "     ".into()));
            }
            line.push(' ');
            line.push_str(item);
            line.push_str(sep);
        }
        lines.push(line);
    }
    lines.push(format!(
        "    {:.2} s, {:.0} examples/s; loss: task {:.4}, total {:.4}",
        m.seconds, m.samples_per_second, m.task_loss, m.total_loss
    ));
    if !spatial_layers.is_empty() {
        let per_layer = |v: &[f64]| {
            spatial_layers
                .iter()
                .zip(v)
                .map(|(l, x)| format!("L{l} {x:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let t = format!("    transport {}", per_layer(&m.transport));
        let v = format!("density {}", per_layer(&m.density));
        if t.len() + 2 + v.len() <= EPOCH_LINE_WIDTH {
            lines.push(format!("{t}; {v}"));
        } else {
            lines.push(t);
            lines.push(format!("    {v}"));
        }
    }
    lines.join("\n")
}
