//! The participation coefficient of Guimerà & Amaral (2005): how evenly a node's edge weight
//! spreads over the groups of a partition,
//!
//! `P_i = 1 - sum_t (k_it / k_i)^2`,
//!
//! with `k_it` the weight of node `i`'s edges to nodes of group `t` and `k_i` its degree. `P_i = 0`
//! when all of it goes to one group; the largest value, for an even spread over `M` groups, is
//! `1 - 1/M`. With the paper's two tasks that maximum is 0.5, so the per-layer summary also reports
//! `P_i / (1 - 1/M)` (1 = an even spread whatever `M`) and the fraction of neurons whose normalised
//! coefficient is above 0.5.

use super::graph::WeightGraph;
use serde::{Deserialize, Serialize};

/// `P_i` of every node for the partition `groups` (values `0..count`), `None` for a node without
/// edges. A self-loop counts towards the node's own group.
pub fn participation(graph: &WeightGraph, groups: &[usize], count: usize) -> Vec<Option<f64>> {
    assert_eq!(groups.len(), graph.len(), "one group per node");
    let mut per_group = vec![0.0f64; count];
    (0..graph.len())
        .map(|i| {
            let k = graph.degree(i);
            if k <= 0.0 {
                return None;
            }
            per_group.fill(0.0);
            per_group[groups[i]] += graph.self_loop(i);
            for (j, w) in graph.neighbours(i) {
                per_group[groups[j]] += w;
            }
            Some(1.0 - per_group.iter().map(|&kt| (kt / k) * (kt / k)).sum::<f64>())
        })
        .collect()
}

/// The participation of one layer's neurons in the task groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerParticipation {
    pub layer: usize,
    pub neurons: usize,
    /// Neurons with at least one edge in the graph (the others have no coefficient).
    pub connected: usize,
    /// Mean `P_i` over the connected neurons.
    pub mean: Option<f64>,
    /// Mean `P_i / (1 - 1/M)` over the connected neurons.
    pub mean_normalised: Option<f64>,
    /// Fraction of the connected neurons with `P_i / (1 - 1/M) > 0.5`.
    pub above_half: Option<f64>,
}

/// Per-layer summary of `participation` for a graph built from a network
/// ([`WeightGraph::from_model`]) and the task of each of its nodes, with `tasks` = `M` groups.
pub fn participation_by_layer(
    graph: &WeightGraph,
    task_of_node: &[usize],
    tasks: usize,
) -> Vec<LayerParticipation> {
    let p = participation(graph, task_of_node, tasks);
    // One task: every coefficient is 0 and there is nothing to normalise by.
    let max = if tasks > 1 { 1.0 - 1.0 / tasks as f64 } else { 1.0 };
    graph
        .layers()
        .iter()
        .map(|&l| {
            let nodes = graph.layer_nodes(l).expect("a layer of the graph");
            let neurons = nodes.len();
            let values: Vec<f64> = p[nodes].iter().flatten().copied().collect();
            let connected = values.len();
            let mean_of = |f: &dyn Fn(f64) -> f64| {
                (connected > 0).then(|| values.iter().map(|&v| f(v)).sum::<f64>() / connected as f64)
            };
            LayerParticipation {
                layer: l,
                neurons,
                connected,
                mean: mean_of(&|v| v),
                mean_normalised: mean_of(&|v| v / max),
                above_half: mean_of(&|v| if v / max > 0.5 { 1.0 } else { 0.0 }),
            }
        })
        .collect()
}
