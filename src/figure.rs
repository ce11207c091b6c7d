//! (placeholder: being written for issue 4)

use anyhow::{bail, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct FigureArgs {}

pub fn cmd_figure(_args: &FigureArgs) -> Result<i32> {
    bail!("`spatial-gpu figure` is not implemented yet")
}
