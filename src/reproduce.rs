//! (placeholder: being written for issue 4)

use anyhow::{bail, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct ReproduceArgs {}

pub fn cmd_reproduce(_args: &ReproduceArgs) -> Result<i32> {
    bail!("`spatial-gpu reproduce` is not implemented yet")
}
