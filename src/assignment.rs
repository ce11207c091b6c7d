//! Which task each neuron of the split layers belongs to, and the numbers computed from that alone:
//! the greedy backward assignment, the task masks, the cross-task share of |w| and the spatial
//! segregation score with its permutation test. Definitions: the module docs of `split`, which
//! re-exports everything here (this module sits below `split` and `analysis`, which both use it).

use crate::config::{Choice, ModelConfig};
use crate::model::{NeuronMask, Params};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the neurons of the split layers are given to tasks (METHOD.md, "The split").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    /// The greedy backward assignment by |w| mass ([`assign`]).
    #[default]
    Weights,
    /// Each neuron to the task whose class explains most of its activation on the test set
    /// (`analysis::drive::assign_by_activations`).
    Activations,
}

impl Choice for SplitMethod {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            SplitMethod::Weights,
            "weights",
            "Greedy, backwards from the heads: a neuron goes to the task its outgoing |w| feeds most",
        ),
        (
            SplitMethod::Activations,
            "activations",
            "A neuron goes to the task whose class explains most of its activation on the test set (eta squared)",
        ),
    ];
}

/// The split layers of a model: the run of consecutive spatial layers that ends at the output layer
/// (the output layer alone if there are no spatial layers), in increasing order.
pub fn split_layers(model: &ModelConfig) -> Vec<usize> {
    let last = model.num_layers();
    let mut layers = vec![last];
    let mut l = last;
    while l > 1 && model.spatial_layers.contains(&(l - 1)) {
        l -= 1;
        layers.push(l);
    }
    layers.reverse();
    layers
}

/// Which task each neuron of each split layer belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// Number of tasks `M` (= heads).
    pub tasks: usize,
    /// The split layers, increasing; the last is the output layer.
    pub layers: Vec<usize>,
    /// `groups[k][i]`: the task of neuron `i` of layer `layers[k]`.
    pub groups: Vec<Vec<usize>>,
}

impl Assignment {
    /// The tasks of layer `l`'s neurons, or `None` if `l` is not split.
    pub fn of(&self, l: usize) -> Option<&[usize]> {
        self.layers
            .iter()
            .position(|&x| x == l)
            .map(|k| self.groups[k].as_slice())
    }

    /// How many neurons of layer `l` each task got (`None` if `l` is not split).
    pub fn counts(&self, l: usize) -> Option<Vec<usize>> {
        self.of(l).map(|g| {
            let mut c = vec![0; self.tasks];
            for &t in g {
                c[t] += 1;
            }
            c
        })
    }
}

/// The greedy backward assignment (module docs) of a model with parameters `params`.
pub fn assign(model: &ModelConfig, params: &Params) -> Assignment {
    let layers = split_layers(model);
    let tasks = model.heads;
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); layers.len()];
    let k_last = layers.len() - 1;
    // Output neuron j belongs to the task whose head holds it (heads may differ in size).
    let offsets = model.head_offsets();
    groups[k_last] = (0..offsets.len() - 1)
        .flat_map(|t| std::iter::repeat_n(t, offsets[t + 1] - offsets[t]))
        .collect();
    for k in (0..k_last).rev() {
        let l = layers[k];
        let (n, n_next) = (model.sizes[l], model.sizes[l + 1]);
        let w = params.weight(l + 1); // (N_{l+1}, N_l)
        let next = &groups[k + 1];
        let mut mass = vec![0.0f64; n * tasks];
        for j in 0..n_next {
            let t = next[j];
            for (i, &v) in w[j * n..(j + 1) * n].iter().enumerate() {
                mass[i * tasks + t] += v.abs() as f64;
            }
        }
        groups[k] = mass.chunks_exact(tasks).map(argmax_lowest).collect();
    }
    Assignment {
        tasks,
        layers,
        groups,
    }
}

/// Index of the largest value; the lowest index among equal largest values (the split's tie rule).
pub(crate) fn argmax_lowest(v: &[f64]) -> usize {
    let mut best = 0;
    for (t, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] {
            best = t;
        }
    }
    best
}

/// The neuron mask of task `t`'s subnetwork: ones everywhere except the neurons of split layers
/// assigned to another task. `keep[l]` has `N_l` entries for every `l = 0..=L`.
pub fn task_mask(model: &ModelConfig, assignment: &Assignment, t: usize) -> NeuronMask {
    let mut keep: NeuronMask = model.sizes.iter().map(|&n| vec![1.0; n]).collect();
    for (&l, g) in assignment.layers.iter().zip(&assignment.groups) {
        for (k, &task) in keep[l].iter_mut().zip(g) {
            *k = if task == t { 1.0 } else { 0.0 };
        }
    }
    keep
}

/// Of the |w| mass from split layer `l` into layer `l + 1`, the fraction whose ends belong to
/// different tasks. `None` for the output layer, a layer that is not split, or no mass at all.
pub fn cross_share(model: &ModelConfig, params: &Params, assignment: &Assignment, l: usize) -> Option<f64> {
    let from = assignment.of(l)?;
    let to = assignment.of(l + 1)?;
    let w = params.weight(l + 1);
    let n = model.sizes[l];
    let (mut cross, mut total) = (0.0f64, 0.0f64);
    for (j, &tj) in to.iter().enumerate() {
        for (i, &v) in w[j * n..(j + 1) * n].iter().enumerate() {
            let a = v.abs() as f64;
            total += a;
            if from[i] != tj {
                cross += a;
            }
        }
    }
    (total > 0.0).then(|| cross / total)
}

/// The spatial segregation of one layer's neurons by task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segregation {
    /// Mean distance between two distinct neurons of the same task.
    pub same_task_distance: f64,
    /// Mean distance between two neurons of different tasks.
    pub cross_task_distance: f64,
    /// `same_task_distance / cross_task_distance`: below 1, same-task neurons sit closer.
    pub score: f64,
    /// Label-permutation p-value of a score this low: `(1 + #{perm <= observed}) / (1 + permutations)`.
    pub p_value: f64,
    pub permutations: usize,
}

/// Segregation of neurons at `positions` (`(N, 2)` row-major) labelled `tasks`, with a test over
/// `permutations` seeded label shuffles. `None` when there are no same-task pairs or no cross-task
/// pairs (e.g. every neuron went to one task).
pub fn segregation(
    positions: &[f32],
    tasks: &[usize],
    permutations: usize,
    seed: u64,
) -> Option<Segregation> {
    let n = tasks.len();
    assert_eq!(positions.len(), 2 * n, "positions must be (N, 2) for N labels");
    let mut dist = Vec::with_capacity(n * (n.saturating_sub(1)) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dx = (positions[2 * i] - positions[2 * j]) as f64;
            let dy = (positions[2 * i + 1] - positions[2 * j + 1]) as f64;
            dist.push((dx * dx + dy * dy).sqrt());
        }
    }
    let score_of = |labels: &[usize]| -> Option<(f64, f64)> {
        let (mut same, mut ns, mut cross, mut nc) = (0.0f64, 0usize, 0.0f64, 0usize);
        let mut k = 0;
        for i in 0..n {
            for j in i + 1..n {
                if labels[i] == labels[j] {
                    same += dist[k];
                    ns += 1;
                } else {
                    cross += dist[k];
                    nc += 1;
                }
                k += 1;
            }
        }
        (ns > 0 && nc > 0).then(|| (same / ns as f64, cross / nc as f64))
    };
    let (same, cross) = score_of(tasks)?;
    let score = same / cross;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut labels = tasks.to_vec();
    let mut as_low = 0usize;
    for _ in 0..permutations {
        labels.shuffle(&mut rng);
        let (s, c) = score_of(&labels).expect("a permutation keeps the task counts");
        if s / c <= score {
            as_low += 1;
        }
    }
    Some(Segregation {
        same_task_distance: same,
        cross_task_distance: cross,
        score,
        p_value: (1 + as_low) as f64 / (1 + permutations) as f64,
        permutations,
    })
}
