//! `spatial-gpu data`: manage the datasets.

use super::DataDirArg;
use crate::data::{fetch, resolve_data_dir};
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download MNIST and Fashion-MNIST into the data directory, verifying every file's SHA-256.
    Fetch {
        #[command(flatten)]
        data: DataDirArg,
    },
}

pub fn cmd_data(command: &DataCommand) -> Result<i32> {
    match command {
        DataCommand::Fetch { data } => {
            let dir = resolve_data_dir(data.data_dir.as_deref());
            let report = fetch::fetch(&dir, &fetch::MIRRORS, true)?;
            println!(
                "data in {}: {} file(s) downloaded, {} already present and verified",
                dir.display(),
                report.downloaded.len(),
                report.present.len()
            );
            Ok(0)
        }
    }
}
