//! The options `reproduce` and `sweep` share, and what both do before and after running their grid.

use super::{check_writable, make_backend, BackendChoice, DataDirArg, TasksArg};
use crate::backend::Backend;
use crate::config::{Activation, InputMode, ModelConfig, Overrides, TrainConfig};
use crate::data::Datasets;
use crate::grid::runner::{BackendFactory, GridContext, GridOutcome};
use crate::grid::{run_spec, RunSpec, Setting, ALL_MODES};
use crate::model::TrainState;
use crate::split::{self, SplitOptions};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The message of the first Ctrl-C during a grid.
pub(super) const INTERRUPT_MESSAGE: &str = "every run saves a checkpoint at its next step boundary";

/// Options shared by `reproduce` and `sweep`.
#[derive(clap::Args, Debug, Clone)]
pub struct GridArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(flatten)]
    pub tasks: TasksArg,
    /// Seeds of the runs, comma-separated [default: 1,2,3 for reproduce; 1,2,3,4,5 for sweep]
    #[arg(long, value_delimiter = ',', value_name = "S,S,..")]
    pub seeds: Option<Vec<u64>>,
    /// Epochs per run [default: 50 for reproduce; 10 for sweep]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Input modes, comma-separated [default: concat,mixed,sequential]
    #[arg(long, value_parser = super::choice::<InputMode>(), value_delimiter = ',', value_name = "MODE,..")]
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
    /// Activation of the hidden layers of every run [default: sigmoid]
    #[arg(long, value_parser = super::choice::<Activation>())]
    pub activation: Option<Activation>,
    /// Layers with the spatial costs, and split, in every run: strictly increasing, ending at the
    /// output layer [default: 3,4,5; with --hidden, the third hidden layer on]
    #[arg(long, value_delimiter = ',', value_name = "L,L,..")]
    pub spatial_layers: Option<Vec<usize>>,
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
    /// Train nothing: tabulate the runs of --out that finished (splitting them, or adding the
    /// modularity measures to an older split.json, where needed) and leave the others
    #[arg(long)]
    pub tabulate_only: bool,
    /// Draw no figures (by default Figures 1 and 2 of the first seed's run of each cell are drawn
    /// into that run's directory)
    #[arg(long)]
    pub no_figures: bool,
    /// Take options from FILE: TOML whose keys are these long option names (seeds = [1, 2]);
    /// options given here override the file's
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The command line, program first (set by `cli::parse`; empty: this process's). Recorded in
    /// each run's provenance; `--config` learns from it which options were given explicitly.
    #[arg(skip)]
    pub argv: Vec<std::ffi::OsString>,
}

impl GridArgs {
    /// The seed whose runs get their figures drawn: the first one, unless `--no-figures`.
    pub(super) fn figure_seed(&self, seeds: &[u64]) -> Option<u64> {
        if self.no_figures {
            None
        } else {
            seeds.first().copied()
        }
    }

    /// The grid's tasks (`--tasks`, `--task`), loaded.
    pub(super) fn load_data(&self) -> Result<Datasets> {
        let names = self.data.task_names(self.tasks.tasks.as_deref())?;
        self.data.load(&names)
    }

    pub(super) fn seeds(&self, default: &[u64]) -> Result<Vec<u64>> {
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

    pub(super) fn modes(&self) -> Result<Vec<InputMode>> {
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

    pub(super) fn check(&self) -> Result<()> {
        if self.jobs == 0 {
            bail!("--jobs 0: at least one run must train at a time");
        }
        Ok(())
    }

    /// The options every run of the grid shares.
    pub(super) fn base_overrides(&self) -> Overrides {
        Overrides {
            hidden: self.hidden.clone(),
            activation: self.activation,
            spatial_layers: self.spatial_layers.clone(),
            batch_size: self.batch_size,
            lr: self.lr,
            ..Overrides::default()
        }
    }

    /// The run of `setting` with `seed` and `epochs` (see [`run_spec`]).
    pub(super) fn spec(
        &self,
        name: String,
        s: Setting,
        seed: u64,
        epochs: usize,
        data: &Datasets,
    ) -> Result<RunSpec> {
        run_spec(name, &self.base_overrides(), s, seed, epochs, data)
    }

    /// Builds each run's backend as `--backend` and `--adapter` ask.
    pub(super) fn backend_factory(
        &self,
    ) -> impl Fn(ModelConfig, TrainConfig, TrainState) -> Result<Box<dyn Backend>> + Sync {
        let (choice, adapter) = (self.backend, self.adapter.clone());
        move |model, train, state| make_backend(choice, adapter.as_deref(), model, train, state)
    }

    pub(super) fn context<'a>(
        &self,
        out: PathBuf,
        data: &'a Datasets,
        make_backend: &'a BackendFactory,
        stop: Arc<AtomicBool>,
        figure_seed: Option<u64>,
    ) -> GridContext<'a> {
        GridContext {
            out,
            data,
            make_backend,
            jobs: self.jobs,
            split: SplitOptions {
                permutations: self.permutations,
                ..SplitOptions::default()
            },
            checkpoint_every: self.checkpoint_every,
            stop,
            verbose: self.jobs == 1,
            tabulate_only: self.tabulate_only,
            figure_seed,
            invocation: self.invocation(),
        }
    }
}

impl GridArgs {
    /// What is running, for each run's provenance.
    fn invocation(&self) -> crate::provenance::Invocation {
        let data_dir = crate::data::resolve_data_dir(self.data.data_dir.as_deref());
        let config = self.config.as_deref();
        if self.argv.is_empty() {
            return crate::provenance::Invocation::from_env(Some(&data_dir), config);
        }
        let argv = self
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        crate::provenance::Invocation::new(argv, Some(&data_dir), config)
    }
}

pub(super) fn prepare_grid_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    check_writable(out, "--out")
}

/// Reports failures and interruption after the outputs are written; the exit code.
pub(super) fn finish(outcome: &GridOutcome, out: &Path, command: &str) -> Result<i32> {
    if outcome.interrupted {
        eprintln!(
            "stopped; finished runs are in {}. Run the same `spatial-gpu {command}` command again to resume.",
            out.display()
        );
        return Ok(130);
    }
    if !outcome.untrained.is_empty() {
        eprintln!(
            "--tabulate-only: {} runs not finished, left out of the tables: {}",
            outcome.untrained.len(),
            outcome.untrained.join(", ")
        );
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
