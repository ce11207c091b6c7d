//! Whether the data given is the data a run was trained on: its tasks (names, order) and the
//! SHA-256 of every file the checkpoint recorded.

use super::{Checkpoint, DataDigests};
use crate::config::ModelConfig;
use std::collections::HashMap;

/// Data other than the run's: a file whose digest is not the one the checkpoint recorded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{file}: not the data this run was trained on: its SHA-256 is {actual}, the run's {file} (recorded in the checkpoint) had {expected}{}. Give the run's data with --data-dir",
    same_as.as_deref().map_or(String::new(), |o| format!("; it is the run's {o}: are the two data sets swapped?"))
)]
pub struct DataMismatch {
    /// The file under the data directory, as `mnist/train-images-idx3-ubyte`.
    pub file: String,
    /// The digest the checkpoint recorded.
    pub expected: String,
    /// The digest of the data given (`none` if the data lacks the file).
    pub actual: String,
    /// The recorded file whose digest the given file has, if any (swapped sets).
    pub same_as: Option<String>,
}

/// The run's tasks and those of the data differ (in names or order): both lists.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the run was trained on the tasks {} but the data given has the tasks {}: give the run's tasks (with --task NAME=DIR for those that are not built in)",
    .run.join(","),
    .given.join(",")
)]
pub struct TaskMismatch {
    pub run: Vec<String>,
    pub given: Vec<String>,
}

/// Refuses `data` unless it has the model's tasks, in the model's order (task `t` feeds head `t`).
pub fn check_tasks(model: &ModelConfig, data: &crate::data::Datasets) -> Result<(), TaskMismatch> {
    let (run, given) = (model.task_names(), data.names());
    if run == given {
        Ok(())
    } else {
        Err(TaskMismatch { run, given })
    }
}

/// Refuses `data` unless it is the data `ck`'s run trained on: every file the checkpoint recorded
/// (metadata `data`) must have the recorded SHA-256. A checkpoint without the record (written
/// before it existed, or by another tool) accepts any data. Call it before resuming or evaluating.
pub fn check_data(ck: &Checkpoint, data: &crate::data::Datasets) -> Result<(), DataMismatch> {
    ck.data
        .as_deref()
        .map_or(Ok(()), |recorded| check_data_digests(recorded, data))
}

/// [`check_data`] against the digests a checkpoint recorded.
pub fn check_data_digests(recorded: &DataDigests, data: &crate::data::Datasets) -> Result<(), DataMismatch> {
    let given: HashMap<String, String> = data.digests().into_iter().collect();
    for (file, expected) in recorded {
        let actual = given.get(file).cloned().unwrap_or_else(|| "none".into());
        if &actual != expected {
            let same_as = recorded
                .iter()
                .find(|(other, hex)| other != file && *hex == actual)
                .map(|(other, _)| other.clone());
            return Err(DataMismatch {
                file: file.clone(),
                expected: expected.clone(),
                actual,
                same_as,
            });
        }
    }
    Ok(())
}
