//! What the tasks decide about a model: each task's head (name, classes) and image size.

use super::*;

/// One task's head: the task's name (`mnist`, `fashion-mnist`, or a `--task NAME=DIR` name) and
/// its number of classes, which is the head's number of output neurons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHead {
    pub name: String,
    pub classes: usize,
}

impl TaskHead {
    pub fn new(name: &str, classes: usize) -> TaskHead {
        TaskHead {
            name: name.to_string(),
            classes,
        }
    }
}

/// The tasks of every run before tasks could be chosen, and of `--tasks`' default.
pub const DEFAULT_TASKS: [&str; 2] = ["mnist", "fashion-mnist"];

/// How a task is called in tables, legends and figure captions: the published spelling of the
/// built-in sets (`MNIST`, `Fashion-MNIST`, `Animal-MNIST`, `KMNIST`, `EMNIST-balanced`), else the
/// name itself.
pub fn display_name(name: &str) -> String {
    // The names of configurations without task names: `task0` is shown as `task 0`.
    if let Some(n) = name
        .strip_prefix("task")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("task {n}");
    }
    match name {
        "mnist" => "MNIST".into(),
        "fashion-mnist" => "Fashion-MNIST".into(),
        "animal-mnist" => "Animal-MNIST".into(),
        "kmnist" => "KMNIST".into(),
        "emnist-balanced" => "EMNIST-balanced".into(),
        other => other.into(),
    }
}

/// `names` if there are `m` of them; else the names files written before tasks could be chosen
/// imply: `mnist` and `fashion-mnist` for two tasks, none otherwise.
pub fn task_names_or_legacy(names: &[String], m: usize) -> Vec<String> {
    if names.len() == m {
        return names.to_vec();
    }
    if m == DEFAULT_TASKS.len() {
        return DEFAULT_TASKS.iter().map(|s| s.to_string()).collect();
    }
    Vec::new()
}

/// What the data decides about a model: each task's head and image size, in task order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataShape {
    pub tasks: Vec<TaskShape>,
}

/// One task as the model sees it: its head and the size of its images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskShape {
    pub head: TaskHead,
    pub rows: usize,
    pub cols: usize,
}

impl DataShape {
    /// MNIST and Fashion-MNIST: 28x28 images, 10 classes each.
    pub fn default_pair() -> DataShape {
        DataShape {
            tasks: DEFAULT_TASKS
                .iter()
                .map(|name| TaskShape {
                    head: TaskHead::new(name, 10),
                    rows: 28,
                    cols: 28,
                })
                .collect(),
        }
    }

    pub fn pixels(&self) -> Vec<usize> {
        self.tasks.iter().map(|t| t.rows * t.cols).collect()
    }

    /// Width of the network's input in `mode`.
    pub fn input_dim(&self, mode: InputMode) -> usize {
        mode.input_dim(&self.pixels())
    }

    /// Mixed and sequential modes feed one image size to the network: an error naming the first
    /// two tasks whose sizes differ, and both sizes.
    pub fn check_mode(&self, mode: InputMode) -> Result<(), ConfigError> {
        if !mode.needs_one_size() {
            return Ok(());
        }
        let Some(first) = self.tasks.first() else {
            return Ok(());
        };
        match self.tasks.iter().find(|t| (t.rows, t.cols) != (first.rows, first.cols)) {
            None => Ok(()),
            Some(t) => Err(ConfigError::new(
                "mode",
                format!(
                    "{mode} mode feeds one image size to the network, but task {} has {}x{} images and task {} has {}x{} \
                     (use --mode concat, which takes images of any sizes)",
                    first.head.name, first.rows, first.cols, t.head.name, t.rows, t.cols
                ),
            )),
        }
    }
}
