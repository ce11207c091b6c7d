//! Runs the specs of a grid, `jobs` at a time on a scoped thread pool: each run trained (or resumed,
//! or read back when finished) and split in its own sub-directory of the grid's directory.

use super::{RunRecord, RunSpec, ALL_MODES};
use crate::backend::Backend;
use crate::checkpoint::{self, Checkpoint, Progress};
use crate::config::{InputMode, ModelConfig, TrainConfig};
use crate::data::batches::{test_set, TestSet};
use crate::data::Datasets;
use crate::figure::{self, Caption, Filters};
use crate::model::{Params, TrainState};
use crate::run_dir::{check_new_run_dir, forget_unsaved_start, lock_run_dir};
use crate::split::{self, SplitOptions, SplitReport};
use crate::train::{self, Outcome, RunOptions};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Builds a run's backend from its model, training configuration and starting state (shared by the
/// worker threads).
pub type BackendFactory = dyn Fn(ModelConfig, TrainConfig, TrainState) -> Result<Box<dyn Backend>> + Sync;

/// Builds the GPU population of a group of runs that may share one (each run's model and training
/// configuration and starting state, the grid's stop flag); see `grid::population`.
pub type PopulationFactory = dyn Fn(
        Vec<ModelConfig>,
        Vec<TrainConfig>,
        Vec<TrainState>,
        Arc<AtomicBool>,
    ) -> Result<Arc<crate::gpu::population::Population>>
    + Sync;

/// How the runs of a grid are executed.
pub struct GridContext<'a> {
    pub out: PathBuf,
    pub data: &'a Datasets,
    /// Builds the backend of a run from its configuration and starting state.
    pub make_backend: &'a BackendFactory,
    pub jobs: usize,
    pub split: SplitOptions,
    pub checkpoint_every: usize,
    /// Set to stop every run at its next step boundary (after saving a checkpoint).
    pub stop: Arc<AtomicBool>,
    /// Show per-epoch lines and progress bars (only sensible with one job).
    pub verbose: bool,
    /// Train nothing: tabulate the finished runs (splitting or measuring them if needed) and leave
    /// the others as they are.
    pub tabulate_only: bool,
    /// Draw Figures 1 and 2 (with the split's caption) into the directory of each finished run of
    /// this seed, one seed per cell: a grid shows its networks without a `figure` call per run.
    pub figure_seed: Option<u64>,
    /// What is running (the grid's command line and data), recorded in each run's checkpoints and
    /// summary.
    pub invocation: crate::provenance::Invocation,
    /// Train the runs that may share a population (`gpu::hyper::population_key`) as one population
    /// per group (the GPU), instead of one by one.
    pub population: Option<&'a PopulationFactory>,
}

/// What the runs of a grid came to, in the grid's order.
pub struct GridOutcome {
    pub records: Vec<Option<RunRecord>>,
    /// Runs that failed, with why.
    pub failed: Vec<(String, String)>,
    /// Some run was stopped by the stop flag (its checkpoint is saved).
    pub interrupted: bool,
    /// Runs not finished and left untrained (`tabulate_only`).
    pub untrained: Vec<String>,
}

pub(super) enum RunError {
    Interrupted,
    /// Not finished, and the grid trains nothing.
    Untrained,
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Failed(e)
    }
}

/// Where a run directory stands.
pub(super) enum RunState {
    /// Finished and split: nothing to do.
    Done(Box<SplitReport>),
    /// Trained to the end, split report missing or stale.
    NeedsSplit(Box<Checkpoint>),
    /// Finished and split by an older binary: only the modularity measures are missing.
    NeedsModularity(Box<SplitReport>, Box<Checkpoint>),
    /// Continue training from a checkpoint (to the requested number of epochs).
    Resume(Box<Checkpoint>),
    /// Nothing there yet.
    Fresh,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// The training configuration with its epochs left out, to compare runs that may be extended.
fn without_epochs(t: &TrainConfig) -> TrainConfig {
    TrainConfig {
        epochs: 0,
        ..t.clone()
    }
}

fn describe_mismatch(dir: &Path, spec: &RunSpec, model: &ModelConfig, train: &TrainConfig) -> anyhow::Error {
    let fields = |m: &ModelConfig, t: &TrainConfig| {
        let mut v = serde_json::to_value(m).expect("serialises");
        let t = serde_json::to_value(without_epochs(t)).expect("serialises");
        if let (Some(v), Some(t)) = (v.as_object_mut(), t.as_object()) {
            v.extend(
                t.iter()
                    .filter(|(k, _)| k.as_str() != "epochs")
                    .map(|(k, x)| (k.clone(), x.clone())),
            );
        }
        v
    };
    let (has, wants) = (fields(model, train), fields(&spec.model, &spec.train));
    let diffs: Vec<String> = match (has.as_object(), wants.as_object()) {
        (Some(h), Some(w)) => w
            .iter()
            .filter(|(k, x)| h.get(k.as_str()) != Some(*x))
            .map(|(k, x)| {
                format!(
                    "{k} is {} there, {x} here",
                    h.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    anyhow!(
        "{} holds a run with other options than this grid asks for ({}); use another --out or remove that directory",
        dir.display(),
        diffs.join(", ")
    )
}

pub(super) fn run_state(dir: &Path, spec: &RunSpec, opts: SplitOptions) -> Result<RunState> {
    let ckpt = train::checkpoint_path(dir);
    if !ckpt.exists() {
        for stale in [train::summary_path(dir), train::metrics_path(dir)] {
            if stale.exists() {
                bail!(
                    "{} exists but the run's checkpoint {} does not; remove the directory {} to train the run again",
                    stale.display(),
                    ckpt.display(),
                    dir.display()
                );
            }
        }
        return Ok(RunState::Fresh);
    }
    let ck =
        checkpoint::load(&ckpt).with_context(|| format!("cannot resume the run in {}", dir.display()))?;
    if !ck.model.same_model(&spec.model) || without_epochs(&ck.train) != without_epochs(&spec.train) {
        return Err(describe_mismatch(dir, spec, &ck.model, &ck.train));
    }
    let wanted = spec.train.epochs;
    if ck.progress.epoch > wanted || (ck.progress.epoch == wanted && ck.progress.batch > 0) {
        bail!(
            "{} holds a run already trained for {} epochs, more than the --epochs {wanted} asked for; use another --out",
            dir.display(),
            ck.progress.epoch
        );
    }
    let finished = ck.progress
        == Progress {
            epoch: wanted,
            batch: 0,
        }
        && train::summary_path(dir).exists();
    if !finished {
        return Ok(RunState::Resume(Box::new(ck)));
    }
    let split_path = dir.join(split::FILE_NAME);
    if split_path.exists() {
        if let Ok(report) = read_json::<SplitReport>(&split_path) {
            let perms_match = report
                .layers
                .iter()
                .filter_map(|l| l.segregation.as_ref())
                .all(|s| s.permutations == opts.permutations);
            if report.epochs == wanted && report.seed == spec.train.seed && perms_match {
                if report.modularity.is_none() {
                    return Ok(RunState::NeedsModularity(Box::new(report), Box::new(ck)));
                }
                return Ok(RunState::Done(Box::new(report)));
            }
        }
    }
    Ok(RunState::NeedsSplit(Box::new(ck)))
}

/// Sum of the epochs' training seconds in a run's `metrics.jsonl`.
fn train_seconds(dir: &Path) -> f64 {
    let Ok(text) = std::fs::read_to_string(train::metrics_path(dir)) else {
        return 0.0;
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("seconds").and_then(|s| s.as_f64()))
        .sum()
}

/// The test sets of the three modes, each built once when first needed and shared by all runs.
pub(super) struct TestSets<'a> {
    data: &'a Datasets,
    sets: [OnceLock<TestSet>; 3],
}

impl TestSets<'_> {
    fn get(&self, mode: InputMode) -> &TestSet {
        let k = ALL_MODES.iter().position(|&m| m == mode).expect("a known mode");
        self.sets[k].get_or_init(|| test_set(mode, self.data))
    }
}

/// Trains (or resumes) and splits one run, or reads a finished one back; then draws its figures if
/// its seed is the grid's figure seed and they are not there yet.
pub(super) fn execute(
    spec: &RunSpec,
    out: &Path,
    ctx: &GridContext,
    tests: &TestSets,
) -> Result<(RunRecord, bool), RunError> {
    let dir = out.join(&spec.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--out: cannot create the directory {}", dir.display()))?;
    // Held until the run is done: another process on the same grid skips nothing, it fails here.
    let _lock = lock_run_dir(&dir, "--out")?;
    let result = execute_locked(&dir, spec, ctx, tests)?;
    if ctx.figure_seed == Some(spec.train.seed) {
        // A figure that cannot be drawn is reported, but it does not throw away the run's numbers.
        if let Err(e) = draw_run_figures(&dir, spec) {
            eprintln!("{}: figures not drawn: {e:#}", spec.name);
        }
    }
    Ok(result)
}

/// Figures 1 and 2 of the finished run in `dir` (`figure1.{png,svg}`, `figure2.{png,svg}`), with
/// the caption of its `split.json`, unless both PNGs are already there.
fn draw_run_figures(dir: &Path, spec: &RunSpec) -> Result<()> {
    if ["figure1.png", "figure2.png"]
        .iter()
        .all(|f| dir.join(f).is_file())
    {
        return Ok(());
    }
    let ck = checkpoint::load(&train::checkpoint_path(dir))
        .with_context(|| format!("cannot read {}", train::checkpoint_path(dir).display()))?;
    let report: SplitReport = read_json(&dir.join(split::FILE_NAME))?;
    let title = format!("{}, {} epochs", spec.name, ck.progress.epoch);
    figure::write_figures_with_caption(
        &ck.model,
        &ck.state.params,
        &title,
        Some(&Caption::from_report(&report)),
        dir,
        Filters::default(),
    )?;
    Ok(())
}

fn execute_locked(
    dir: &Path,
    spec: &RunSpec,
    ctx: &GridContext,
    tests: &TestSets,
) -> Result<(RunRecord, bool), RunError> {
    let dir = dir.to_path_buf();
    forget_unsaved_start(&dir);
    let state = run_state(&dir, spec, ctx.split)?;
    let test = tests.get(spec.train.mode);
    // The record is always built from split.json as read back, so that a run finished now and one
    // read back by a later invocation give the same numbers to the last bit.
    let write_split = |report: &SplitReport| -> Result<SplitReport> {
        let path = dir.join(split::FILE_NAME);
        checkpoint::write_atomic(
            &path,
            serde_json::to_string_pretty(report)
                .expect("serialises")
                .as_bytes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        read_json(&path)
    };
    let (ck_model, ck_train, ck_state, start) = match state {
        RunState::Done(report) => return Ok((RunRecord::new(spec, &report, train_seconds(&dir)), true)),
        RunState::NeedsSplit(ck) => {
            checkpoint::check_data(&ck, ctx.data)
                .map_err(|e| anyhow!("{}: {e}", train::checkpoint_path(&dir).display()))?;
            let mut backend = (ctx.make_backend)(ck.model, ck.train, ck.state)?;
            let report = write_split(&split::analyse(
                backend.as_mut(),
                test,
                spec.train.epochs,
                ctx.split,
            )?)?;
            return Ok((RunRecord::new(spec, &report, train_seconds(&dir)), false));
        }
        RunState::NeedsModularity(mut report, ck) => {
            let params = &ck.state.params;
            let assignment = split::assign(&ck.model, params);
            report.modularity = Some(split::measure_modularity(&ck.model, params, &assignment, test)?);
            let report = write_split(&report)?;
            return Ok((RunRecord::new(spec, &report, train_seconds(&dir)), true));
        }
        RunState::Resume(_) | RunState::Fresh if ctx.tabulate_only => return Err(RunError::Untrained),
        RunState::Resume(ck) => {
            checkpoint::check_data(&ck, ctx.data)
                .map_err(|e| anyhow!("{}: {e}", train::checkpoint_path(&dir).display()))?;
            let mut train_cfg = ck.train.clone();
            train_cfg.epochs = spec.train.epochs;
            (ck.model, train_cfg, ck.state, ck.progress)
        }
        RunState::Fresh => {
            check_new_run_dir(&dir)?;
            let state = TrainState::new(Params::init(&spec.model, spec.train.seed));
            (spec.model.clone(), spec.train.clone(), state, Progress::default())
        }
    };
    let mut backend = (ctx.make_backend)(ck_model, ck_train, ck_state)?;
    let opts = RunOptions {
        out: dir.clone(),
        progress: ctx.verbose,
        verbose: ctx.verbose,
        checkpoint_every: ctx.checkpoint_every,
        stop: Some(ctx.stop.clone()),
        invocation: ctx.invocation.clone(),
    };
    match train::train(backend.as_mut(), ctx.data, &opts, start)? {
        Outcome::Interrupted(_) => Err(RunError::Interrupted),
        Outcome::Finished(summary) => {
            let report = write_split(&split::analyse(
                backend.as_mut(),
                test,
                summary.epochs,
                ctx.split,
            )?)?;
            Ok((RunRecord::new(spec, &report, train_seconds(&dir)), false))
        }
    }
}

/// Checks every run directory before anything trains: one holding a run with other options, or
/// more epochs than asked for, is an error naming it.
pub fn preflight(specs: &[RunSpec], out: &Path, opts: SplitOptions) -> Result<()> {
    let problems: Vec<String> = specs
        .iter()
        .filter_map(|s| run_state(&out.join(&s.name), s, opts).err())
        .map(|e| format!("  {e:#}"))
        .collect();
    if !problems.is_empty() {
        bail!(
            "--out {}: {} run directories cannot be used:\n{}",
            out.display(),
            problems.len(),
            problems.join("\n")
        );
    }
    Ok(())
}

/// Runs every spec (`ctx.jobs` at a time), calling `on_update` with the records so far after each
/// finished run (under a lock, so calls never overlap).
pub fn run_grid(
    specs: &[RunSpec],
    ctx: &GridContext,
    on_update: &(dyn Fn(&[Option<RunRecord>]) + Sync),
) -> GridOutcome {
    let n = specs.len();
    let tests = TestSets {
        data: ctx.data,
        sets: Default::default(),
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let records: Mutex<Vec<Option<RunRecord>>> = Mutex::new(vec![None; n]);
    let failed: Mutex<Vec<(usize, String, String)>> = Mutex::new(Vec::new());
    let untrained: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let interrupted = AtomicBool::new(false);
    // What became of run `i`: printed, and kept for the tables.
    let report = |i: usize, result: Result<(RunRecord, bool), RunError>| {
        let spec = &specs[i];
        let k = done.fetch_add(1, Ordering::SeqCst) + 1;
        match result {
            Ok((record, was_done)) => {
                println!(
                    "[{k}/{n}] {}: {}full {:.4}  split {:.4}  drop {:.4}  tasks {}  ({:.0} s training)",
                    spec.name,
                    if was_done { "already finished; " } else { "" },
                    record.full_accuracy,
                    record.split_accuracy,
                    record.drop,
                    record
                        .task_names()
                        .iter()
                        .zip(&record.task_accuracy)
                        .map(|(name, a)| format!("{name} {a:.4}"))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    record.train_seconds
                );
                let mut r = records.lock().unwrap_or_else(|e| e.into_inner());
                r[i] = Some(record);
                on_update(&r);
            }
            Err(RunError::Untrained) => {
                println!("[{k}/{n}] {}: not finished, left untrained", spec.name);
                untrained
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, spec.name.clone()));
            }
            Err(RunError::Interrupted) => {
                interrupted.store(true, Ordering::SeqCst);
                println!("[{k}/{n}] {}: interrupted, checkpoint saved", spec.name);
            }
            Err(RunError::Failed(e)) => {
                let msg = format!("{e:#}");
                eprintln!("[{k}/{n}] {}: FAILED: {msg}", spec.name);
                failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, spec.name.clone(), msg));
            }
        }
    };
    // The runs that may share a population train first, a population at a time; the pool takes
    // the rest.
    let grouped = super::population::run_populations(specs, ctx, &tests, &report);
    let pool: Vec<usize> = (0..n).filter(|i| !grouped.contains(i)).collect();
    let worker = || loop {
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(&i) = pool.get(next.fetch_add(1, Ordering::SeqCst)) else {
            break;
        };
        let spec = &specs[i];
        if ctx.verbose {
            println!(
                "run {}/{n}: {} -> {}",
                i + 1,
                spec.name,
                ctx.out.join(&spec.name).display()
            );
        }
        report(i, catch_run(|| execute(spec, &ctx.out, ctx, &tests)));
    };
    let jobs = ctx.jobs.clamp(1, pool.len().max(1));
    std::thread::scope(|s| {
        for _ in 1..jobs {
            s.spawn(worker);
        }
        worker();
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort_by_key(|f| f.0);
    let mut untrained = untrained.into_inner().unwrap_or_else(|e| e.into_inner());
    untrained.sort_by_key(|u| u.0);
    GridOutcome {
        records: records.into_inner().unwrap_or_else(|e| e.into_inner()),
        failed: failed.into_iter().map(|(_, name, msg)| (name, msg)).collect(),
        interrupted: interrupted.load(Ordering::SeqCst) || ctx.stop.load(Ordering::SeqCst),
        untrained: untrained.into_iter().map(|(_, name)| name).collect(),
    }
}

/// Runs `run`, turning a panic into a failed run that names it.
pub(super) fn catch_run(
    run: impl FnOnce() -> Result<(RunRecord, bool), RunError>,
) -> Result<(RunRecord, bool), RunError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(RunError::Failed(anyhow!("panicked: {msg}")))
    })
}

/// What `--collect` found: each run's record (in grid order) and the directory it came from, and
/// the runs found finished in no directory.
pub struct Collected {
    pub records: Vec<Option<RunRecord>>,
    pub sources: Vec<Option<PathBuf>>,
    pub missing: Vec<String>,
}

/// `record` without its wall times, to compare one run found in two directories.
fn results_only(record: &RunRecord) -> RunRecord {
    let mut r = RunRecord {
        train_seconds: 0.0,
        split_seconds: 0.0,
        ..record.clone()
    };
    if let Some(sel) = r.modularity.as_mut().and_then(|m| m.selectivity.as_mut()) {
        sel.seconds = 0.0;
    }
    r
}

/// `--collect`: reads every run of `specs` from whichever of `dirs` holds it finished, as
/// `--tabulate-only` would (a finished run whose split is missing or stale is split there, one
/// whose `split.json` predates the modularity measures gets them; nothing is trained). A run
/// directory with other options than the grid's, or one run finished in two directories with
/// different results (wall times aside), is an error naming the directories; all problems are
/// listed at once. Runs finished nowhere are returned as missing.
pub fn collect_grid(specs: &[RunSpec], dirs: &[PathBuf], ctx: &GridContext) -> Result<Collected> {
    let tests = TestSets {
        data: ctx.data,
        sets: Default::default(),
    };
    // The same directory given twice (or by two spellings) is read once.
    let mut unique: Vec<(PathBuf, PathBuf)> = Vec::new();
    for d in dirs {
        let canon =
            std::fs::canonicalize(d).with_context(|| format!("--collect {}: cannot read it", d.display()))?;
        if !unique.iter().any(|(_, c)| *c == canon) {
            unique.push((d.clone(), canon));
        }
    }
    let n = specs.len();
    let mut records = vec![None; n];
    let mut sources = vec![None; n];
    let mut missing = Vec::new();
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let mut found: Option<(RunRecord, PathBuf)> = None;
        for (dir, _) in &unique {
            if !dir.join(&spec.name).is_dir() {
                continue;
            }
            match execute(spec, dir, ctx, &tests) {
                Ok((record, _)) => match &found {
                    Some((first, from)) if results_only(first) != results_only(&record) => {
                        problems.push(format!(
                            "run {} differs between {} and {} (same options, different results: full accuracy {} vs {}); remove the wrong one",
                            spec.name,
                            from.join(&spec.name).display(),
                            dir.join(&spec.name).display(),
                            first.full_accuracy,
                            record.full_accuracy
                        ));
                    }
                    Some(_) => {}
                    None => found = Some((record, dir.clone())),
                },
                Err(RunError::Untrained) | Err(RunError::Interrupted) => {}
                Err(RunError::Failed(e)) => problems.push(format!("--collect {}: {e:#}", dir.display())),
            }
        }
        match found {
            Some((record, dir)) => {
                println!("[{}/{n}] {}: from {}", i + 1, spec.name, dir.display());
                records[i] = Some(record);
                sources[i] = Some(dir);
            }
            None => missing.push(spec.name.clone()),
        }
    }
    if !problems.is_empty() {
        bail!(
            "--collect: {} problems, nothing written:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(Collected {
        records,
        sources,
        missing,
    })
}
