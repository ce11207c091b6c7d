//! `spatial-gpu sweep`: trains a grid of settings (transport norm x weight norm x init x alpha x beta,
//! each over seeds) and tabulates them in `sweep.json` and `sweep.md`.

use super::grid::{finish, finish_collect, prepare_grid_dir, with_scope_line, GridArgs, INTERRUPT_MESSAGE};
use super::interrupt_flag;
use crate::checkpoint;
use crate::config::{Init, TransportNorm, WeightNorm};
use crate::grid::runner::{collect_grid, preflight, run_grid};
use crate::grid::sweep::{sweep_cells, sweep_markdown, sweep_settings, SweepAxes, SweepResults};
use crate::grid::{RunRecord, RunSpec};
use crate::split::SplitOptions;
use anyhow::{Context, Result};
use std::path::PathBuf;

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
        value_parser = super::choice::<Init>(),
        value_delimiter = ',',
        value_name = "INIT,..",
        default_value = "torch,xavier"
    )]
    pub inits: Vec<Init>,
    /// Transport normalisations to try
    #[arg(
        long,
        value_parser = super::choice::<TransportNorm>(),
        value_delimiter = ',',
        value_name = "NORM,..",
        default_value = "paper,mean"
    )]
    pub transport_norms: Vec<TransportNorm>,
    /// Transport weight norms to try
    #[arg(
        long,
        value_parser = super::choice::<WeightNorm>(),
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

impl SweepArgs {
    /// The values each axis of the sweep takes.
    fn axes(&self) -> Result<SweepAxes> {
        Ok(SweepAxes {
            modes: self.grid.modes()?,
            inits: self.inits.clone(),
            transport_norms: self.transport_norms.clone(),
            weight_norms: self.weight_norms.clone(),
            paper_alphas: self.paper_alphas.clone(),
            mean_alphas: self.mean_alphas.clone(),
            betas: self.betas.clone(),
            regular: !self.no_regular,
        })
    }
}

pub const SWEEP_SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
pub const SWEEP_EPOCHS: usize = 10;

pub fn cmd_sweep(given: &SweepArgs) -> Result<i32> {
    let (args, applied) = super::config_file::apply(given)?;
    sweep(&args).map_err(|e| applied.unwrap_or_default().explain_any(e))
}

fn sweep(args: &SweepArgs) -> Result<i32> {
    args.grid.check()?;
    let seeds = args.grid.seeds(&SWEEP_SEEDS)?;
    let epochs = args.grid.epochs.unwrap_or(SWEEP_EPOCHS);
    let settings = sweep_settings(&args.axes()?)?;
    prepare_grid_dir(&args.out)?;
    let data = args.grid.load_data()?;
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
    let total: usize = cells.iter().map(|(_, c)| c.len()).sum();
    let mut scope = None;
    if !args.grid.collect.is_empty() {
        scope = Some(format!("collected from {}", args.grid.collect_dirs()));
    } else if let Some(shard) = args.grid.shard {
        // Only the shard's runs, and only the cells that have some.
        let all: Vec<RunSpec> = cells.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
        let places = args.grid.shard_of(&all)?;
        // `k`: the grid place of the cell's first run.
        let mut k = 0;
        for (_, c) in &mut cells {
            let len = c.len();
            let mine: Vec<RunSpec> = c
                .drain(..)
                .enumerate()
                .filter(|(j, _)| places.binary_search(&(k + j)).is_ok())
                .map(|(_, s)| s)
                .collect();
            k += len;
            *c = mine;
        }
        cells.retain(|(_, c)| !c.is_empty());
        let n: usize = cells.iter().map(|(_, c)| c.len()).sum();
        scope = Some(shard.describe(n, total));
    }
    let mut offsets = Vec::new();
    let mut specs = Vec::new();
    for (_, c) in &cells {
        offsets.push(specs.len());
        specs.extend(c.iter().cloned());
    }
    println!(
        "sweep: {} cells x {} seeds = {} runs ({epochs} epoch{} each) in {}, {} at a time{}",
        cells.len(),
        seeds.len(),
        specs.len(),
        if epochs == 1 { "" } else { "s" },
        args.out.display(),
        args.grid.jobs,
        scope.as_ref().map(|s| format!("; {s}")).unwrap_or_default()
    );
    let split_options = SplitOptions {
        permutations: args.grid.permutations,
        ..SplitOptions::default()
    };
    let make_backend = args.grid.backend_factory();
    let stop = interrupt_flag(INTERRUPT_MESSAGE);
    let figure_seed = args.grid.figure_seed(&seeds);
    let collecting = !args.grid.collect.is_empty();
    let population = if collecting {
        None
    } else {
        args.grid.population_factory()
    };
    let ctx = args.grid.context(
        args.out.clone(),
        &data,
        &make_backend,
        stop,
        if collecting { None } else { figure_seed },
        population.as_deref(),
    );
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
        let mut text = sweep_markdown(&cell_stats, epochs, &seeds);
        if let Some(line) = &scope {
            let found = records.iter().flatten().count();
            let line = if collecting {
                format!("{line}: {found} of {total} runs")
            } else {
                line.clone()
            };
            text = with_scope_line(text, &line);
        }
        checkpoint::write_atomic(&md, text.as_bytes())
            .with_context(|| format!("cannot write {}", md.display()))?;
        Ok(())
    };
    if collecting {
        let collected = collect_grid(&specs, &args.grid.collect, &ctx)?;
        write(&collected.records)?;
        println!(
            "wrote {} and {}",
            args.out.join("sweep.json").display(),
            args.out.join("sweep.md").display()
        );
        return finish_collect(&collected, specs.len(), &args.out);
    }
    preflight(&specs, &args.out, split_options)?;
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
