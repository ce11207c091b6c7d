//! `spatial-gpu reproduce` (the paper's Table 1: {concat, mixed, sequential} x {regular, spatial} x
//! seeds, each run trained, split and summarised) and `spatial-gpu sweep` (the settings grid that
//! chooses the defaults: transport normalisation x weight norm x initialisation x alpha x beta).
//!
//! Both run a list of independent runs, each in its own sub-directory of `--out` holding the
//! standard run files (`model.safetensors`, `metrics.jsonl`, `summary.json`) and the split report
//! (`split.json`, as `spatial-gpu split` writes it). A run is never redone: a finished run is read
//! back from its files, an interrupted one continues from its checkpoint exactly as
//! `spatial-gpu train --resume` would, a finished run whose split is missing is only split. A
//! directory holding a run with other options is an error, never silently reused.
//!
//! `--jobs N` runs N runs at once, one thread each (the CPU backend is single-threaded); the datasets
//! are loaded once and shared. Each run depends only on its own options and seed, and the outputs are
//! written in grid order, so the results do not depend on `--jobs` (only the wall times do).

use crate::checkpoint::{self, Checkpoint, Progress};
use crate::cli::{self, BackendChoice, DataDirArg, TrainArgs};
use crate::config::{Init, InputMode, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use crate::data::batches::{test_set, TestSet};
use crate::data::Datasets;
use crate::model::{Params, TrainState};
use crate::split::{self, LayerStats, SplitOptions, SplitReport};
use crate::train::{self, Outcome, RunOptions};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const ALL_MODES: [InputMode; 3] = [InputMode::Concat, InputMode::Mixed, InputMode::Sequential];

/// One run of a grid: its directory name under `--out` and its full configuration.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub name: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
}

/// One finished run as `results.json` and `sweep.json` list it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Directory of the run under `--out`.
    pub run: String,
    pub mode: InputMode,
    pub spatial: bool,
    pub seed: u64,
    pub epochs: usize,
    pub init: Init,
    pub transport_norm: TransportNorm,
    pub weight_norm: WeightNorm,
    pub alpha: f32,
    pub beta: f32,
    /// Mean over tasks of the full network's accuracy.
    pub full_accuracy: f64,
    /// Mean over tasks of each task's subnetwork's accuracy on its own task.
    pub split_accuracy: f64,
    /// `full_accuracy - split_accuracy`.
    pub drop: f64,
    pub task_accuracy: Vec<f64>,
    pub task_split_accuracy: Vec<f64>,
    pub task_drop: Vec<f64>,
    /// Every task's accuracy of the full network is above 0.5 (chance is 0.1).
    pub trained_all_heads: bool,
    /// Per split layer: neurons per task, cross-task |w| share, segregation score and p-value.
    pub split_layers: Vec<LayerStats>,
    /// Wall seconds of the training steps (from `metrics.jsonl`, evaluation excluded).
    pub train_seconds: f64,
    /// Wall seconds of the split and its evaluation.
    pub split_seconds: f64,
    pub backend: String,
}

impl RunRecord {
    fn new(spec: &RunSpec, report: &SplitReport, train_seconds: f64) -> RunRecord {
        RunRecord {
            run: spec.name.clone(),
            mode: spec.train.mode,
            spatial: spec.model.is_spatial(),
            seed: spec.train.seed,
            epochs: spec.train.epochs,
            init: spec.model.init,
            transport_norm: spec.model.transport_norm,
            weight_norm: spec.model.weight_norm,
            alpha: spec.model.alpha,
            beta: spec.model.beta,
            full_accuracy: report.full_accuracy,
            split_accuracy: report.split_accuracy,
            drop: report.drop,
            task_accuracy: report.task_accuracy.clone(),
            task_split_accuracy: report.task_split_accuracy.clone(),
            task_drop: report.task_drop.clone(),
            trained_all_heads: report.task_accuracy.iter().all(|&a| a > 0.5),
            split_layers: report.layers.clone(),
            train_seconds,
            split_seconds: report.seconds,
            backend: report.backend.clone(),
        }
    }

    /// Segregation score of split layer `l`, if defined.
    pub fn segregation(&self, l: usize) -> Option<f64> {
        self.split_layers
            .iter()
            .find(|s| s.layer == l)?
            .segregation
            .as_ref()
            .map(|s| s.score)
    }
}

/// How the runs of a grid are executed.
pub struct GridContext<'a> {
    pub out: PathBuf,
    pub data: &'a Datasets,
    pub backend: BackendChoice,
    pub adapter: Option<String>,
    pub jobs: usize,
    pub split: SplitOptions,
    pub checkpoint_every: usize,
    /// Set to stop every run at its next step boundary (after saving a checkpoint).
    pub stop: Arc<AtomicBool>,
    /// Show per-epoch lines and progress bars (only sensible with one job).
    pub verbose: bool,
}

/// What the runs of a grid came to, in the grid's order.
pub struct GridOutcome {
    pub records: Vec<Option<RunRecord>>,
    /// Runs that failed, with why.
    pub failed: Vec<(String, String)>,
    /// Some run was stopped by the stop flag (its checkpoint is saved).
    pub interrupted: bool,
}

enum RunError {
    Interrupted,
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Failed(e)
    }
}

/// Where a run directory stands.
enum RunState {
    /// Finished and split: nothing to do.
    Done(Box<SplitReport>),
    /// Trained to the end, split report missing or stale.
    NeedsSplit(Box<Checkpoint>),
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

fn run_state(dir: &Path, spec: &RunSpec, opts: SplitOptions) -> Result<RunState> {
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
    if ck.model != spec.model || without_epochs(&ck.train) != without_epochs(&spec.train) {
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
struct TestSets<'a> {
    data: &'a Datasets,
    sets: [OnceLock<TestSet>; 3],
}

impl TestSets<'_> {
    fn get(&self, mode: InputMode) -> &TestSet {
        let k = ALL_MODES.iter().position(|&m| m == mode).expect("a known mode");
        self.sets[k].get_or_init(|| test_set(mode, self.data))
    }
}

/// Trains (or resumes) and splits one run; reads a finished one back.
fn execute(spec: &RunSpec, ctx: &GridContext, tests: &TestSets) -> Result<(RunRecord, bool), RunError> {
    let dir = ctx.out.join(&spec.name);
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
            let mut backend =
                cli::make_backend(ctx.backend, ctx.adapter.as_deref(), ck.model, ck.train, ck.state)?;
            let report = write_split(&split::analyse(
                backend.as_mut(),
                test,
                spec.train.epochs,
                ctx.split,
            )?)?;
            return Ok((RunRecord::new(spec, &report, train_seconds(&dir)), false));
        }
        RunState::Resume(ck) => {
            let mut train_cfg = ck.train.clone();
            train_cfg.epochs = spec.train.epochs;
            (ck.model, train_cfg, ck.state, ck.progress)
        }
        RunState::Fresh => {
            cli::prepare_out_dir(&dir)?;
            let state = TrainState::new(Params::init(&spec.model, spec.train.seed));
            (spec.model.clone(), spec.train.clone(), state, Progress::default())
        }
    };
    let mut backend = cli::make_backend(ctx.backend, ctx.adapter.as_deref(), ck_model, ck_train, ck_state)?;
    let opts = RunOptions {
        out: dir.clone(),
        progress: ctx.verbose,
        verbose: ctx.verbose,
        checkpoint_every: ctx.checkpoint_every,
        stop: Some(ctx.stop.clone()),
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

/// Runs every spec (`ctx.jobs` at a time), calling `on_update` with the records so far after each
/// finished run (under a lock, so calls never overlap).
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
    let interrupted = AtomicBool::new(false);
    let worker = || loop {
        if ctx.stop.load(Ordering::SeqCst) {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= n {
            break;
        }
        let spec = &specs[i];
        if ctx.verbose {
            println!(
                "run {}/{n}: {} -> {}",
                i + 1,
                spec.name,
                ctx.out.join(&spec.name).display()
            );
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(spec, ctx, &tests)))
            .unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(RunError::Failed(anyhow!("panicked: {msg}")))
            });
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
                        .task_accuracy
                        .iter()
                        .map(|a| format!("{a:.4}"))
                        .collect::<Vec<_>>()
                        .join(" / "),
                    record.train_seconds
                );
                let mut r = records.lock().unwrap_or_else(|e| e.into_inner());
                r[i] = Some(record);
                on_update(&r);
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
    let jobs = ctx.jobs.clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 1..jobs {
            s.spawn(worker);
        }
        worker();
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort_by_key(|f| f.0);
    GridOutcome {
        records: records.into_inner().unwrap_or_else(|e| e.into_inner()),
        failed: failed.into_iter().map(|(_, name, msg)| (name, msg)).collect(),
        interrupted: interrupted.load(Ordering::SeqCst) || ctx.stop.load(Ordering::SeqCst),
    }
}

/// Options shared by `reproduce` and `sweep`.
#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Seeds of the runs, comma-separated [default: 1,2,3 for reproduce; 1,2,3,4,5 for sweep]
    #[arg(long, value_delimiter = ',', value_name = "S,S,..")]
    pub seeds: Option<Vec<u64>>,
    /// Epochs per run [default: 50 for reproduce; 10 for sweep]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Input modes, comma-separated [default: concat,mixed,sequential]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "MODE,..")]
    pub modes: Option<Vec<InputMode>>,
    /// Compute backend of every run
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// GPU adapter to use: a substring of its name (see `spatial-gpu info`) [env: SPATIAL_GPU_ADAPTER]
    #[arg(long)]
    pub adapter: Option<String>,
    /// Runs trained at once, one thread each
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Hidden layer sizes, comma-separated [default: 128,128,128,256]
    #[arg(long, value_delimiter = ',', value_name = "N,N,..")]
    pub hidden: Option<Vec<usize>>,
    /// Examples per batch [default: 256]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 0.005]
    #[arg(long)]
    pub lr: Option<f32>,
    /// Label permutations of each layer's segregation test
    #[arg(long, value_name = "N", default_value_t = split::DEFAULT_PERMUTATIONS)]
    pub permutations: usize,
    /// Also save a checkpoint every N steps (one is always saved at each epoch's end)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub checkpoint_every: usize,
}

/// One cell's settings, for building a [`RunSpec`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub mode: InputMode,
    pub regular: bool,
    pub init: Option<Init>,
    pub transport_norm: Option<TransportNorm>,
    pub weight_norm: Option<WeightNorm>,
    pub alpha: Option<f32>,
    pub beta: Option<f32>,
}

impl GridArgs {
    fn seeds(&self, default: &[u64]) -> Result<Vec<u64>> {
        let seeds = self.seeds.clone().unwrap_or_else(|| default.to_vec());
        if seeds.is_empty() {
            bail!("--seeds: give at least one seed");
        }
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != seeds.len() {
            bail!(
                "--seeds {}: a seed is repeated",
                seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",")
            );
        }
        Ok(seeds)
    }

    fn modes(&self) -> Result<Vec<InputMode>> {
        let modes = self.modes.clone().unwrap_or_else(|| ALL_MODES.to_vec());
        let mut sorted = modes.clone();
        sorted.sort_by_key(|m| m.name());
        sorted.dedup();
        if modes.is_empty() || sorted.len() != modes.len() {
            bail!("--modes: give each mode at most once, at least one");
        }
        // Grid order is always concat, mixed, sequential.
        Ok(ALL_MODES.into_iter().filter(|m| modes.contains(m)).collect())
    }

    fn check(&self) -> Result<()> {
        if self.jobs == 0 {
            bail!("--jobs 0: at least one run must train at a time");
        }
        Ok(())
    }

    /// The run of `setting` with `seed` and `epochs`: `train`'s own option handling, so the defaults
    /// are exactly those of `spatial-gpu train`; the input width is the data's.
    fn spec(&self, name: String, s: Setting, seed: u64, epochs: usize, data: &Datasets) -> Result<RunSpec> {
        let args = TrainArgs {
            data: self.data.clone(),
            mode: Some(s.mode),
            init: s.init,
            transport_norm: s.transport_norm,
            weight_norm: s.weight_norm,
            alpha: if s.regular { None } else { s.alpha },
            beta: if s.regular { None } else { s.beta },
            regular: s.regular,
            hidden: self.hidden.clone(),
            epochs: Some(epochs),
            seed: Some(seed),
            batch_size: self.batch_size,
            lr: self.lr,
            backend: self.backend,
            adapter: self.adapter.clone(),
            out: None,
            resume: None,
            checkpoint_every: self.checkpoint_every,
            no_progress: true,
        };
        let (mut model, train) = args.configs()?;
        model.sizes[0] = data.input_dim(s.mode);
        model.validate()?;
        Ok(RunSpec { name, model, train })
    }

    fn context<'a>(&self, out: PathBuf, data: &'a Datasets, stop: Arc<AtomicBool>) -> GridContext<'a> {
        GridContext {
            out,
            data,
            backend: self.backend,
            adapter: self.adapter.clone(),
            jobs: self.jobs,
            split: SplitOptions {
                permutations: self.permutations,
                ..SplitOptions::default()
            },
            checkpoint_every: self.checkpoint_every,
            stop,
            verbose: self.jobs == 1,
        }
    }
}

/// A stop flag set by Ctrl-C (a second Ctrl-C exits at once).
fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if s.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupt: every run saves a checkpoint at its next step boundary (Ctrl-C again to abort)"
        );
    });
    stop
}

fn prepare_grid_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    crate::cli::check_writable(out, "--out")
}

/// Reports failures and interruption after the outputs are written; the exit code.
fn finish(outcome: &GridOutcome, out: &Path, command: &str) -> Result<i32> {
    if outcome.interrupted {
        eprintln!(
            "stopped; finished runs are in {}. Run the same `spatial-gpu {command}` command again to resume.",
            out.display()
        );
        return Ok(130);
    }
    if !outcome.failed.is_empty() {
        let list: Vec<String> = outcome
            .failed
            .iter()
            .map(|(n, m)| format!("  {n}: {m}"))
            .collect();
        bail!(
            "{} of {} runs failed (the others are written to {}):\n{}",
            outcome.failed.len(),
            outcome.records.len(),
            out.display(),
            list.join("\n")
        );
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// reproduce

#[derive(clap::Args, Debug, Clone)]
pub struct ReproduceArgs {
    #[command(flatten)]
    pub grid: GridArgs,
    /// Output directory: one sub-directory per run, results.json and table.md
    #[arg(long, value_name = "DIR", default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// Weight initialisation of every run [default: train's]
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// Normalisation of the spatial runs' transport cost [default: train's]
    #[arg(long, value_enum)]
    pub transport_norm: Option<TransportNorm>,
    /// Weight term of the spatial runs' transport cost [default: train's]
    #[arg(long, value_enum)]
    pub weight_norm: Option<WeightNorm>,
    /// Weight of the spatial runs' transport cost [default: train's]
    #[arg(long)]
    pub alpha: Option<f32>,
    /// Weight of the spatial runs' density cost [default: train's]
    #[arg(long)]
    pub beta: Option<f32>,
}

pub const REPRODUCE_SEEDS: [u64; 3] = [1, 2, 3];
pub const REPRODUCE_EPOCHS: usize = 50;

/// The runs of `reproduce`: modes x {regular, spatial} x seeds, in that order.
pub fn reproduce_specs(args: &ReproduceArgs, data: &Datasets) -> Result<Vec<RunSpec>> {
    args.grid.check()?;
    let seeds = args.grid.seeds(&REPRODUCE_SEEDS)?;
    let epochs = args.grid.epochs.unwrap_or(REPRODUCE_EPOCHS);
    let mut specs = Vec::new();
    for mode in args.grid.modes()? {
        for regular in [true, false] {
            for &seed in &seeds {
                let name = format!(
                    "{mode}-{}-seed{seed}",
                    if regular { "regular" } else { "spatial" }
                );
                let setting = Setting {
                    mode,
                    regular,
                    init: args.init,
                    transport_norm: args.transport_norm,
                    weight_norm: args.weight_norm,
                    alpha: args.alpha,
                    beta: args.beta,
                };
                let spec = args.grid.spec(name, setting, seed, epochs, data)?;
                if !regular && !spec.model.is_spatial() {
                    bail!("--alpha 0 --beta 0: the spatial runs would be regular networks");
                }
                specs.push(spec);
            }
        }
    }
    Ok(specs)
}

/// The paper's Table 1: `(full, full std, split, split std, drop, drop std)` per mode, regular then
/// spatial.
pub fn paper_table(mode: InputMode, spatial: bool) -> [f64; 6] {
    match (mode, spatial) {
        (InputMode::Concat, false) => [0.92, 0.04, 0.80, 0.13, 0.11, 0.15],
        (InputMode::Concat, true) => [0.92, 0.04, 0.92, 0.04, 0.00, 0.00],
        (InputMode::Mixed, false) => [0.88, 0.04, 0.70, 0.17, 0.19, 0.20],
        (InputMode::Mixed, true) => [0.89, 0.04, 0.89, 0.03, 0.00, 0.00],
        (InputMode::Sequential, false) => [0.92, 0.05, 0.33, 0.20, 0.60, 0.20],
        (InputMode::Sequential, true) => [0.92, 0.05, 0.84, 0.08, 0.07, 0.07],
    }
}

/// Mean and sample standard deviation (`n - 1`; `None` for fewer than two values).
pub fn mean_std(v: &[f64]) -> (f64, Option<f64>) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    let std = (v.len() > 1).then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, std)
}

fn fmt_mean_std(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    match mean_std(v) {
        (m, Some(s)) => format!("{m:.3} ± {s:.3}"),
        (m, None) => format!("{m:.3}"),
    }
}

/// An option's value as the command line spells it (`xavier`, `paper`, `l1`).
fn lower(v: impl std::fmt::Debug) -> String {
    format!("{v:?}").to_lowercase()
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// `table.md`: the reproduced Table 1, the paper's beside it, per-task accuracies, split statistics
/// and every run.
pub fn table_markdown(records: &[RunRecord], specs: &[RunSpec]) -> String {
    let mut s = String::new();
    let modes: Vec<InputMode> = ALL_MODES
        .into_iter()
        .filter(|m| specs.iter().any(|r| r.train.mode == *m))
        .collect();
    let cols: Vec<(InputMode, bool)> = modes.iter().flat_map(|&m| [(m, false), (m, true)]).collect();
    let of = |m: InputMode, sp: bool| -> Vec<&RunRecord> {
        records
            .iter()
            .filter(|r| r.mode == m && r.spatial == sp)
            .collect()
    };
    let kind = |sp: bool| if sp { "spatial" } else { "regular" };
    let header = |s: &mut String| {
        s.push_str("| |");
        for &(m, sp) in &cols {
            let _ = write!(s, " {m} {} |", kind(sp));
        }
        s.push_str("\n| --- |");
        for _ in &cols {
            s.push_str(" --- |");
        }
        s.push('\n');
    };

    let _ = writeln!(s, "# Table 1, reproduced\n");
    let spatial_spec = specs.iter().find(|r| r.model.is_spatial());
    let any = specs.first();
    let mut seeds: Vec<u64> = specs.iter().map(|r| r.train.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    if let Some(a) = any {
        let _ = writeln!(
            s,
            "Settings: {} epochs, seeds {:?}, sizes (input)-{}, batch {}, lr {}, init {}.",
            a.train.epochs,
            seeds,
            a.model.sizes[1..]
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            a.train.batch_size,
            a.train.lr,
            lower(a.model.init)
        );
    }
    if let Some(sp) = spatial_spec {
        let _ = writeln!(
            s,
            "Spatial runs: alpha {}, beta {}, transport norm {}, weight norm {}, spatial layers {:?}. \
             Regular runs: alpha = beta = 0.",
            sp.model.alpha,
            sp.model.beta,
            lower(sp.model.transport_norm),
            lower(sp.model.weight_norm),
            sp.model.spatial_layers
        );
    }
    let mut backends: Vec<&str> = records.iter().map(|r| r.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let total: f64 = records.iter().map(|r| r.train_seconds).sum();
    let _ = writeln!(
        s,
        "Backend: {}. Runs finished: {} of {}; training time summed over runs: {:.0} s.\n",
        if backends.is_empty() {
            "-".into()
        } else {
            backends.join(", ")
        },
        records.len(),
        specs.len(),
        total
    );
    let _ = writeln!(
        s,
        "Accuracy is the mean of the two tasks' test accuracies; split: each task's subnetwork on its own task; \
         drop = full - split. Cells: mean ± sample standard deviation (n - 1) over seeds.\n"
    );
    header(&mut s);
    type Pick = fn(&RunRecord) -> f64;
    let rows: [(&str, Pick, usize); 3] = [
        ("full", |r| r.full_accuracy, 0),
        ("split", |r| r.split_accuracy, 2),
        ("drop", |r| r.drop, 4),
    ];
    for (name, pick, _) in rows {
        let _ = write!(s, "| {name} |");
        for &(m, sp) in &cols {
            let v: Vec<f64> = of(m, sp).iter().map(|r| pick(r)).collect();
            let _ = write!(s, " {} |", fmt_mean_std(&v));
        }
        s.push('\n');
    }
    let _ = write!(s, "| runs |");
    for &(m, sp) in &cols {
        let _ = write!(s, " {} |", of(m, sp).len());
    }
    s.push_str("\n\n## Beside the paper (ours / paper)\n\n");
    header(&mut s);
    for (name, pick, k) in rows {
        let _ = write!(s, "| {name} |");
        for &(m, sp) in &cols {
            let v: Vec<f64> = of(m, sp).iter().map(|r| pick(r)).collect();
            let p = paper_table(m, sp);
            let ours = if v.is_empty() {
                "-".into()
            } else {
                format!("{:.2}", mean_std(&v).0)
            };
            let _ = write!(s, " {ours} / {:.2} |", p[k]);
        }
        s.push('\n');
    }
    s.push_str("\n## The paper's Table 1 (means ± std over 3 runs)\n\n");
    header(&mut s);
    for (name, _, k) in rows {
        let _ = write!(s, "| {name} |");
        for &(m, sp) in &cols {
            let p = paper_table(m, sp);
            let _ = write!(s, " {:.2} ± {:.2} |", p[k], p[k + 1]);
        }
        s.push('\n');
    }

    let tasks = records.first().map_or(2, |r| r.task_accuracy.len());
    s.push_str("\n## Per task (mean over seeds)\n\n");
    header(&mut s);
    for t in 0..tasks {
        for (what, split) in [("full", false), ("split", true)] {
            let _ = write!(s, "| {} {what} |", split::task_name(t, tasks));
            for &(m, sp) in &cols {
                let v: Vec<f64> = of(m, sp)
                    .iter()
                    .filter_map(|r| {
                        if split {
                            r.task_split_accuracy.get(t)
                        } else {
                            r.task_accuracy.get(t)
                        }
                        .copied()
                    })
                    .collect();
                let _ = write!(s, " {} |", fmt_mean_std(&v));
            }
            s.push('\n');
        }
    }
    let _ = write!(s, "| all heads trained (acc > 0.5) |");
    for &(m, sp) in &cols {
        let rs = of(m, sp);
        let _ = write!(
            s,
            " {}/{} |",
            rs.iter().filter(|r| r.trained_all_heads).count(),
            rs.len()
        );
    }
    s.push('\n');

    let layers: Vec<usize> = records
        .first()
        .map_or(Vec::new(), |r| r.split_layers.iter().map(|l| l.layer).collect());
    if !layers.is_empty() {
        s.push_str(
            "\n## Split statistics (mean over seeds)\n\n\
             cross |w|: share of the |w| mass into the next layer joining neurons of different tasks. \
             segregation: mean same-task / mean cross-task distance of the layer's positions (< 1: grouped \
             by task); p < 0.05: runs whose label-permutation p-value is below 0.05.\n\n",
        );
        header(&mut s);
        for &l in &layers {
            let stat = |r: &RunRecord| r.split_layers.iter().find(|x| x.layer == l).cloned();
            let _ = write!(s, "| layer {l} neurons per task |");
            for &(m, sp) in &cols {
                let rs = of(m, sp);
                let counts: Vec<Vec<usize>> = rs
                    .iter()
                    .filter_map(|r| stat(r))
                    .map(|x| x.neurons_per_task)
                    .collect();
                let cell = if counts.is_empty() {
                    "-".into()
                } else {
                    (0..counts[0].len())
                        .map(|t| {
                            let v: Vec<f64> = counts.iter().map(|c| c[t] as f64).collect();
                            format!("{:.0}", mean_std(&v).0)
                        })
                        .collect::<Vec<_>>()
                        .join(" / ")
                };
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
            if layers.last() != Some(&l) {
                let _ = write!(s, "| layer {l} cross \\|w\\| |");
                for &(m, sp) in &cols {
                    let v: Vec<f64> = of(m, sp).iter().filter_map(|r| stat(r)?.cross_share).collect();
                    let _ = write!(s, " {} |", fmt_mean_std(&v));
                }
                s.push('\n');
            }
            let _ = write!(s, "| layer {l} segregation |");
            for &(m, sp) in &cols {
                let v: Vec<f64> = of(m, sp).iter().filter_map(|r| r.segregation(l)).collect();
                let _ = write!(s, " {} |", fmt_mean_std(&v));
            }
            s.push('\n');
            let _ = write!(s, "| layer {l} p < 0.05 |");
            for &(m, sp) in &cols {
                let rs = of(m, sp);
                let sig = rs
                    .iter()
                    .filter(|r| {
                        stat(r)
                            .and_then(|x| x.segregation)
                            .is_some_and(|g| g.p_value < 0.05)
                    })
                    .count();
                let _ = write!(s, " {sig}/{} |", rs.len());
            }
            s.push('\n');
        }
    }

    s.push_str("\n## Runs\n\n| run | full | split | drop |");
    for t in 0..tasks {
        let _ = write!(s, " {} full / split |", split::task_name(t, tasks));
    }
    for l in &layers {
        let _ = write!(s, " seg. {l} |");
    }
    s.push_str(" train s |\n| --- | --- | --- | --- |");
    for _ in 0..tasks + layers.len() + 1 {
        s.push_str(" --- |");
    }
    s.push('\n');
    for r in records {
        let _ = write!(
            s,
            "| {} | {:.4} | {:.4} | {:.4} |",
            r.run, r.full_accuracy, r.split_accuracy, r.drop
        );
        for t in 0..tasks {
            let _ = write!(
                s,
                " {} / {} |",
                fmt_opt(r.task_accuracy.get(t).copied(), 4),
                fmt_opt(r.task_split_accuracy.get(t).copied(), 4)
            );
        }
        for &l in &layers {
            let _ = write!(s, " {} |", fmt_opt(r.segregation(l), 3));
        }
        let _ = writeln!(s, " {:.0} |", r.train_seconds);
    }
    s
}

fn write_outputs(
    out: &Path,
    records: &[Option<RunRecord>],
    json_name: &str,
    md_name: &str,
    md: String,
) -> Result<()> {
    let finished: Vec<&RunRecord> = records.iter().flatten().collect();
    let json = out.join(json_name);
    checkpoint::write_atomic(&json, serde_json::to_string_pretty(&finished)?.as_bytes())
        .with_context(|| format!("cannot write {}", json.display()))?;
    let md_path = out.join(md_name);
    checkpoint::write_atomic(&md_path, md.as_bytes())
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    Ok(())
}

pub fn cmd_reproduce(args: &ReproduceArgs) -> Result<i32> {
    args.grid.check()?;
    args.grid.seeds(&REPRODUCE_SEEDS)?;
    args.grid.modes()?;
    prepare_grid_dir(&args.out)?;
    let data = cli::load_data(args.grid.data.data_dir.as_deref())?;
    let specs = reproduce_specs(args, &data)?;
    println!(
        "reproducing Table 1: {} runs ({} epochs each) in {}, {} at a time",
        specs.len(),
        specs[0].train.epochs,
        args.out.display(),
        args.grid.jobs
    );
    preflight(
        &specs,
        &args.out,
        SplitOptions {
            permutations: args.grid.permutations,
            ..SplitOptions::default()
        },
    )?;
    let ctx = args.grid.context(args.out.clone(), &data, interrupt_flag());
    let write = |records: &[Option<RunRecord>]| -> Result<()> {
        let finished: Vec<RunRecord> = records.iter().flatten().cloned().collect();
        write_outputs(
            &args.out,
            records,
            "results.json",
            "table.md",
            table_markdown(&finished, &specs),
        )
    };
    let on_update = |records: &[Option<RunRecord>]| {
        if let Err(e) = write(records) {
            eprintln!("warning: {e:#}");
        }
    };
    let outcome = run_grid(&specs, &ctx, &on_update);
    write(&outcome.records)?;
    let finished: Vec<RunRecord> = outcome.records.iter().flatten().cloned().collect();
    let table = table_markdown(&finished, &specs);
    println!("\n{}\n", table.split("\n## ").next().unwrap_or("").trim_end());
    println!(
        "wrote {} and {}",
        args.out.join("results.json").display(),
        args.out.join("table.md").display()
    );
    finish(&outcome, &args.out, "reproduce")
}

// ---------------------------------------------------------------------------------------------
// sweep

#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub grid: GridArgs,
    /// Output directory: one sub-directory per run, sweep.json and sweep.md
    #[arg(long, value_name = "DIR", default_value = "runs/sweep")]
    pub out: PathBuf,
    /// Initialisations to try
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "INIT,..",
        default_value = "torch,xavier"
    )]
    pub inits: Vec<Init>,
    /// Transport normalisations to try
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "NORM,..",
        default_value = "paper,mean"
    )]
    pub transport_norms: Vec<TransportNorm>,
    /// Transport weight norms to try
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "NORM,..",
        default_value = "l1,l2"
    )]
    pub weight_norms: Vec<WeightNorm>,
    /// Alphas to try with the paper's transport normalisation (1/N_l)
    #[arg(long, value_delimiter = ',', value_name = "A,..", default_value = "0.01,1")]
    pub paper_alphas: Vec<f32>,
    /// Alphas to try with the authors' code's normalisation (mean over connections)
    #[arg(long, value_delimiter = ',', value_name = "A,..", default_value = "1")]
    pub mean_alphas: Vec<f32>,
    /// Betas to try
    #[arg(long, value_delimiter = ',', value_name = "B,..", default_value = "3")]
    pub betas: Vec<f32>,
    /// Leave out the regular baselines (one per mode and initialisation)
    #[arg(long)]
    pub no_regular: bool,
}

pub const SWEEP_SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
pub const SWEEP_EPOCHS: usize = 10;

/// One cell of the sweep: a setting and its runs over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepCell {
    pub mode: InputMode,
    pub spatial: bool,
    pub init: Init,
    /// `None` for regular cells (no transport cost).
    pub transport_norm: Option<TransportNorm>,
    pub weight_norm: Option<WeightNorm>,
    pub alpha: f32,
    pub beta: f32,
    /// Runs of this cell that finished.
    pub runs: usize,
    /// Runs in which every head's accuracy exceeds 0.5.
    pub trained_all_heads: usize,
    pub full_accuracy: Option<f64>,
    pub split_accuracy: Option<f64>,
    pub drop: Option<f64>,
    /// Mean drop over the runs that trained all heads.
    pub drop_trained: Option<f64>,
    /// Per split layer: means over the cell's runs.
    pub layers: Vec<CellLayer>,
    /// Run directories of the cell.
    pub run_names: Vec<String>,
}

/// One split layer's numbers in a sweep cell, averaged over the cell's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellLayer {
    pub layer: usize,
    /// Mean segregation score (runs where it is defined).
    pub segregation: Option<f64>,
    /// Runs whose segregation p-value is below 0.05.
    pub segregated_runs: usize,
    /// Mean cross-task share of the |w| mass into the next layer (`None` for the output layer).
    pub cross_share: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepResults {
    pub epochs: usize,
    pub seeds: Vec<u64>,
    pub cells: Vec<SweepCell>,
    pub runs: Vec<RunRecord>,
}

/// The sweep's cells (each a setting and a name stem) in grid order: per mode and init, the regular
/// baseline, then every transport norm x weight norm x alpha x beta.
pub fn sweep_settings(args: &SweepArgs) -> Result<Vec<(String, Setting)>> {
    for (name, empty) in [
        ("inits", args.inits.is_empty()),
        ("transport-norms", args.transport_norms.is_empty()),
        ("weight-norms", args.weight_norms.is_empty()),
        ("betas", args.betas.is_empty()),
    ] {
        if empty {
            bail!("--{name}: give at least one value");
        }
    }
    for (name, list) in [
        ("paper-alphas", &args.paper_alphas),
        ("mean-alphas", &args.mean_alphas),
        ("betas", &args.betas),
    ] {
        if let Some(v) = list.iter().find(|v| !v.is_finite() || **v < 0.0) {
            bail!("--{name}: {v} is not a finite number >= 0");
        }
    }
    let mut cells = Vec::new();
    for mode in args.grid.modes()? {
        for &init in &args.inits {
            let base = Setting {
                mode,
                regular: true,
                init: Some(init),
                transport_norm: None,
                weight_norm: None,
                alpha: None,
                beta: None,
            };
            let init_name = lower(init);
            if !args.no_regular {
                cells.push((format!("{mode}-{init_name}-regular"), base));
            }
            for &tn in &args.transport_norms {
                let alphas = match tn {
                    TransportNorm::Paper => &args.paper_alphas,
                    TransportNorm::Mean => &args.mean_alphas,
                };
                for &wn in &args.weight_norms {
                    for &alpha in alphas {
                        for &beta in &args.betas {
                            if alpha == 0.0 && beta == 0.0 {
                                continue;
                            }
                            let name =
                                format!("{mode}-{init_name}-{}-{}-a{alpha}-b{beta}", lower(tn), lower(wn));
                            cells.push((
                                name,
                                Setting {
                                    regular: false,
                                    transport_norm: Some(tn),
                                    weight_norm: Some(wn),
                                    alpha: Some(alpha),
                                    beta: Some(beta),
                                    ..base
                                },
                            ));
                        }
                    }
                }
            }
        }
    }
    let mut names: Vec<&String> = cells.iter().map(|c| &c.0).collect();
    names.sort();
    names.dedup();
    if names.len() != cells.len() {
        bail!("the sweep repeats a cell: give each value of --paper-alphas, --mean-alphas and --betas once");
    }
    Ok(cells)
}

/// Aggregates the runs of each cell.
pub fn sweep_cells(
    cells: &[(String, Vec<RunSpec>)],
    records: &[Option<RunRecord>],
    offsets: &[usize],
) -> Vec<SweepCell> {
    let mut out = Vec::new();
    for ((_, specs), &off) in cells.iter().zip(offsets) {
        let recs: Vec<&RunRecord> = records[off..off + specs.len()].iter().flatten().collect();
        let first = &specs[0];
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| mean_std(&v).0);
        let layers = split::split_layers(&first.model);
        out.push(SweepCell {
            mode: first.train.mode,
            spatial: first.model.is_spatial(),
            init: first.model.init,
            transport_norm: first.model.is_spatial().then_some(first.model.transport_norm),
            weight_norm: first.model.is_spatial().then_some(first.model.weight_norm),
            alpha: first.model.alpha,
            beta: first.model.beta,
            runs: recs.len(),
            trained_all_heads: recs.iter().filter(|r| r.trained_all_heads).count(),
            full_accuracy: mean(recs.iter().map(|r| r.full_accuracy).collect()),
            split_accuracy: mean(recs.iter().map(|r| r.split_accuracy).collect()),
            drop: mean(recs.iter().map(|r| r.drop).collect()),
            drop_trained: mean(
                recs.iter()
                    .filter(|r| r.trained_all_heads)
                    .map(|r| r.drop)
                    .collect(),
            ),
            layers: layers
                .iter()
                .map(|&l| {
                    let stats: Vec<&LayerStats> = recs
                        .iter()
                        .filter_map(|r| r.split_layers.iter().find(|x| x.layer == l))
                        .collect();
                    CellLayer {
                        layer: l,
                        segregation: mean(
                            stats
                                .iter()
                                .filter_map(|x| x.segregation.as_ref().map(|g| g.score))
                                .collect(),
                        ),
                        segregated_runs: stats
                            .iter()
                            .filter(|x| x.segregation.as_ref().is_some_and(|g| g.p_value < 0.05))
                            .count(),
                        cross_share: mean(stats.iter().filter_map(|x| x.cross_share).collect()),
                    }
                })
                .collect(),
            run_names: specs.iter().map(|s| s.name.clone()).collect(),
        });
    }
    out
}

/// `sweep.md`: one row per cell.
pub fn sweep_markdown(cells: &[SweepCell], epochs: usize, seeds: &[u64]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Settings sweep\n");
    let _ = writeln!(
        s,
        "{epochs} epochs, seeds {seeds:?}. \"all heads\": runs in which every task's test accuracy exceeds 0.5 \
         (chance is 0.1). full / split / drop: means over the cell's runs; drop (trained): over the runs that \
         trained all heads. seg. l: mean segregation score of split layer l (same-task / cross-task distance; \
         < 1: grouped by task), with the number of runs whose permutation p-value is below 0.05.\n"
    );
    let layers: Vec<usize> = cells
        .first()
        .map_or(Vec::new(), |c| c.layers.iter().map(|x| x.layer).collect());
    s.push_str("| mode | init | transport | weight | alpha | beta | all heads | full | split | drop | drop (trained) |");
    for l in &layers {
        let _ = write!(s, " seg. {l} |");
    }
    s.push_str("\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for _ in &layers {
        s.push_str(" --- |");
    }
    s.push('\n');
    let name = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for c in cells {
        let _ = write!(
            s,
            "| {} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {} | {} |",
            c.mode,
            lower(c.init),
            if c.spatial {
                name(c.transport_norm.map(lower))
            } else {
                "(regular)".into()
            },
            name(c.weight_norm.map(lower)),
            c.alpha,
            c.beta,
            c.trained_all_heads,
            c.runs,
            fmt_opt(c.full_accuracy, 3),
            fmt_opt(c.split_accuracy, 3),
            fmt_opt(c.drop, 3),
            fmt_opt(c.drop_trained, 3),
        );
        for x in &c.layers {
            let _ = write!(
                s,
                " {} ({}/{}) |",
                fmt_opt(x.segregation, 3),
                x.segregated_runs,
                c.runs
            );
        }
        s.push('\n');
    }
    s
}

pub fn cmd_sweep(args: &SweepArgs) -> Result<i32> {
    args.grid.check()?;
    let seeds = args.grid.seeds(&SWEEP_SEEDS)?;
    let epochs = args.grid.epochs.unwrap_or(SWEEP_EPOCHS);
    let settings = sweep_settings(args)?;
    prepare_grid_dir(&args.out)?;
    let data = cli::load_data(args.grid.data.data_dir.as_deref())?;
    let mut cells: Vec<(String, Vec<RunSpec>)> = Vec::new();
    for (name, setting) in &settings {
        let specs = seeds
            .iter()
            .map(|&seed| {
                args.grid
                    .spec(format!("{name}-seed{seed}"), *setting, seed, epochs, &data)
            })
            .collect::<Result<Vec<_>>>()?;
        cells.push((name.clone(), specs));
    }
    let mut offsets = Vec::new();
    let mut specs = Vec::new();
    for (_, c) in &cells {
        offsets.push(specs.len());
        specs.extend(c.iter().cloned());
    }
    println!(
        "sweep: {} cells x {} seeds = {} runs ({epochs} epochs each) in {}, {} at a time",
        cells.len(),
        seeds.len(),
        specs.len(),
        args.out.display(),
        args.grid.jobs
    );
    preflight(
        &specs,
        &args.out,
        SplitOptions {
            permutations: args.grid.permutations,
            ..SplitOptions::default()
        },
    )?;
    let ctx = args.grid.context(args.out.clone(), &data, interrupt_flag());
    let write = |records: &[Option<RunRecord>]| -> Result<()> {
        let cell_stats = sweep_cells(&cells, records, &offsets);
        let results = SweepResults {
            epochs,
            seeds: seeds.clone(),
            cells: cell_stats.clone(),
            runs: records.iter().flatten().cloned().collect(),
        };
        let json = args.out.join("sweep.json");
        checkpoint::write_atomic(&json, serde_json::to_string_pretty(&results)?.as_bytes())
            .with_context(|| format!("cannot write {}", json.display()))?;
        let md = args.out.join("sweep.md");
        checkpoint::write_atomic(&md, sweep_markdown(&cell_stats, epochs, &seeds).as_bytes())
            .with_context(|| format!("cannot write {}", md.display()))?;
        Ok(())
    };
    let on_update = |records: &[Option<RunRecord>]| {
        if let Err(e) = write(records) {
            eprintln!("warning: {e:#}");
        }
    };
    let outcome = run_grid(&specs, &ctx, &on_update);
    write(&outcome.records)?;
    println!(
        "wrote {} and {}",
        args.out.join("sweep.json").display(),
        args.out.join("sweep.md").display()
    );
    finish(&outcome, &args.out, "sweep")
}
