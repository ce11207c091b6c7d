//! Modularity of a trained network measured as the field does (METHOD.md, "Modularity measures"):
//! Newman's `Q` of the `|w|` graph for the split's task partition and for the communities Louvain
//! finds, the participation coefficient of each neuron in the task groups, and single-neuron
//! ablation selectivity compared with the split.
//!
//! - [`graph`]: the weighted undirected graph of a network's layers ([`WeightGraph::from_model`]).
//! - [`modularity`](modularity::modularity): `Q` of a partition.
//! - [`communities`]: Louvain, deterministic given a seed.
//! - [`participation`]: Guimerà-Amaral participation, per neuron and per layer.
//! - [`ablation`]: every task's accuracy with one neuron switched off, and the selectivity it shows.
//! - [`drive`]: the split by activations (each neuron to the task whose class explains most of its
//!   activation), the alternative to the greedy split by weights.
//!
//! [`modularity_report`] bundles them for one model; [`cheap_measures`] is the part cheap enough to
//! compute after every epoch.

pub mod ablation;
pub mod communities;
pub mod drive;
pub mod graph;
pub mod modularity;
pub mod participation;

pub use ablation::{ablate, ablate_masked, selectivity, Ablation, Selectivity};
pub use communities::{louvain, Communities};
pub use graph::WeightGraph;
pub use modularity::modularity;
pub use participation::{participation, participation_by_layer, LayerParticipation};

use crate::assignment::{self as split, Assignment};
use crate::config::ModelConfig;
use crate::model::Params;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Default seed of the community detection.
pub const DEFAULT_LOUVAIN_SEED: u64 = 0;

/// The task of every node of a graph built from a network, from the split's assignment; `None` if
/// the graph holds a layer that is not split.
pub fn task_labels(graph: &WeightGraph, assignment: &Assignment) -> Option<Vec<usize>> {
    let mut labels = Vec::with_capacity(graph.len());
    for &l in graph.layers() {
        labels.extend_from_slice(assignment.of(l)?);
    }
    (labels.len() == graph.len()).then_some(labels)
}

/// The modularity measures of one model (METHOD.md, "Modularity measures").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModularityReport {
    /// The layers of the `|w|` graph: the split layers.
    pub layers: Vec<usize>,
    pub tasks: usize,
    /// Nodes (neurons) and summed edge weight `m` of the graph.
    pub nodes: usize,
    pub edge_weight: f64,
    /// `Q` of the split's task partition.
    pub task_modularity: Option<f64>,
    /// `Q` of the partition Louvain found, its number of communities and the seed.
    pub detected_modularity: Option<f64>,
    pub detected_communities: usize,
    pub louvain_seed: u64,
    /// Participation in the task groups, per split layer.
    pub participation: Vec<LayerParticipation>,
    /// Ablation selectivity and the split's agreement with it, when an ablation was run.
    pub selectivity: Option<SelectivitySummary>,
}

/// The per-layer part of [`Selectivity`] (the per-neuron list stays out of the report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelectivitySummary {
    /// Test examples the ablation ran on.
    pub examples: usize,
    pub layers: Vec<ablation::LayerSelectivity>,
    /// Agreement over the hidden split layers.
    pub agreement: Option<f64>,
    pub seconds: f64,
}

/// The measures of the model `params` split as `assignment` (from [`split::assign`]), with
/// Louvain seeded by `seed`; `ablation` (from [`ablate`] on the split layers), if given, adds the
/// selectivity.
pub fn modularity_report(
    model: &ModelConfig,
    params: &Params,
    assignment: &Assignment,
    seed: u64,
    ablation: Option<&Ablation>,
) -> Result<ModularityReport> {
    let graph = WeightGraph::from_model(model, params, &assignment.layers)?;
    let Some(tasks) = task_labels(&graph, assignment) else {
        bail!(
            "the assignment does not cover the split layers {:?}",
            assignment.layers
        );
    };
    let detected = louvain(&graph, seed);
    let selectivity = match ablation {
        Some(a) => {
            let s = selectivity(a, assignment)?;
            Some(SelectivitySummary {
                examples: a.examples,
                layers: s.layers,
                agreement: s.agreement,
                seconds: a.seconds,
            })
        }
        None => None,
    };
    Ok(ModularityReport {
        layers: assignment.layers.clone(),
        tasks: assignment.tasks,
        nodes: graph.len(),
        edge_weight: graph.total_degree() / 2.0,
        task_modularity: modularity(&graph, &tasks),
        detected_modularity: detected.modularity,
        detected_communities: detected.count,
        louvain_seed: seed,
        participation: participation_by_layer(&graph, &tasks, assignment.tasks),
        selectivity,
    })
}

fn opt(v: Option<f64>, w: usize) -> String {
    v.map_or(format!("{:>w$}", "-"), |x| format!("{x:>w$.4}"))
}

impl ModularityReport {
    /// The report as human-readable lines.
    pub fn format(&self) -> String {
        let mut s = format!(
            "|w| graph of layers {:?}: {} neurons, edge weight {:.4}\n\
             Q of the task partition ({} tasks): {}\n\
             Q of the Louvain partition (seed {}, {} communities): {}\n\n",
            self.layers,
            self.nodes,
            self.edge_weight,
            self.tasks,
            opt(self.task_modularity, 0),
            self.louvain_seed,
            self.detected_communities,
            opt(self.detected_modularity, 0),
        );
        s.push_str(&format!(
            "{:<6} {:>8} {:>10} {:>12} {:>9} {:>10} {:>10} {:>10}\n",
            "layer", "neurons", "mean P", "P/(1-1/M)", "> 0.5", "with drop", "agreement", "select."
        ));
        for p in &self.participation {
            let sel = self
                .selectivity
                .as_ref()
                .and_then(|s| s.layers.iter().find(|x| x.layer == p.layer));
            s.push_str(&format!(
                "{:<6} {:>8} {} {} {} {:>10} {} {}\n",
                p.layer,
                p.neurons,
                opt(p.mean, 10),
                opt(p.mean_normalised, 12),
                opt(p.above_half, 9),
                sel.map_or("-".to_string(), |x| x.with_drop.to_string()),
                opt(sel.and_then(|x| x.agreement), 10),
                opt(sel.and_then(|x| x.mean_index), 10),
            ));
        }
        if let Some(sel) = &self.selectivity {
            s.push_str(&format!(
                "\nablation on {} test examples ({:.2} s): agreement of the split with the preferred task \
                 over the hidden split layers: {}\n",
                sel.examples,
                sel.seconds,
                opt(sel.agreement, 0)
            ));
        }
        s.push_str(
            "\nP: participation 1 - sum_t (k_it/k_i)^2 of a neuron's |w| over the task groups; > 0.5: share of\n\
             neurons with P/(1-1/M) above 0.5. with drop: neurons whose removal lowers some task's accuracy;\n\
             agreement: share of those assigned to the task they hurt most; select.: mean selectivity index.\n",
        );
        s
    }
}

/// The measures cheap enough for every epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheapMeasures {
    /// The split layers.
    pub layers: Vec<usize>,
    /// Cross-task share of the `|w|` into the next layer, per split layer (`None` for the output).
    pub cross_share: Vec<Option<f64>>,
    /// Segregation score (same-task over cross-task mean distance) per split layer, no test.
    pub segregation: Vec<Option<f64>>,
    /// `Q` of the task partition of the split layers' `|w|` graph.
    pub task_modularity: Option<f64>,
}

/// `Q` of the task partition of the split layers' `|w|` graph, straight from the weights (the same
/// value as [`modularity`] on [`WeightGraph::from_model`] with [`task_labels`], without building the
/// graph; `assignment` must come from [`split::assign`] on `params`): one pass over `W_{l+1}` for each pair of consecutive split layers. `None` when the split
/// layers have no weight between them.
pub fn task_modularity(params: &Params, assignment: &Assignment) -> Option<f64> {
    let tasks = assignment.tasks;
    // Per task: in_t (internal weight from both ends) and tot_t (summed degrees).
    let (mut inside, mut total) = (vec![0.0f64; tasks], vec![0.0f64; tasks]);
    for k in 0..assignment.layers.len().saturating_sub(1) {
        let (from, to) = (&assignment.groups[k], &assignment.groups[k + 1]);
        let n = from.len();
        let w = params.weight(assignment.layers[k] + 1);
        assert_eq!(
            w.len(),
            n * to.len(),
            "the assignment does not fit the parameters"
        );
        for (j, &tj) in to.iter().enumerate() {
            for (&ti, &v) in from.iter().zip(&w[j * n..(j + 1) * n]) {
                let a = v.abs() as f64;
                total[ti] += a;
                total[tj] += a;
                if ti == tj {
                    inside[ti] += 2.0 * a;
                }
            }
        }
    }
    let two_m: f64 = total.iter().sum();
    (two_m > 0.0).then(|| {
        inside
            .iter()
            .zip(&total)
            .map(|(&a, &t)| a / two_m - (t / two_m) * (t / two_m))
            .sum()
    })
}

/// The split of `params`, then its cross-task shares, segregation scores (without the permutation
/// test) and `Q` with the task partition.
pub fn cheap_measures(model: &ModelConfig, params: &Params) -> Result<CheapMeasures> {
    if params.layout != crate::model::Layout::new(&model.sizes) {
        bail!(
            "parameters of shape {:?} do not fit a model of sizes {:?}",
            params.layout.sizes,
            model.sizes
        );
    }
    let assignment = split::assign(model, params);
    Ok(CheapMeasures {
        cross_share: assignment
            .layers
            .iter()
            .map(|&l| split::cross_share(model, params, &assignment, l))
            .collect(),
        segregation: assignment
            .layers
            .iter()
            .zip(&assignment.groups)
            .map(|(&l, g)| split::segregation(params.position(l), g, 0, 0).map(|s| s.score))
            .collect(),
        task_modularity: task_modularity(params, &assignment),
        layers: assignment.layers,
    })
}
