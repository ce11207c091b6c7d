//! `spatial-gpu split`: split a trained model into per-task subnetworks and evaluate them.

use super::{load_run, make_backend, BackendChoice, DataDirArg};
use crate::checkpoint;
use crate::data::test_set;
use crate::split::{
    analyse, format_report, SplitMethod, SplitOptions, ACTIVATIONS_FILE_NAME, DEFAULT_PERMUTATIONS,
    DEFAULT_PERMUTATION_SEED, FILE_NAME,
};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct SplitArgs {
    /// Run directory holding the trained model (model.safetensors)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataDirArg,
    /// Compute backend of the evaluation
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// GPU adapter to use: a substring of its name (see `spatial-gpu info`) [env: SPATIAL_GPU_ADAPTER]
    #[arg(long)]
    pub adapter: Option<String>,
    /// How neurons are given to tasks
    #[arg(long, value_parser = super::choice::<SplitMethod>(), default_value = "weights")]
    pub method: SplitMethod,
    /// Where to write the report as JSON [default: DIR/split.json; DIR/split-activations.json with
    /// --method activations, so that the grid's split.json stays the weights']
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Label permutations of the segregation test
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PERMUTATIONS)]
    pub permutations: usize,
    /// Seed of the label permutations
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_PERMUTATION_SEED)]
    pub permutation_seed: u64,
}

pub fn cmd_split(args: &SplitArgs) -> Result<i32> {
    let ck = load_run(&args.model, "model")?;
    let json = args.json.clone().unwrap_or_else(|| {
        args.model.join(match args.method {
            SplitMethod::Weights => FILE_NAME,
            SplitMethod::Activations => ACTIVATIONS_FILE_NAME,
        })
    });
    if let Some(parent) = json.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!(
                "--json {}: the directory {} does not exist",
                json.display(),
                parent.display()
            );
        }
    }
    if ck.progress.epoch < ck.train.epochs || ck.progress.batch > 0 {
        eprintln!(
            "note: the run in {} is not finished ({} of {} epochs); splitting the parameters it has",
            args.model.display(),
            ck.progress.epoch,
            ck.train.epochs
        );
    }
    // The run's own tasks (a `--task NAME=DIR` says where one that is not built in is).
    let data = args.data.load(&ck.model.task_names())?;
    crate::checkpoint::check_tasks(&ck.model, &data)?;
    crate::checkpoint::check_data(&ck, &data)
        .map_err(|e| super::train::data_error(e, args.data.data_dir.as_deref()))?;
    let test = test_set(ck.train.mode, &data);
    let epochs = ck.progress.epoch;
    let mut backend = make_backend(
        args.backend,
        args.adapter.as_deref(),
        super::all_cores(),
        crate::gpu::DEFAULT_STEPS_PER_SUBMIT,
        ck.model,
        ck.train,
        ck.state,
    )?;
    let opts = SplitOptions {
        method: args.method,
        permutations: args.permutations,
        seed: args.permutation_seed,
    };
    let report = analyse(backend.as_mut(), &test, epochs, opts)?;
    print!("{}", format_report(&report));
    checkpoint::write_atomic(&json, serde_json::to_string_pretty(&report)?.as_bytes())
        .with_context(|| format!("--json {}: cannot write the report", json.display()))?;
    println!("\nreport written to {}", json.display());
    Ok(0)
}
