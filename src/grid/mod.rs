//! Grids of independent training runs: `spatial-gpu reproduce` (the paper's Table 1: {concat, mixed, sequential} x {regular, spatial} x
//! seeds, each run trained, split and summarised) and `spatial-gpu sweep` (the settings grid that
//! chooses the defaults: transport normalisation x weight norm x initialisation x alpha x beta).
//!
//! Both run a list of independent runs, each in its own sub-directory of `--out` holding the
//! standard run files (`model.safetensors`, `metrics.jsonl`, `summary.json`) and the split report
//! (`split.json`, as `spatial-gpu split` writes it). A run is never redone: a finished run is read
//! back from its files, an interrupted one continues from its checkpoint exactly as
//! `spatial-gpu train --resume` would, a finished run whose split is missing is only split, and one
//! whose `split.json` predates the modularity measures only gets them (from its checkpoint).
//! `--tabulate-only` trains nothing and tabulates the finished runs. A directory holding a run with
//! other options is an error, never silently reused.
//!
//! [`runner`] trains and splits the runs (`--jobs N`: N at once), [`tables`] writes Table 1 and
//! [`sweep`] aggregates and tabulates the settings sweep; the commands themselves live in
//! `crate::commands::{reproduce, sweep}`.
//!
//! `--jobs N` runs N runs at once, each on its own thread, whose CPU backend has `--threads` /
//! `--jobs` threads of its own (`commands::grid`); the datasets are loaded once and shared. Each run
//! depends only on its own options and seed, the CPU backend's results do not depend on its thread
//! count, and the outputs are written in grid order, so the results do not depend on `--jobs` or
//! `--threads` (only the wall times do).

pub mod population;
pub mod runner;
pub mod sweep;
pub mod tables;

use crate::analysis::ModularityReport;
use crate::config::{Init, InputMode, ModelConfig, Overrides, TrainConfig, TransportNorm, WeightNorm};
use crate::data::Datasets;
use crate::split::{LayerStats, SplitReport};
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// Every input mode, in grid order.
pub const ALL_MODES: [InputMode; 3] = [InputMode::Concat, InputMode::Mixed, InputMode::Sequential];

/// One run of a grid: its directory name under `--out` and its full configuration.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub name: String,
    pub model: ModelConfig,
    pub train: TrainConfig,
}

/// One finished run as `results.json` and `sweep.json` list it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Directory of the run under `--out`.
    pub run: String,
    pub mode: InputMode,
    pub spatial: bool,
    pub seed: u64,
    pub epochs: usize,
    pub init: Init,
    pub transport_norm: TransportNorm,
    pub weight_norm: WeightNorm,
    pub alpha: f32,
    pub beta: f32,
    /// Mean over tasks of the full network's accuracy.
    pub full_accuracy: f64,
    /// Mean over tasks of each task's subnetwork's accuracy on its own task.
    pub split_accuracy: f64,
    /// `full_accuracy - split_accuracy`.
    pub drop: f64,
    pub task_accuracy: Vec<f64>,
    pub task_split_accuracy: Vec<f64>,
    pub task_drop: Vec<f64>,
    /// The tasks' names, in the order of the `task_*` lists (absent in records written before
    /// tasks could be chosen: MNIST and Fashion-MNIST).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The same numbers keyed by task name: full and split accuracy and the drop.
    #[serde(default)]
    pub by_task: std::collections::BTreeMap<String, TaskResult>,
    /// Every task's accuracy of the full network is above 0.5 (chance is 0.1).
    pub trained_all_heads: bool,
    /// Per split layer: neurons per task, cross-task |w| share, segregation score and p-value.
    pub split_layers: Vec<LayerStats>,
    /// Wall seconds of the training steps (from `metrics.jsonl`, evaluation excluded).
    pub train_seconds: f64,
    /// Wall seconds of the split and its evaluation.
    pub split_seconds: f64,
    pub backend: String,
    /// `Q`, participation and selectivity of the split layers, as `split.json` holds them.
    #[serde(default)]
    pub modularity: Option<ModularityReport>,
}

/// One task's numbers in a [`RunRecord`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Accuracy of the full network on the task.
    pub full: f64,
    /// Accuracy of the task's subnetwork on it.
    pub split: f64,
    /// `full - split`.
    pub drop: f64,
}

impl RunRecord {
    /// The tasks' names (those records written before tasks could be chosen imply, when absent).
    pub fn task_names(&self) -> Vec<String> {
        let n = self.task_accuracy.len();
        let names = crate::split::task_names_or_legacy(&self.tasks, n);
        if names.len() == n {
            names
        } else {
            (0..n).map(|t| format!("task{t}")).collect()
        }
    }

    fn new(spec: &RunSpec, report: &SplitReport, train_seconds: f64) -> RunRecord {
        RunRecord {
            run: spec.name.clone(),
            mode: spec.train.mode,
            spatial: spec.model.is_spatial(),
            seed: spec.train.seed,
            epochs: spec.train.epochs,
            init: spec.model.init,
            transport_norm: spec.model.transport_norm,
            weight_norm: spec.model.weight_norm,
            alpha: spec.model.alpha,
            beta: spec.model.beta,
            full_accuracy: report.full_accuracy,
            split_accuracy: report.split_accuracy,
            drop: report.drop,
            task_accuracy: report.task_accuracy.clone(),
            task_split_accuracy: report.task_split_accuracy.clone(),
            task_drop: report.task_drop.clone(),
            tasks: spec.model.task_names(),
            by_task: spec
                .model
                .task_names()
                .into_iter()
                .enumerate()
                .map(|(t, name)| {
                    let r = TaskResult {
                        full: report.task_accuracy[t],
                        split: report.task_split_accuracy[t],
                        drop: report.task_drop[t],
                    };
                    (name, r)
                })
                .collect(),
            trained_all_heads: report.task_accuracy.iter().all(|&a| a > 0.5),
            split_layers: report.layers.clone(),
            train_seconds,
            split_seconds: report.seconds,
            backend: report.backend.clone(),
            modularity: report.modularity.clone(),
        }
    }

    /// `Q` of the split's task partition.
    pub fn task_modularity(&self) -> Option<f64> {
        self.modularity.as_ref()?.task_modularity
    }

    /// `Q` of the partition Louvain found.
    pub fn detected_modularity(&self) -> Option<f64> {
        self.modularity.as_ref()?.detected_modularity
    }

    /// Number of communities Louvain found.
    pub fn communities(&self) -> Option<f64> {
        self.modularity.as_ref().map(|m| m.detected_communities as f64)
    }

    /// Normalised participation `P / (1 - 1/M)` averaged over the connected neurons of the hidden
    /// split layers (the output layer's neurons belong to their heads by construction), and the
    /// fraction of them above 0.5.
    pub fn participation(&self) -> Option<(f64, f64)> {
        let m = self.modularity.as_ref()?;
        let last = m.layers.last().copied();
        let (mut sum, mut above, mut n) = (0.0, 0.0, 0usize);
        for p in m.participation.iter().filter(|p| Some(p.layer) != last) {
            if let (Some(mean), Some(half)) = (p.mean_normalised, p.above_half) {
                sum += mean * p.connected as f64;
                above += half * p.connected as f64;
                n += p.connected;
            }
        }
        (n > 0).then(|| (sum / n as f64, above / n as f64))
    }

    /// Agreement of the split with ablation selectivity over the hidden split layers.
    pub fn selectivity_agreement(&self) -> Option<f64> {
        self.modularity.as_ref()?.selectivity.as_ref()?.agreement
    }

    /// Segregation score of split layer `l`, if defined.
    pub fn segregation(&self, l: usize) -> Option<f64> {
        self.split_layers
            .iter()
            .find(|s| s.layer == l)?
            .segregation
            .as_ref()
            .map(|s| s.score)
    }
}

/// One cell's settings, for building a [`RunSpec`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub mode: InputMode,
    pub regular: bool,
    pub init: Option<Init>,
    pub transport_norm: Option<TransportNorm>,
    pub weight_norm: Option<WeightNorm>,
    pub alpha: Option<f32>,
    pub beta: Option<f32>,
}

/// The run of `setting` with `seed` and `epochs`, on top of `base` (the options every run of the grid
/// shares): `train`'s own option handling, so the defaults are exactly those of `spatial-gpu train`;
/// the tasks' heads and the input width are the data's.
pub fn run_spec(
    name: String,
    base: &Overrides,
    s: Setting,
    seed: u64,
    epochs: usize,
    data: &Datasets,
) -> Result<RunSpec> {
    let overrides = Overrides {
        mode: Some(s.mode),
        init: s.init,
        transport_norm: s.transport_norm,
        weight_norm: s.weight_norm,
        alpha: if s.regular { None } else { s.alpha },
        beta: if s.regular { None } else { s.beta },
        regular: s.regular,
        epochs: Some(epochs),
        seed: Some(seed),
        ..base.clone()
    };
    let (model, train) = overrides.configs_for(&data.shape())?;
    Ok(RunSpec { name, model, train })
}
