//! (placeholder: being written for issue 4)

use anyhow::{bail, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct SplitArgs {}

pub fn cmd_split(_args: &SplitArgs) -> Result<i32> {
    bail!("`spatial-gpu split` is not implemented yet")
}
