//! `spatial-gpu view`: one self-contained HTML file to explore a run's history in a browser.

use super::history_of;
use crate::viz::viewer::{write_html, NeuronInfo, ViewerOptions};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct ViewArgs {
    /// Run directory holding history.safetensors (written by `train`)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The HTML file to write [default: DIR/viewer.html]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn cmd_view(args: &ViewArgs) -> Result<i32> {
    let history = history_of(&args.model)?;
    let out = args.out.clone().unwrap_or_else(|| args.model.join("viewer.html"));
    let name = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = ViewerOptions {
        title: format!("spatial-gpu history: {name}"),
        ..ViewerOptions::default()
    };
    // Per-neuron accuracy drops are not measured by `split` (it ablates whole subnetworks), so the
    // viewer shows none; the library takes them in `NeuronInfo` when a measurement provides them.
    write_html(&history, &NeuronInfo::default(), &out, &options)
        .with_context(|| format!("--out {}: cannot write the viewer", out.display()))?;
    println!("wrote {}", out.display());
    Ok(0)
}
