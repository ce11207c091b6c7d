//! Which tasks a run has and where their data is: the built-in names, `--task NAME=DIR`
//! definitions, and the checks of both (an unknown name, a name given twice, a malformed `--task`).

use super::{DataError, BUILTIN_TASKS};
use crate::config::DEFAULT_TASKS;
use std::path::PathBuf;

/// Where a task's data is: a built-in task's folder under the data directory, or a `--task
/// NAME=DIR` directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSource {
    pub name: String,
    /// The directory given with `--task NAME=DIR`; `None` for a built-in task.
    pub dir: Option<PathBuf>,
}

/// Parses `--task NAME=DIR`. A name is letters, digits, `-`, `_` and `.`, not starting with `.`,
/// since it names a head, a metrics key and a folder.
pub fn parse_task_spec(spec: &str) -> Result<(String, PathBuf), DataError> {
    let bad = |problem: &str| DataError::BadTaskSpec {
        spec: spec.to_string(),
        problem: problem.to_string(),
    };
    let (name, dir) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=DIR (a task name, '=', a directory of IDX files)"))?;
    check_task_name(name).map_err(|p| bad(&p))?;
    if dir.is_empty() {
        return Err(bad("the directory is empty"));
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

/// Why `name` cannot name a task, if it cannot.
pub fn check_task_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the task name is empty".into());
    }
    if name.starts_with('.') || name.len() > 64 {
        return Err(format!(
            "{name:?} is not a task name (at most 64 characters, not starting with '.')"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "{name:?} is not a task name: {c:?} is not a letter, digit, '-', '_' or '.'"
        ));
    }
    Ok(())
}

/// The sources of the tasks `names` (in that order): each a task defined by `custom` (`--task
/// NAME=DIR`) or a built-in one. Errors: an unknown name (listing the known ones), a name given
/// twice in `names` or in `custom`.
pub fn resolve_tasks(names: &[String], custom: &[(String, PathBuf)]) -> Result<Vec<TaskSource>, DataError> {
    for (i, (name, _)) in custom.iter().enumerate() {
        if custom[..i].iter().any(|(n, _)| n == name) {
            return Err(DataError::DuplicateTask {
                name: name.clone(),
                what: "--task".into(),
            });
        }
    }
    let mut out: Vec<TaskSource> = Vec::with_capacity(names.len());
    for name in names {
        if out.iter().any(|t| &t.name == name) {
            return Err(DataError::DuplicateTask {
                name: name.clone(),
                what: "--tasks".into(),
            });
        }
        let dir = custom.iter().find(|(n, _)| n == name).map(|(_, d)| d.clone());
        if dir.is_none() && !BUILTIN_TASKS.contains(&name.as_str()) {
            let mut known: Vec<String> = BUILTIN_TASKS.iter().map(|s| s.to_string()).collect();
            known.extend(custom.iter().map(|(n, _)| n.clone()));
            return Err(DataError::UnknownTask {
                name: name.clone(),
                known,
            });
        }
        out.push(TaskSource {
            name: name.clone(),
            dir,
        });
    }
    Ok(out)
}

/// The default tasks, MNIST and Fashion-MNIST, as built-in sources.
pub fn default_sources() -> Vec<TaskSource> {
    DEFAULT_TASKS
        .iter()
        .map(|name| TaskSource {
            name: name.to_string(),
            dir: None,
        })
        .collect()
}
