//! `spatial-gpu reproduce`: the paper's Table 1 ({concat, mixed, sequential} x {regular, spatial} x
//! seeds, each run trained, split and summarised), written to `results.json` and `table.md`.

use super::grid::{finish, prepare_grid_dir, GridArgs, INTERRUPT_MESSAGE};
use super::interrupt_flag;
use crate::checkpoint;
use crate::config::{Init, TransportNorm, WeightNorm};
use crate::data::Datasets;
use crate::grid::runner::{preflight, run_grid};
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
    let make_backend = args.grid.backend_factory();
    let stop = interrupt_flag(INTERRUPT_MESSAGE);
    let ctx = args
        .grid
        .context(args.out.clone(), &data, &make_backend, stop, figure_seed);
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
