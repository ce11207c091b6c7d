//! `spatial-gpu reproduce`: the paper's Table 1 ({concat, mixed, sequential} x {regular, spatial} x
//! seeds, each run trained, split and summarised), written to `results.json` and `table.md`.

use super::grid::{finish, finish_collect, prepare_grid_dir, with_scope_line, GridArgs, INTERRUPT_MESSAGE};
use super::interrupt_flag;
use crate::checkpoint;
use crate::config::{Init, TransportNorm, WeightNorm};
use crate::data::Datasets;
use crate::grid::runner::{collect_grid, preflight, run_grid};
use crate::grid::tables::table_markdown;
use crate::grid::{RunRecord, RunSpec, Setting};
use crate::split::SplitOptions;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct ReproduceArgs {
    #[command(flatten)]
    pub grid: GridArgs,
    /// Output directory: one sub-directory per run, results.json and table.md
    #[arg(long, value_name = "DIR", default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// Weight initialisation of every run [default: xavier]
    #[arg(long, value_parser = super::choice::<Init>())]
    pub init: Option<Init>,
    /// Normalisation of the spatial runs' transport cost [default: paper]
    #[arg(long, value_parser = super::choice::<TransportNorm>())]
    pub transport_norm: Option<TransportNorm>,
    /// Weight term of the spatial runs' transport cost [default: l1]
    #[arg(long, value_parser = super::choice::<WeightNorm>())]
    pub weight_norm: Option<WeightNorm>,
    /// Weight of the spatial runs' transport cost [default: 0.01]
    #[arg(long)]
    pub alpha: Option<f32>,
    /// Weight of the spatial runs' density cost [default: 3]
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

pub fn cmd_reproduce(given: &ReproduceArgs) -> Result<i32> {
    let (args, applied) = super::config_file::apply(given)?;
    reproduce(&args).map_err(|e| applied.unwrap_or_default().explain_any(e))
}

fn reproduce(args: &ReproduceArgs) -> Result<i32> {
    args.grid.check()?;
    let figure_seed = args.grid.figure_seed(&args.grid.seeds(&REPRODUCE_SEEDS)?);
    args.grid.modes()?;
    prepare_grid_dir(&args.out)?;
    let data = args.grid.load_data()?;
    let all_specs = reproduce_specs(args, &data)?;
    let make_backend = args.grid.backend_factory();
    let split_options = SplitOptions {
        permutations: args.grid.permutations,
        ..SplitOptions::default()
    };
    if !args.grid.collect.is_empty() {
        return collect(args, &all_specs, &data, &make_backend);
    }
    let places = args.grid.shard_of(&all_specs)?;
    let specs: Vec<RunSpec> = places.iter().map(|&k| all_specs[k].clone()).collect();
    let scope = args
        .grid
        .shard
        .map(|shard| shard.describe(specs.len(), all_specs.len()));
    println!(
        "reproducing Table 1: {} runs ({} epoch{} each) in {}, {} at a time{}",
        specs.len(),
        specs[0].train.epochs,
        if specs[0].train.epochs == 1 { "" } else { "s" },
        args.out.display(),
        args.grid.jobs,
        scope.as_ref().map(|s| format!("; {s}")).unwrap_or_default()
    );
    preflight(&specs, &args.out, split_options)?;
    let stop = interrupt_flag(INTERRUPT_MESSAGE);
    let population = args.grid.population_factory();
    let ctx = args.grid.context(
        args.out.clone(),
        &data,
        &make_backend,
        stop,
        figure_seed,
        population.as_deref(),
    );
    let markdown = |finished: &[RunRecord]| {
        let md = table_markdown(finished, &specs);
        match &scope {
            Some(line) => with_scope_line(md, line),
            None => md,
        }
    };
    let write = |records: &[Option<RunRecord>]| -> Result<()> {
        let finished: Vec<RunRecord> = records.iter().flatten().cloned().collect();
        write_outputs(
            &args.out,
            records,
            "results.json",
            "table.md",
            markdown(&finished),
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
    let table = markdown(&finished);
    println!("\n{}\n", table.split("\n## ").next().unwrap_or("").trim_end());
    println!(
        "wrote {} and {}",
        args.out.join("results.json").display(),
        args.out.join("table.md").display()
    );
    finish(&outcome, &args.out, "reproduce")
}

/// `reproduce --collect DIR...`: the whole grid's tables from the finished runs of the directories.
fn collect(
    args: &ReproduceArgs,
    specs: &[RunSpec],
    data: &Datasets,
    make_backend: &crate::grid::runner::BackendFactory,
) -> Result<i32> {
    println!(
        "collecting Table 1: {} runs from {}",
        specs.len(),
        args.grid.collect_dirs()
    );
    let stop = interrupt_flag(INTERRUPT_MESSAGE);
    let ctx = args
        .grid
        .context(args.out.clone(), data, make_backend, stop, None, None);
    let collected = collect_grid(specs, &args.grid.collect, &ctx)?;
    let finished: Vec<RunRecord> = collected.records.iter().flatten().cloned().collect();
    let line = format!(
        "collected from {}: {} of {} runs",
        args.grid.collect_dirs(),
        finished.len(),
        specs.len()
    );
    let md = with_scope_line(table_markdown(&finished, specs), &line);
    write_outputs(&args.out, &collected.records, "results.json", "table.md", md)?;
    println!(
        "wrote {} and {}",
        args.out.join("results.json").display(),
        args.out.join("table.md").display()
    );
    finish_collect(&collected, specs.len(), &args.out)
}
