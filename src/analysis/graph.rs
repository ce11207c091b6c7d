//! The weighted, undirected graph the modularity measures are computed on.
//!
//! Stored as a symmetric adjacency in compressed rows: every edge `{i, j}` appears in the rows of
//! both ends, with the same weight, so a node's degree is the sum of its row. A node may also carry
//! a self-loop weight `A_ii`; the graphs built from a network have none, but Louvain's aggregated
//! graphs do (a community's internal weight becomes its self-loop), and counting `A_ii` once in the
//! degree is what keeps the modularity of an aggregated graph equal to that of the partition it
//! stands for (METHOD.md, "Modularity measures").

use crate::config::ModelConfig;
use crate::model::{Layout, Params};
use anyhow::{bail, Result};

/// A weighted undirected graph with non-negative weights.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightGraph {
    /// Row `i` of the adjacency is `neighbours[offsets[i]..offsets[i + 1]]` (no self-loops here).
    offsets: Vec<usize>,
    neighbours: Vec<usize>,
    weights: Vec<f64>,
    /// `A_ii`, counted once in node `i`'s degree.
    self_loops: Vec<f64>,
    /// `k_i = sum_j A_ij`, self-loop included.
    degrees: Vec<f64>,
    /// For a graph built from a network: the layers its nodes are the neurons of, increasing.
    layers: Vec<usize>,
    /// `layer_starts[k]`: the node of neuron 0 of `layers[k]`; one more entry holds the node count.
    layer_starts: Vec<usize>,
}

impl WeightGraph {
    /// A graph of `n` nodes from undirected edges `(i, j, w)`; repeated edges add up. Errors name
    /// the first edge at fault: an end out of range, a self-loop, or a weight that is negative or
    /// not finite.
    pub fn from_edges(n: usize, edges: &[(usize, usize, f64)]) -> Result<WeightGraph> {
        let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for (e, &(i, j, w)) in edges.iter().enumerate() {
            if i >= n || j >= n {
                bail!("edge {e} ({i}, {j}): a node index is out of range for a graph of {n} nodes");
            }
            if i == j {
                bail!("edge {e} ({i}, {j}): self-loops are not supported");
            }
            if !(w.is_finite() && w >= 0.0) {
                bail!("edge {e} ({i}, {j}): weight {w} is not a finite non-negative number");
            }
            rows[i].push((j, w));
            rows[j].push((i, w));
        }
        Ok(WeightGraph::from_rows(rows, vec![0.0; n], Vec::new(), vec![0, n]))
    }

    /// The `|w|` graph of a network's layers `layers` (increasing and consecutive, e.g. the split
    /// layers `[3, 4, 5]`): one node per neuron of those layers, in layer order, and an edge of
    /// weight `|W_{l+1}[j, i]|` between neuron `i` of layer `l` and neuron `j` of layer `l + 1`
    /// for every consecutive pair in `layers` (zero weights are no edge). The connections into the
    /// first layer of the run are not part of the graph.
    pub fn from_model(model: &ModelConfig, params: &Params, layers: &[usize]) -> Result<WeightGraph> {
        if params.layout != Layout::new(&model.sizes) {
            bail!(
                "parameters of shape {:?} do not fit a model of sizes {:?}",
                params.layout.sizes,
                model.sizes
            );
        }
        let last = model.num_layers();
        if layers.is_empty() {
            bail!("the graph needs at least one layer");
        }
        if let Some(&l) = layers.iter().find(|&&l| l > last) {
            bail!("layer {l} does not exist: the model's layers are 0 (input) to {last} (output)");
        }
        if layers.windows(2).any(|w| w[1] != w[0] + 1) {
            bail!("layers {layers:?} are not consecutive and increasing");
        }
        let mut layer_starts = vec![0];
        for &l in layers {
            layer_starts.push(layer_starts.last().unwrap() + model.sizes[l]);
        }
        let n = *layer_starts.last().unwrap();
        let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        for k in 0..layers.len() - 1 {
            let l = layers[k];
            let (n_in, n_out) = (model.sizes[l], model.sizes[l + 1]);
            let w = params.weight(l + 1); // (N_{l+1}, N_l)
            if let Some(v) = w.iter().find(|v| !v.is_finite()) {
                bail!("W_{} holds a non-finite weight ({v})", l + 1);
            }
            let (from0, to0) = (layer_starts[k], layer_starts[k + 1]);
            for j in 0..n_out {
                for (i, &v) in w[j * n_in..(j + 1) * n_in].iter().enumerate() {
                    if v != 0.0 {
                        let a = v.abs() as f64;
                        rows[from0 + i].push((to0 + j, a));
                        rows[to0 + j].push((from0 + i, a));
                    }
                }
            }
        }
        Ok(WeightGraph::from_rows(
            rows,
            vec![0.0; n],
            layers.to_vec(),
            layer_starts,
        ))
    }

    /// Builds the compressed rows; repeated neighbours in a row are merged (first occurrence order).
    pub(crate) fn from_rows(
        rows: Vec<Vec<(usize, f64)>>,
        self_loops: Vec<f64>,
        layers: Vec<usize>,
        layer_starts: Vec<usize>,
    ) -> WeightGraph {
        let n = rows.len();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut neighbours = Vec::new();
        let mut weights = Vec::new();
        let mut degrees = Vec::with_capacity(n);
        // Where neighbour j sits in the current row, to merge repeated edges.
        let mut slot = vec![usize::MAX; n];
        offsets.push(0);
        for (i, row) in rows.into_iter().enumerate() {
            let start = neighbours.len();
            for (j, w) in row {
                if slot[j] == usize::MAX {
                    slot[j] = neighbours.len();
                    neighbours.push(j);
                    weights.push(w);
                } else {
                    weights[slot[j]] += w;
                }
            }
            for &j in &neighbours[start..] {
                slot[j] = usize::MAX;
            }
            degrees.push(self_loops[i] + weights[start..].iter().sum::<f64>());
            offsets.push(neighbours.len());
        }
        WeightGraph {
            offsets,
            neighbours,
            weights,
            self_loops,
            degrees,
            layers,
            layer_starts,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.degrees.len()
    }
    pub fn is_empty(&self) -> bool {
        self.degrees.is_empty()
    }
    /// The neighbours of node `i` and the weights of the edges to them (self-loop excluded).
    pub fn neighbours(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.offsets[i]..self.offsets[i + 1];
        self.neighbours[r.clone()]
            .iter()
            .copied()
            .zip(self.weights[r].iter().copied())
    }
    /// `A_ii` of node `i` (0 except in aggregated graphs).
    pub fn self_loop(&self, i: usize) -> f64 {
        self.self_loops[i]
    }
    /// `k_i`: the summed weight of node `i`'s edges (self-loop counted once).
    pub fn degree(&self, i: usize) -> f64 {
        self.degrees[i]
    }
    /// `2m = sum_i k_i`.
    pub fn total_degree(&self) -> f64 {
        self.degrees.iter().sum()
    }
    /// The layers the nodes are neurons of (empty for a graph built from edges).
    pub fn layers(&self) -> &[usize] {
        &self.layers
    }
    /// The nodes of layer `l`'s neurons, or `None` if the graph does not hold layer `l`.
    pub fn layer_nodes(&self, l: usize) -> Option<std::ops::Range<usize>> {
        let k = self.layers.iter().position(|&x| x == l)?;
        Some(self.layer_starts[k]..self.layer_starts[k + 1])
    }
}
