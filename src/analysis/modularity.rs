//! Newman's modularity `Q` of a partition of a weighted undirected graph:
//!
//! `Q = (1 / 2m) sum_{i,j} [A_ij - k_i k_j / 2m] delta(c_i, c_j)
//!    = sum_c [ in_c / 2m - (tot_c / 2m)^2 ]`,
//!
//! with `in_c = sum_{i,j in c} A_ij` (each internal edge counted from both ends, a self-loop once),
//! `tot_c = sum_{i in c} k_i` and `2m = sum_i k_i`. The second form is the one computed: one pass
//! over the edges, in `f64`.

use super::graph::WeightGraph;

/// `Q` of the partition `labels` (the community of each node; any `usize` values). `None` for a
/// graph without edge weight, where `Q` is undefined (`2m = 0`).
pub fn modularity(graph: &WeightGraph, labels: &[usize]) -> Option<f64> {
    assert_eq!(labels.len(), graph.len(), "one community label per node");
    let two_m = graph.total_degree();
    if two_m <= 0.0 {
        return None;
    }
    let (dense, count) = dense_labels(labels);
    let mut inside = vec![0.0f64; count];
    let mut total = vec![0.0f64; count];
    for i in 0..graph.len() {
        let c = dense[i];
        total[c] += graph.degree(i);
        inside[c] += graph.self_loop(i);
        for (j, w) in graph.neighbours(i) {
            if dense[j] == c {
                inside[c] += w;
            }
        }
    }
    Some(
        inside
            .iter()
            .zip(&total)
            .map(|(&a, &t)| a / two_m - (t / two_m) * (t / two_m))
            .sum(),
    )
}

/// The labels renumbered `0..count` in order of first appearance, and `count`.
pub fn dense_labels(labels: &[usize]) -> (Vec<usize>, usize) {
    let mut map = std::collections::HashMap::new();
    let dense = labels
        .iter()
        .map(|&c| {
            let next = map.len();
            *map.entry(c).or_insert(next)
        })
        .collect();
    (dense, map.len())
}
