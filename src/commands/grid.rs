//! The options `reproduce` and `sweep` share, and what both do before and after running their grid.

use super::{check_writable, make_backend, BackendChoice, DataDirArg, TasksArg};
use crate::backend::Backend;
use crate::config::{Activation, InputMode, ModelConfig, Overrides, TrainConfig};
use crate::data::Datasets;
use crate::grid::runner::{BackendFactory, Collected, GridContext, GridOutcome, PopulationFactory};
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
    /// GPU: train each run alone, not the runs of one input width (concat; mixed and sequential)
    /// that differ only in seed, init, lr, alpha, beta, the norms or epochs as one population
    #[arg(long)]
    pub no_population: bool,
    /// GPU: training steps recorded and submitted at once (see `train --steps-per-submit`)
    #[arg(long, default_value_t = crate::gpu::DEFAULT_STEPS_PER_SUBMIT, value_parser = super::at_least_one)]
    pub steps_per_submit: usize,
    /// Runs trained at once
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Threads of the CPU backend in all, shared by the --jobs runs: each run gets
    /// max(1, N / jobs) (the results are the same bits with any count) [default: every logical CPU]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
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
    /// Train only shard I of N (1-based: 1/3, 2/3, 3/3): run k of the grid (counting from 1, in
    /// grid order) belongs to shard ((k - 1) mod N) + 1. The tables cover the shard's runs;
    /// `--collect` merges the shards' directories into the whole grid's tables
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Train nothing: read the finished runs of the grid from each DIR (each shard's --out, or one
    /// shared directory) and write the whole grid's tables into --out; runs found in no DIR are
    /// listed, and a run found twice with different results is an error
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub collect: Vec<PathBuf>,
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
    /// The `--collect` directories, comma-separated, for messages.
    pub(super) fn collect_dirs(&self) -> String {
        self.collect
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

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

    /// The CPU backend's threads of each run: `--threads` (every logical CPU by default) shared by
    /// the `--jobs` runs that train at once, at least one each.
    pub(super) fn threads_per_run(&self) -> usize {
        (self.threads.unwrap_or_else(super::all_cores) / self.jobs.max(1)).max(1)
    }

    pub(super) fn check(&self) -> Result<()> {
        if self.jobs == 0 {
            bail!("--jobs 0: at least one run must train at a time");
        }
        if self.threads == Some(0) {
            bail!("--threads 0: the CPU backend needs at least one thread");
        }
        if !self.collect.is_empty() {
            if let Some(shard) = self.shard {
                bail!("--shard {shard} with --collect: collecting trains nothing and reads the whole grid; give one or the other");
            }
            if self.tabulate_only {
                bail!(
                    "--tabulate-only with --collect: --collect already trains nothing; give one or the other"
                );
            }
            for dir in &self.collect {
                if !dir.is_dir() {
                    bail!("--collect {}: not a directory", dir.display());
                }
            }
        }
        Ok(())
    }

    /// The runs of `specs` this invocation trains, with their places in the grid: all of them, or
    /// those of `--shard`. An error if the shard would have none.
    pub(super) fn shard_of(&self, specs: &[RunSpec]) -> Result<Vec<usize>> {
        let Some(shard) = self.shard else {
            return Ok((0..specs.len()).collect());
        };
        if shard.count > specs.len() {
            bail!(
                "--shard {shard}: the grid has {} runs, fewer than {} shards (some would have no run); use N <= {}",
                specs.len(),
                shard.count,
                specs.len()
            );
        }
        Ok((0..specs.len()).filter(|&k| shard.owns(k)).collect())
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

    /// On the GPU (unless `--no-population`), builds the population of a group of runs that may
    /// share one (`gpu::hyper::population_key`), on one device opened once.
    pub(super) fn population_factory(&self) -> Option<Box<PopulationFactory>> {
        if self.no_population || !super::uses_gpu(self.backend, self.adapter.as_deref()) {
            return None;
        }
        let adapter = self.adapter.clone();
        let opts = crate::gpu::GpuOptions {
            steps_per_submit: self.steps_per_submit,
            ..Default::default()
        };
        let ctx: std::sync::OnceLock<std::result::Result<Arc<crate::gpu::GpuContext>, String>> =
            std::sync::OnceLock::new();
        Some(Box::new(move |models, trains, states, stop| {
            let ctx = ctx
                .get_or_init(|| super::open_gpu(adapter.as_deref()).map_err(|e| format!("{e:#}")))
                .clone()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::gpu::population::Population::new(ctx, models, trains, states, opts, Some(stop))
        }))
    }

    /// Builds each run's backend as `--backend` and `--adapter` ask.
    pub(super) fn backend_factory(
        &self,
    ) -> impl Fn(ModelConfig, TrainConfig, TrainState) -> Result<Box<dyn Backend>> + Sync {
        let (choice, adapter, threads, chunk) = (
            self.backend,
            self.adapter.clone(),
            self.threads_per_run(),
            self.steps_per_submit,
        );
        move |model, train, state| {
            make_backend(choice, adapter.as_deref(), threads, chunk, model, train, state)
        }
    }

    pub(super) fn context<'a>(
        &self,
        out: PathBuf,
        data: &'a Datasets,
        make_backend: &'a BackendFactory,
        stop: Arc<AtomicBool>,
        figure_seed: Option<u64>,
        population: Option<&'a PopulationFactory>,
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
            population,
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

/// `--shard I/N`: shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether the run at 0-based place `k` of the grid belongs to this shard: run k + 1 belongs to
    /// shard (k mod N) + 1, so every shard gets runs from every part of the grid (cheap and
    /// expensive settings alike) and shards 1..=N together hold every run exactly once.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count + 1 == self.index
    }

    /// The line that opens a shard's tables: "shard 2/3: 6 of 18 runs".
    pub fn describe(&self, runs: usize, of: usize) -> String {
        format!("shard {self}: {runs} of {of} runs (run k of the grid, counting from 1, belongs to shard ((k - 1) mod {}) + 1)", self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `I/N` (1-based `I`, `1 <= I <= N`).
pub fn parse_shard(text: &str) -> std::result::Result<Shard, String> {
    let Some((i, n)) = text.split_once('/') else {
        return Err(format!(
            "expected I/N, shard I of N counting from 1 (e.g. 2/3), not {text:?}"
        ));
    };
    let num = |v: &str, what: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{what} {v:?} is not a whole number (expected I/N, e.g. 2/3)"))
    };
    let (index, count) = (num(i, "I")?, num(n, "N")?);
    if count == 0 {
        return Err("N is 0: give at least one shard (I/N, e.g. 1/1)".into());
    }
    if index == 0 || index > count {
        return Err(format!(
            "shard {index} of {count} does not exist: I counts from 1 to N ({})",
            if count == 1 {
                "1/1".to_string()
            } else {
                format!("1/{count} to {count}/{count}")
            }
        ));
    }
    Ok(Shard { index, count })
}

/// `md` with `line` as its first paragraph, after the title line.
pub(super) fn with_scope_line(md: String, line: &str) -> String {
    match md.split_once("\n\n") {
        Some((title, rest)) => format!("{title}\n\n{line}\n\n{rest}"),
        None => format!("{line}\n\n{md}"),
    }
}

/// `--collect`: reports the runs found in no directory; the exit code.
pub(super) fn finish_collect(collected: &Collected, total: usize, out: &Path) -> Result<i32> {
    if collected.missing.is_empty() {
        println!("collected all {total} runs into {}", out.display());
        return Ok(0);
    }
    eprintln!(
        "--collect: {} of {total} runs are in no given directory (or not finished there), left out of the tables in {}:\n  {}",
        collected.missing.len(),
        out.display(),
        collected.missing.join("\n  ")
    );
    Ok(1)
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
