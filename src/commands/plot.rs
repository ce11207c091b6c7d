//! `spatial-gpu plot`: the training curves of a run (task loss, T and V per layer, accuracy per
//! task over epochs) as PNG and SVG, and `metrics.csv` beside `metrics.jsonl`.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// Run directory holding metrics.jsonl; curves.png, curves.svg and metrics.csv are written there
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
}

pub fn cmd_plot(args: &PlotArgs) -> Result<i32> {
    let dir = &args.model;
    if !dir.is_dir() {
        bail!("--model {}: no such directory", dir.display());
    }
    let paths = crate::curves::plot_run(dir).with_context(|| format!("--model {}", dir.display()))?;
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(0)
}
