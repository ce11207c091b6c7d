//! `spatial-gpu animate`: the top view of a run's history as a GIF (and an MP4 where ffmpeg exists).

use super::history_of;
use crate::viz::animate::{find_ffmpeg, write_gif, write_mp4, AnimateOptions};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct AnimateArgs {
    /// Run directory holding history.safetensors (written by `train`)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The GIF to write [default: DIR/training.gif]; an MP4 of the same name is written beside it when ffmpeg is found
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Frames per second (1..=60)
    #[arg(long, default_value_t = 4)]
    pub fps: u32,
    /// Write no MP4 even where ffmpeg exists
    #[arg(long)]
    pub no_mp4: bool,
}

pub fn cmd_animate(args: &AnimateArgs) -> Result<i32> {
    if !(1..=60).contains(&args.fps) {
        bail!("--fps {}: must be within 1..=60", args.fps);
    }
    let history = history_of(&args.model)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.model.join("training.gif"));
    let name = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let options = AnimateOptions {
        fps: args.fps,
        title: format!("top view: {name}"),
        ..AnimateOptions::default()
    };
    write_gif(&history, &out, &options)
        .with_context(|| format!("--out {}: cannot write the GIF", out.display()))?;
    println!("wrote {}", out.display());
    if !args.no_mp4 && find_ffmpeg().is_some() {
        let mp4 = out.with_extension("mp4");
        write_mp4(&history, &mp4, &options).with_context(|| format!("cannot write {}", mp4.display()))?;
        println!("wrote {}", mp4.display());
    }
    Ok(0)
}
