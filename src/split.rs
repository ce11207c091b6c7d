//! The greedy backward split of METHOD.md ("Splitting"), the per-task subnetworks it defines, and the
//! numbers that say how well a network splits.
//!
//! Terms used throughout:
//! - **Split layers**: the layers of `ModelConfig::spatial_layers` that form an unbroken run ending at
//!   the output layer `L` (for the paper's `L = {3, 4, 5}`: all three). The output layer is always
//!   split (its neurons belong to their heads); the layers before the first split layer stay shared.
//! - **Assignment**: output neuron `j` belongs to the task whose head holds it (heads may differ in
//!   size: `ModelConfig::head_offsets`). Going backward, neuron `i` of a
//!   split layer `l < L` goes to the task `t` that maximises `sum_{j in l+1, g(j) = t} |W_{l+1}[j, i]|`;
//!   a tie goes to the lower task. That is `--method weights`, the default; `--method activations`
//!   gives each hidden split neuron to the task whose class explains most of its activation on the
//!   test set instead (`analysis::drive`), the heads staying with their tasks.
//! - **Subnetwork of task `t`**: the neurons of the split layers assigned to another task are switched
//!   off ([`NeuronMask`] entry 0: their activation is 0, so they pass nothing on). It is evaluated on
//!   task `t` alone: the accuracy of head `t` on task `t`'s test examples.
//! - **Cross-task share** of split layer `l < L`: of the |w| mass of the connections from layer `l` to
//!   layer `l + 1` (`W_{l+1}`), the fraction whose two ends belong to different tasks. These are exactly
//!   the connections the split cuts; the greedy rule keeps each neuron's cut mass at most
//!   `(M - 1) / M` of its own. The output layer has no outgoing connections, so no share.
//! - **Segregation score** of split layer `l`: the mean distance between the positions of two neurons
//!   of the same task over the mean distance between two neurons of different tasks (unordered pairs of
//!   distinct neurons). Below 1: same-task neurons sit closer, the paper's "regions". Its p-value is
//!   that of a label-permutation test: `p = (1 + #{permutations with score <= observed}) / (1 + n)`,
//!   the task labels shuffled `n` times by a seeded generator.

use crate::analysis::{ablate, modularity_report, ModularityReport, DEFAULT_LOUVAIN_SEED};
pub use crate::assignment::{
    assign, cross_share, segregation, split_layers, task_mask, Assignment, Segregation, SplitMethod,
};
use crate::backend::Backend;
use crate::config::{Choice, InputMode, ModelConfig};
use crate::data::batches::TestSet;
use crate::model::Params;
use crate::train;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Default number of label permutations of the segregation test.
pub const DEFAULT_PERMUTATIONS: usize = 1000;
/// Default seed of the label permutations.
pub const DEFAULT_PERMUTATION_SEED: u64 = 0;
/// The report's file name inside a run directory.
pub const FILE_NAME: &str = "split.json";
/// The report of `split --method activations` inside a run directory.
pub const ACTIVATIONS_FILE_NAME: &str = "split-activations.json";

/// Per-task accuracies of the full network and of each task's subnetwork on its own task:
/// `(full[t], split[t])`.
pub fn evaluate_split(
    backend: &mut dyn Backend,
    test: &TestSet,
    assignment: &Assignment,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let model = backend.model_config().clone();
    if test.labels.len() != test.len * model.heads {
        bail!(
            "the test set has {} label columns but the model has {} heads",
            test.labels.len() / test.len.max(1),
            model.heads
        );
    }
    let full = train::evaluate(backend, test, None)?;
    let mut split = Vec::with_capacity(model.heads);
    for t in 0..model.heads {
        let keep = task_mask(&model, assignment, t);
        split.push(train::evaluate(backend, test, Some(&keep))?[t]);
    }
    Ok((full, split))
}

/// The numbers of one split layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    pub layer: usize,
    /// How many of the layer's neurons each task got.
    pub neurons_per_task: Vec<usize>,
    /// Cross-task share of the |w| mass into the next layer (module docs); `None` for the output.
    pub cross_share: Option<f64>,
    /// Spatial segregation by task; `None` when a task has the whole layer.
    pub segregation: Option<Segregation>,
}

/// Everything `spatial-gpu split` reports on one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    pub mode: InputMode,
    pub spatial: bool,
    pub seed: u64,
    /// Epochs the evaluated parameters were trained for.
    pub epochs: usize,
    pub tasks: usize,
    /// How the neurons were given to tasks (absent in reports written before there was a choice:
    /// those used the weights).
    #[serde(default)]
    pub method: SplitMethod,
    /// The tasks' names, in head order (`mnist`, `fashion-mnist`, ...); empty in reports written
    /// before tasks could be chosen (see [`task_names_or_legacy`]).
    #[serde(default)]
    pub task_names: Vec<String>,
    pub split_layers: Vec<usize>,
    /// Mean over tasks of `task_accuracy`.
    pub full_accuracy: f64,
    /// Mean over tasks of `task_split_accuracy`.
    pub split_accuracy: f64,
    /// `full_accuracy - split_accuracy`.
    pub drop: f64,
    /// Accuracy of the full network on each task.
    pub task_accuracy: Vec<f64>,
    /// Accuracy of each task's subnetwork on its own task.
    pub task_split_accuracy: Vec<f64>,
    /// `task_accuracy - task_split_accuracy`, per task.
    pub task_drop: Vec<f64>,
    pub layers: Vec<LayerStats>,
    /// Wall seconds the split and its evaluation took.
    pub seconds: f64,
    pub backend: String,
    /// The task of every neuron of every split layer.
    pub assignment: Assignment,
    /// Newman's `Q`, participation and ablation selectivity of the split layers (METHOD.md,
    /// "Modularity measures"); `None` in reports written before they were measured.
    #[serde(default)]
    pub modularity: Option<ModularityReport>,
}

/// How [`analyse`] tests segregation.
#[derive(Clone, Copy, Debug)]
pub struct SplitOptions {
    /// How neurons are given to tasks.
    pub method: SplitMethod,
    /// Label permutations of each layer's test.
    pub permutations: usize,
    /// Seed of the permutations; layer `l` uses `seed ^ l`, so each layer has its own stream.
    pub seed: u64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            method: SplitMethod::Weights,
            permutations: DEFAULT_PERMUTATIONS,
            seed: DEFAULT_PERMUTATION_SEED,
        }
    }
}

/// Splits the backend's current model, evaluates the subnetworks on `test`, and computes the
/// per-layer numbers. `epochs` is recorded as the epochs the model was trained for.
pub fn analyse(
    backend: &mut dyn Backend,
    test: &TestSet,
    epochs: usize,
    opts: SplitOptions,
) -> Result<SplitReport> {
    let t0 = Instant::now();
    let model = backend.model_config().clone();
    let train_cfg = backend.train_config().clone();
    if test.input_dim != model.sizes[0] {
        bail!(
            "the test set has {} inputs per example but the model's input layer has {}",
            test.input_dim,
            model.sizes[0]
        );
    }
    let params = backend.state()?.params;
    let assignment = match opts.method {
        SplitMethod::Weights => assign(&model, &params),
        SplitMethod::Activations => crate::analysis::drive::assign_by_activations(&model, &params, test)?,
    };
    let (full, split) = evaluate_split(backend, test, &assignment)?;
    let layers = assignment
        .layers
        .iter()
        .zip(&assignment.groups)
        .map(|(&l, g)| LayerStats {
            layer: l,
            neurons_per_task: assignment.counts(l).expect("a split layer"),
            cross_share: cross_share(&model, &params, &assignment, l),
            segregation: segregation(params.position(l), g, opts.permutations, opts.seed ^ l as u64),
        })
        .collect();
    let modularity = measure_modularity(&model, &params, &assignment, test)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (full_accuracy, split_accuracy) = (mean(&full), mean(&split));
    Ok(SplitReport {
        mode: train_cfg.mode,
        spatial: model.is_spatial(),
        seed: train_cfg.seed,
        epochs,
        tasks: assignment.tasks,
        method: opts.method,
        task_names: model.task_names(),
        split_layers: assignment.layers.clone(),
        full_accuracy,
        split_accuracy,
        drop: full_accuracy - split_accuracy,
        task_drop: full.iter().zip(&split).map(|(a, b)| a - b).collect(),
        task_accuracy: full,
        task_split_accuracy: split,
        layers,
        seconds: t0.elapsed().as_secs_f64(),
        backend: backend.name(),
        assignment,
        modularity: Some(modularity),
    })
}

/// The modularity measures of `params` split as `assignment`: `Q` of the task partition and of the
/// Louvain partition (seed [`DEFAULT_LOUVAIN_SEED`]), participation, and the selectivity of an
/// ablation of every split-layer neuron on `test`. The ablation runs on the CPU whatever the backend
/// (its rank-one update makes it seconds, where a masked evaluation per neuron would take minutes).
pub fn measure_modularity(
    model: &ModelConfig,
    params: &Params,
    assignment: &Assignment,
    test: &TestSet,
) -> Result<ModularityReport> {
    let ablation = ablate(model, params, test, &assignment.layers)?;
    modularity_report(model, params, assignment, DEFAULT_LOUVAIN_SEED, Some(&ablation))
}

/// Name of task `t` for reports, from the tasks' names (`names[t]`, as `config::display_name`
/// spells it: `MNIST`, `Fashion-MNIST`, ...); `task t` where there is no name.
pub fn task_name(names: &[String], t: usize) -> String {
    match names.get(t) {
        Some(name) => crate::config::display_name(name),
        None => format!("task {t}"),
    }
}

pub use crate::config::task_names_or_legacy;

/// The report as human-readable tables.
pub fn format_report(r: &SplitReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{} {} network, seed {}, {} epochs; split layers {:?} into {} tasks by {} (backend {})\n\n",
        r.mode,
        if r.spatial { "spatial" } else { "regular" },
        r.seed,
        r.epochs,
        r.split_layers,
        r.tasks,
        r.method.choice_name(),
        r.backend
    ));
    s.push_str(&format!(
        "{:<16} {:>8} {:>8} {:>8}\n",
        "task", "full", "split", "drop"
    ));
    for t in 0..r.tasks {
        s.push_str(&format!(
            "{:<16} {:>8.4} {:>8.4} {:>8.4}\n",
            task_name(&task_names_or_legacy(&r.task_names, r.tasks), t),
            r.task_accuracy[t],
            r.task_split_accuracy[t],
            r.task_drop[t]
        ));
    }
    s.push_str(&format!(
        "{:<16} {:>8.4} {:>8.4} {:>8.4}\n\n",
        "mean", r.full_accuracy, r.split_accuracy, r.drop
    ));
    s.push_str(&format!(
        "{:<6} {:<18} {:>12} {:>12} {:>10} {:>10} {:>9}\n",
        "layer", "neurons per task", "cross |w|", "segregation", "same dist", "cross dist", "p"
    ));
    let opt = |v: Option<f64>, w: usize| v.map_or(format!("{:>w$}", "-"), |x| format!("{x:>w$.4}"));
    for l in &r.layers {
        let counts = l
            .neurons_per_task
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" / ");
        let seg = l.segregation.as_ref();
        s.push_str(&format!(
            "{:<6} {:<18} {} {} {} {} {}\n",
            l.layer,
            counts,
            opt(l.cross_share, 12),
            opt(seg.map(|g| g.score), 12),
            opt(seg.map(|g| g.same_task_distance), 10),
            opt(seg.map(|g| g.cross_task_distance), 10),
            opt(seg.map(|g| g.p_value), 9),
        ));
    }
    s.push_str(
        "\ncross |w|: share of the |w| mass into the next layer that joins neurons of different tasks.\n\
         segregation: mean same-task / mean cross-task distance of the positions (< 1: grouped by task);\n\
         p: label-permutation p-value of a score this low.\n",
    );
    if let Some(m) = &r.modularity {
        s.push_str("\nModularity of the split layers' |w| graph\n\n");
        s.push_str(&m.format());
    }
    s
}
