//! `spatial-gpu view`: one self-contained HTML file to explore a run's history in a browser.

use super::{history_of, load_run, DataDirArg};
use crate::analysis::ablation::{ablate, own_task_drops};
use crate::checkpoint;
use crate::data::batches::test_set;
use crate::viz::viewer::{write_html, NeuronInfo, ViewerOptions};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct ViewArgs {
    /// Run directory holding history.safetensors (written by `train`)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The HTML file to write [default: DIR/viewer.html]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also measure, for every neuron of the split layers, the drop in its task's test accuracy
    /// when it alone is switched off (on the final network, CPU, needs the run's data), shown on hover
    #[arg(long)]
    pub accuracy_drop: bool,
    #[command(flatten)]
    pub data: DataDirArg,
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
    let info = if args.accuracy_drop {
        neuron_info(&args.model, &args.data)?
    } else {
        NeuronInfo::default()
    };
    write_html(&history, &info, &out, &options)
        .with_context(|| format!("--out {}: cannot write the viewer", out.display()))?;
    println!("wrote {}", out.display());
    Ok(0)
}

/// The per-neuron accuracy drops of the run in `dir`, measured on its final checkpoint with the
/// test set of its own data (checked against the digests the checkpoint records).
fn neuron_info(dir: &Path, data: &DataDirArg) -> Result<NeuronInfo> {
    let ck = load_run(dir, "model")?;
    // The run's own tasks (built-in names, or `--task NAME=DIR` given again).
    let data = data.load(&ck.model.task_names())?;
    checkpoint::check_data(&ck, &data).map_err(|e| {
        anyhow!(
            "--data-dir: not the data the run in {} was trained on: {e}",
            dir.display()
        )
    })?;
    let test = test_set(ck.train.mode, &data);
    let assignment = crate::split::assign(&ck.model, &ck.state.params);
    let ablation = ablate(&ck.model, &ck.state.params, &test, &assignment.layers)?;
    println!(
        "measured the accuracy drop of {} neurons on {} test examples in {:.1} s",
        ablation.accuracy.iter().map(Vec::len).sum::<usize>(),
        ablation.examples,
        ablation.seconds
    );
    let accuracy_drop = own_task_drops(&ablation, &assignment)?
        .into_iter()
        .map(|(l, d)| (l, d.into_iter().map(|x| x as f32).collect()))
        .collect();
    Ok(NeuronInfo { accuracy_drop })
}
