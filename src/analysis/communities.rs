//! Community detection by the Louvain method (Blondel, Guillaume, Lambiotte & Lefebvre 2008),
//! weighted, multi-level, and deterministic given a seed.
//!
//! Each level has two phases. *Local moving*: the nodes are visited in an order shuffled once per
//! level by a ChaCha8 generator seeded with the seed; each node leaves its community and joins the
//! neighbouring community (or its own) with the largest modularity gain
//! `k_i,in(c) - tot_c k_i / 2m` (the terms common to every choice dropped), moving only for a gain
//! larger than its own community's by more than `1e-12 k_i`, so that every move raises `Q` and the
//! sweep ends; a tie keeps the community met first (its own first, then neighbours in adjacency
//! order). Sweeps repeat until no node moves. *Aggregation*: each community becomes one node whose
//! self-loop is the community's internal weight, edges between communities add up. Levels repeat
//! until local moving moves nothing. Written out here rather than taken from a crate: it is short,
//! needs no new dependency, and its determinism (seed, tie rules) is ours to state; tested on
//! Zachary's karate club and on planted partitions in tests/modularity.rs.

use super::graph::WeightGraph;
use super::modularity::{dense_labels, modularity};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The partition Louvain found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Communities {
    /// The community of each node, numbered `0..count` in order of each community's first node.
    pub labels: Vec<usize>,
    pub count: usize,
    /// `Q` of `labels` on the input graph (`None` for a graph without edge weight).
    pub modularity: Option<f64>,
    /// Aggregation levels that moved at least one node.
    pub levels: usize,
    pub seed: u64,
}

/// Louvain communities of `graph`, the same for the same graph and seed.
pub fn louvain(graph: &WeightGraph, seed: u64) -> Communities {
    let n = graph.len();
    let mut labels: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut levels = 0;
    if graph.total_degree() > 0.0 {
        let mut level = graph.clone();
        while let Some(moved) = move_nodes(&level, &mut rng) {
            let (dense, count) = dense_labels(&moved);
            for l in labels.iter_mut() {
                *l = dense[*l];
            }
            level = aggregate(&level, &dense, count);
            levels += 1;
        }
    }
    let (labels, count) = dense_labels(&labels);
    Communities {
        modularity: modularity(graph, &labels),
        labels,
        count,
        levels,
        seed,
    }
}

/// Local moving on one level: each node's community, or `None` if no node moved.
fn move_nodes(g: &WeightGraph, rng: &mut ChaCha8Rng) -> Option<Vec<usize>> {
    let n = g.len();
    let two_m = g.total_degree();
    let mut community: Vec<usize> = (0..n).collect();
    let mut total: Vec<f64> = (0..n).map(|i| g.degree(i)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    // Weight from the current node to each community; negative = not a neighbour community yet.
    let mut link = vec![-1.0f64; n];
    let mut met: Vec<usize> = Vec::new();
    let mut any_moved = false;
    loop {
        let mut moves = 0;
        for &i in &order {
            let (own, k) = (community[i], g.degree(i));
            met.clear();
            link[own] = 0.0;
            met.push(own);
            for (j, w) in g.neighbours(i) {
                let c = community[j];
                if link[c] < 0.0 {
                    link[c] = 0.0;
                    met.push(c);
                }
                link[c] += w;
            }
            total[own] -= k;
            let gain = |c: usize| link[c] - total[c] * k / two_m;
            let (mut best, mut best_gain) = (own, gain(own));
            for &c in &met[1..] {
                let g = gain(c);
                if g > best_gain + 1e-12 * k {
                    best = c;
                    best_gain = g;
                }
            }
            total[best] += k;
            if best != own {
                community[i] = best;
                moves += 1;
            }
            for &c in &met {
                link[c] = -1.0;
            }
        }
        if moves == 0 {
            break;
        }
        any_moved = true;
    }
    any_moved.then_some(community)
}

/// The graph of communities: node `c` is community `c` of `community` (dense, `count` of them).
fn aggregate(g: &WeightGraph, community: &[usize], count: usize) -> WeightGraph {
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); count];
    let mut self_loops = vec![0.0f64; count];
    for i in 0..g.len() {
        let c = community[i];
        self_loops[c] += g.self_loop(i);
        for (j, w) in g.neighbours(i) {
            let d = community[j];
            if d == c {
                // Reached once from each end: the internal weight counted from both ends, as in_c.
                self_loops[c] += w;
            } else {
                rows[c].push((d, w));
            }
        }
    }
    WeightGraph::from_rows(rows, self_loops, Vec::new(), vec![0, count])
}
