//! The subcommands of `spatial-gpu`, one module each, and the plumbing they share: which backend to
//! build, where the data is, the run directory checks and the Ctrl-C stop flag. This is the only
//! layer that knows about clap; the library below it takes plain structs.

pub mod animate;
pub mod bench;
pub mod config_file;
pub mod data;
pub mod figure;
pub mod grid;
pub mod info;
pub mod plot;
pub mod reproduce;
pub mod split;
pub mod sweep;
pub mod train;
pub mod train_seeds;
pub mod view;

use crate::backend::Backend;
use crate::checkpoint::{self, Checkpoint};
use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::CpuBackend;
use crate::data::{self as datasets, fetch, idx::DataError, Datasets};
use crate::model::TrainState;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use crate::run_dir::{check_writable, prepare_out_dir};

/// Set to 1 to never download the datasets automatically (tests, offline machines).
pub const ENV_NO_FETCH: &str = "SPATIAL_GPU_NO_FETCH";

/// The logical CPUs of this machine (`std::thread::available_parallelism`; 1 if unknown): the
/// default `--threads` of the CPU backend.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `--threads N` of the CPU backend.
#[derive(Args, Debug, Clone, Default)]
pub struct ThreadsArg {
    /// Threads of the CPU backend (the results are the same bits with any count) [default: every
    /// logical CPU]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl ThreadsArg {
    /// The thread count: `--threads`, or every logical CPU; an error for 0.
    pub fn count(&self) -> Result<usize> {
        match self.threads {
            Some(0) => bail!("--threads 0: the CPU backend needs at least one thread"),
            Some(n) => Ok(n),
            None => Ok(all_cores()),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// Directory holding mnist/, fashion-mnist/ and the other built-in tasks' folders [env: SPATIAL_GPU_DATA; default: the user cache dir]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Define a task NAME read from DIR (the four IDX files under their usual names, gzipped or not); repeatable
    #[arg(long = "task", value_name = "NAME=DIR")]
    pub task: Vec<String>,
}

impl DataDirArg {
    /// The `--task NAME=DIR` definitions, parsed.
    pub fn custom_tasks(&self) -> Result<Vec<(String, PathBuf)>> {
        Ok(self
            .task
            .iter()
            .map(|s| datasets::parse_task_spec(s))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// The tasks a new run trains: `--tasks` if given (every `--task` must be among them), else
    /// the `--task` ones if any, else MNIST and Fashion-MNIST.
    pub fn task_names(&self, tasks: Option<&[String]>) -> Result<Vec<String>> {
        let custom = self.custom_tasks()?;
        match tasks {
            Some(names) => {
                if let Some((name, dir)) = custom.iter().find(|(n, _)| !names.contains(n)) {
                    bail!(
                        "--task {name}={}: the task {name} is not in --tasks {} (add it there, or leave --tasks out to train the --task tasks)",
                        dir.display(),
                        names.join(",")
                    );
                }
                Ok(names.to_vec())
            }
            None if !custom.is_empty() => Ok(custom.into_iter().map(|(n, _)| n).collect()),
            None => Ok(crate::config::DEFAULT_TASKS
                .iter()
                .map(|s| s.to_string())
                .collect()),
        }
    }

    /// Loads the tasks `names` (see [`load_data_of`]).
    pub fn load(&self, names: &[String]) -> Result<Datasets> {
        let sources = datasets::resolve_tasks(names, &self.custom_tasks()?)?;
        load_data_of(self.data_dir.as_deref(), &sources)
    }
}

/// The tasks of a grid or a run: `--tasks a,b,c` (built-in names or `--task` names).
#[derive(Args, Debug, Clone, Default)]
pub struct TasksArg {
    /// Tasks to train, comma-separated, one head each: mnist, fashion-mnist, animal-mnist, kmnist, emnist-balanced, or a --task name [default: mnist,fashion-mnist, or the --task tasks]
    #[arg(long, value_delimiter = ',', value_name = "NAME,..")]
    pub tasks: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Cpu,
    Gpu,
    /// The GPU if a hardware adapter is present, else the CPU.
    Auto,
}

/// Loads MNIST and Fashion-MNIST (see [`load_data_of`]).
pub fn load_data(option: Option<&Path>) -> Result<Datasets> {
    load_data_of(option, &datasets::default_sources())
}

/// Loads the tasks `sources`, fetching the missing files of built-in tasks first if the network is
/// reachable and they have mirrors.
pub fn load_data_of(option: Option<&Path>, sources: &[datasets::TaskSource]) -> Result<Datasets> {
    let dir = datasets::resolve_data_dir(option);
    match datasets::load_tasks(&dir, sources) {
        Ok(d) => Ok(d),
        Err(e @ DataError::MissingData { .. }) => {
            let builtin: Vec<&str> = sources
                .iter()
                .filter(|s| s.dir.is_none())
                .map(|s| s.name.as_str())
                .collect();
            let missing = datasets::find_missing_of(&dir, &builtin);
            let mirrors = fetch::MIRRORS;
            let no_fetch = std::env::var(ENV_NO_FETCH).is_ok_and(|v| v == "1");
            if missing.is_empty() || no_fetch || !fetch::network_reachable(&mirrors) {
                return Err(e.into());
            }
            eprintln!(
                "{e}\nthe network is reachable: fetching the datasets into {}",
                dir.display()
            );
            datasets::fetch_files(&dir, &missing, &mirrors, true)?;
            Ok(datasets::load_tasks(&dir, sources)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Loads the checkpoint of a run directory given as `--{option} DIR`, with errors naming both.
pub fn load_run(dir: &Path, option: &str) -> Result<Checkpoint> {
    if !dir.is_dir() {
        bail!("--{option} {}: no such directory", dir.display());
    }
    let path = crate::train::checkpoint_path(dir);
    if !path.is_file() {
        bail!(
            "--{option} {}: no checkpoint {} in that directory (train a model there first with `spatial-gpu train --out {}`)",
            dir.display(),
            path.display(),
            dir.display()
        );
    }
    checkpoint::load(&path)
        .with_context(|| format!("--{option} {}: cannot load the checkpoint", dir.display()))
}

/// Whether `--backend` with `--adapter` trains on the GPU. `auto` takes the GPU only for a
/// hardware adapter: on Mesa's lavapipe a training step measured ~28x slower than the CPU backend
/// (docs/GPU.md), so a software adapter is never preferred.
pub fn uses_gpu(choice: BackendChoice, adapter: Option<&str>) -> bool {
    match choice {
        BackendChoice::Cpu => false,
        BackendChoice::Gpu => true,
        BackendChoice::Auto => match crate::gpu::auto_uses_gpu(adapter) {
            Ok(gpu) => gpu,
            Err(e) => {
                eprintln!("warning: {e:#}; --backend auto uses the CPU backend");
                false
            }
        },
    }
}

/// The GPU `--adapter` names, with a warning for a software one, and a note that the matmul
/// kernels are tuned next (tens of seconds on a software adapter: a blank screen looks like a hang).
pub fn open_gpu(adapter: Option<&str>) -> Result<Arc<crate::gpu::GpuContext>> {
    let ctx = crate::gpu::GpuContext::new(adapter).context("--backend gpu: no usable GPU adapter")?;
    if ctx.info.device_type == wgpu::DeviceType::Cpu {
        eprintln!(
            "warning: {} is a software adapter: training there runs about 100x slower than with \
             --backend cpu (docs/GPU.md)",
            ctx.describe()
        );
    }
    eprintln!("tuning the matmul kernels on {} ...", ctx.describe());
    Ok(ctx)
}

/// A count of at least 1 (a clap value parser): an error names the value.
pub fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// Builds the backend `choice` names for a model and its starting state: the CPU backend on
/// `threads` threads, the GPU with `steps_per_submit` steps per submission.
pub fn make_backend(
    choice: BackendChoice,
    adapter: Option<&str>,
    threads: usize,
    steps_per_submit: usize,
    model: ModelConfig,
    train: TrainConfig,
    state: TrainState,
) -> Result<Box<dyn Backend>> {
    if !uses_gpu(choice, adapter) {
        return Ok(Box::new(
            CpuBackend::new(model, train, state)?.with_threads(threads)?,
        ));
    }
    let ctx = open_gpu(adapter)?;
    let t0 = std::time::Instant::now();
    let opts = crate::gpu::GpuOptions {
        steps_per_submit,
        ..Default::default()
    };
    let backend = crate::gpu::GpuBackend::with_options(ctx, model, train, state, opts)?;
    eprintln!(
        "tuned in {:.1} s (`spatial-gpu info` lists the choices with their medians)",
        t0.elapsed().as_secs_f64()
    );
    Ok(Box::new(backend))
}

/// A stop flag set by the first Ctrl-C, after printing `message`; a second Ctrl-C exits at once.
pub fn interrupt_flag(message: &'static str) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: {message} (Ctrl-C again to abort)");
    });
    stop
}

/// A path as one shell word: as it is when it has nothing a shell would split or expand, else in
/// single quotes.
pub fn shell_word(path: &Path) -> String {
    crate::provenance::shell_quote(&path.display().to_string())
}

/// A clap parser for an option whose values are a core enum ([`crate::config::Choice`]): its names
/// and help lines become clap's possible values, so `--help` lists them and a wrong value is refused
/// with the list.
pub fn choice<T: crate::config::Choice + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let values = T::CHOICES
        .iter()
        .map(|(_, name, help)| PossibleValue::new(*name).help(*help));
    PossibleValuesParser::new(values).map(|name| {
        T::CHOICES
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(v, _, _)| *v)
            .expect("the parser passes only the names it lists")
    })
}

/// Loads the training history of a run directory given as `--model DIR`, with errors naming both.
pub fn history_of(dir: &Path) -> Result<crate::history::History> {
    if !dir.is_dir() {
        bail!("--model {}: no such directory", dir.display());
    }
    let path = crate::run_log::history_path(dir);
    if !path.is_file() {
        bail!(
            "--model {}: no history {} in that directory (`spatial-gpu train` records one in every run)",
            dir.display(),
            path.display()
        );
    }
    crate::history::History::load(&path)
        .with_context(|| format!("--model {}: cannot load the history", dir.display()))
}
