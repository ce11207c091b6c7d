//! `spatial-gpu figure`: Figures 1 and 2 of the paper for a trained model.

use super::load_run;
use crate::figure::Filters;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct FigureArgs {
    /// Run directory holding the trained model (model.safetensors)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Where to write figure1.{png,svg} and figure2.{png,svg} [default: the --model directory]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Draw a neuron only if its summed |input weight| exceeds this (the paper: 0.1)
    #[arg(long, value_name = "X", default_value_t = 0.1)]
    pub min_input: f64,
    /// Draw a connection only if its |w| exceeds this (the paper: 0.01)
    #[arg(long, value_name = "X", default_value_t = 0.01)]
    pub min_weight: f64,
}

pub fn cmd_figure(args: &FigureArgs) -> Result<i32> {
    for (name, v) in [("min-input", args.min_input), ("min-weight", args.min_weight)] {
        if !v.is_finite() || v < 0.0 {
            bail!("--{name} {v}: must be a finite number >= 0");
        }
    }
    let ck = load_run(&args.model, "model")?;
    let out = args.out.clone().unwrap_or_else(|| args.model.clone());
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let title = format!(
        "{} {}, seed {}, {} epochs",
        ck.train.mode,
        if ck.model.is_spatial() {
            "spatial"
        } else {
            "regular"
        },
        ck.train.seed,
        ck.progress.epoch
    );
    let filters = Filters {
        min_input: args.min_input,
        min_weight: args.min_weight,
    };
    // The caption (split drop, segregation p-values) comes from the run's split.json, if any.
    let caption = crate::figure::Caption::read_run(&args.model)?;
    let written = crate::figure::write_figures_with_caption(
        &ck.model,
        &ck.state.params,
        &title,
        caption.as_ref(),
        &out,
        filters,
    )
    .with_context(|| format!("--out {}", out.display()))?;
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(0)
}
