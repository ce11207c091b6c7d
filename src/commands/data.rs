//! `spatial-gpu data`: manage the datasets.

use super::{DataDirArg, TasksArg};
use crate::data::{self as datasets, fetch, resolve_data_dir, resolve_tasks};
use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download the built-in tasks' files into the data directory, verifying every file's SHA-256
    /// (MNIST and Fashion-MNIST unless --tasks says otherwise; kmnist too; animal-mnist and
    /// emnist-balanced cannot be downloaded: the command says how to install them)
    Fetch {
        #[command(flatten)]
        data: DataDirArg,
        #[command(flatten)]
        tasks: TasksArg,
    },
}

pub fn cmd_data(command: &DataCommand) -> Result<i32> {
    match command {
        DataCommand::Fetch { data, tasks } => {
            let dir = resolve_data_dir(data.data_dir.as_deref());
            let names = data.task_names(tasks.tasks.as_deref())?;
            let sources = resolve_tasks(&names, &data.custom_tasks()?)?;
            let mut specs = Vec::new();
            let mut by_hand = Vec::new();
            // EMNIST-balanced comes out of one archive (`data::emnist`), after the others.
            let mut emnist = false;
            for source in &sources {
                if source.dir.is_some() {
                    bail!(
                        "--tasks {}: {} is a --task directory, not a built-in task: there is nothing to download",
                        names.join(","),
                        source.name
                    );
                }
                if source.name == datasets::EMNIST_BALANCED {
                    emnist = true;
                    continue;
                }
                let files = fetch::files_of(&source.name);
                if files.is_empty() && !datasets::builtin_present(&dir, &source.name) {
                    by_hand.extend(datasets::no_mirror_note(&source.name));
                }
                specs.extend_from_slice(files);
            }
            let mut report = datasets::fetch_files(&dir, &specs, &fetch::MIRRORS, true)?;
            if emnist {
                let got = datasets::emnist::fetch_emnist_balanced(&dir, &datasets::emnist::EMNIST_ZIP, true)?;
                report.downloaded.extend(got.downloaded);
                report.present.extend(got.present);
            }
            println!(
                "data in {}: {} file(s) downloaded, {} already present and verified",
                dir.display(),
                report.downloaded.len(),
                report.present.len()
            );
            if by_hand.is_empty() {
                return Ok(0);
            }
            for note in &by_hand {
                eprintln!("{note}");
            }
            Ok(1)
        }
    }
}
