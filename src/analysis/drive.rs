//! The split by activations (`split --method activations`): each hidden neuron of the split layers
//! goes to the task whose test examples drive it most.
//!
//! "Drive" is the correlation ratio (Fisher's eta squared) of the neuron's activation with the
//! task's class label: over the test examples that carry a label for task `t`, with `a_i` the
//! neuron's activation on example `i` and `c_i` its class in task `t`,
//!
//! `eta2_t = sum_c n_c (mean_c - mean)^2 / sum_i (a_i - mean)^2`,
//!
//! the share of the activation's variance that task `t`'s class explains (0: the activation does
//! not depend on that task's class at all; 1: it is a function of it). A neuron goes to the task of
//! the largest `eta2_t` (the lower task on a tie; a neuron whose activation never varies has 0 for
//! every task and goes to task 0). The output layer keeps its heads, as in the split by weights.
//!
//! The ratio needs no view inside the input, so it means the same in every mode: in concat and
//! mixed input every test example carries both tasks' labels (paired independently), and a neuron
//! serving MNIST varies with the digit, not with the garment; in sequential input each task's
//! ratio is taken over that task's own examples. The activations come from a plain CPU forward of
//! the final network (the same as `cpu::forward`), chunk by chunk.

use crate::assignment::{argmax_lowest, assign, Assignment};
use crate::config::ModelConfig;
use crate::cpu::activation::activation_forward;
use crate::cpu::linear::linear_forward;
use crate::data::batches::{TestSet, NO_LABEL};
use crate::model::{Layout, Params};
use anyhow::{bail, Result};

/// Examples forwarded together.
const CHUNK: usize = 512;

/// Per split hidden layer, `eta2[k][i][t]`: the correlation ratio of neuron `i` of
/// `assignment.layers[k]` with task `t`'s class (module docs). The output layer has none.
#[derive(Clone, Debug, PartialEq)]
pub struct Drive {
    pub layers: Vec<usize>,
    pub eta2: Vec<Vec<Vec<f64>>>,
}

/// Running sums of one task over one layer: per class, count and sum of each neuron's activation;
/// over all labelled examples, sum and sum of squares.
struct Sums {
    count: Vec<f64>,
    class_sum: Vec<Vec<f64>>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

/// The correlation ratios of every hidden neuron of the split layers of `model` on `test`.
pub fn drive(model: &ModelConfig, params: &Params, test: &TestSet) -> Result<Drive> {
    if params.layout != Layout::new(&model.sizes) {
        bail!(
            "parameters of shape {:?} do not fit a model of sizes {:?}",
            params.layout.sizes,
            model.sizes
        );
    }
    let (n0, heads) = (model.sizes[0], model.heads);
    if test.input_dim != n0 || test.inputs.len() != test.len * n0 {
        bail!(
            "the test set has {} inputs per example but the model's input layer has {n0}",
            test.input_dim
        );
    }
    if test.labels.len() != test.len * heads {
        bail!(
            "the test set of {} examples has {} label values, not {} per example (the model's heads)",
            test.len,
            test.labels.len(),
            heads
        );
    }
    let last = model.num_layers();
    let layers: Vec<usize> = crate::assignment::split_layers(model)
        .into_iter()
        .filter(|&l| l != last)
        .collect();
    // Classes per task: one more than the largest label the test set gives it.
    let classes: Vec<usize> = (0..heads)
        .map(|t| {
            test.labels
                .iter()
                .skip(t)
                .step_by(heads)
                .filter(|&&y| y != NO_LABEL)
                .map(|&y| y as usize + 1)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut sums: Vec<Vec<Sums>> = layers
        .iter()
        .map(|&l| {
            let n = model.sizes[l];
            classes
                .iter()
                .map(|&c| Sums {
                    count: vec![0.0; c],
                    class_sum: vec![vec![0.0; n]; c],
                    sum: vec![0.0; n],
                    sum_sq: vec![0.0; n],
                })
                .collect()
        })
        .collect();
    let deepest = layers.last().copied().unwrap_or(0);
    let sizes = &model.sizes;
    let mut act: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; CHUNK * n]).collect();
    for start in (0..test.len).step_by(CHUNK) {
        let b = CHUNK.min(test.len - start);
        for l in 1..=deepest {
            let (c, oc) = (sizes[l - 1], sizes[l]);
            let (before, after) = act.split_at_mut(l);
            let inp: &[f32] = if l == 1 {
                &test.inputs[start * n0..(start + b) * n0]
            } else {
                &before[l - 1][..b * c]
            };
            let out = &mut after[0][..b * oc];
            linear_forward(out, inp, params.weight(l), params.bias(l), b, c, oc);
            activation_forward(model.activation, out);
        }
        for (k, &l) in layers.iter().enumerate() {
            let n = sizes[l];
            for e in 0..b {
                let a = &act[l][e * n..(e + 1) * n];
                for (t, s) in sums[k].iter_mut().enumerate() {
                    let y = test.labels[(start + e) * heads + t];
                    if y == NO_LABEL {
                        continue;
                    }
                    let y = y as usize;
                    s.count[y] += 1.0;
                    for (i, &x) in a.iter().enumerate() {
                        let x = x as f64;
                        s.class_sum[y][i] += x;
                        s.sum[i] += x;
                        s.sum_sq[i] += x * x;
                    }
                }
            }
        }
    }
    let eta2 = layers
        .iter()
        .zip(&sums)
        .map(|(&l, per_task)| {
            (0..sizes[l])
                .map(|i| per_task.iter().map(|s| correlation_ratio(s, i)).collect())
                .collect()
        })
        .collect();
    Ok(Drive { layers, eta2 })
}

/// `eta^2` of neuron `i` from one task's sums; 0 when the activation does not vary.
fn correlation_ratio(s: &Sums, i: usize) -> f64 {
    let n: f64 = s.count.iter().sum();
    if n == 0.0 {
        return 0.0;
    }
    let mean = s.sum[i] / n;
    let total = s.sum_sq[i] - n * mean * mean;
    let between: f64 = s
        .count
        .iter()
        .zip(&s.class_sum)
        .filter(|(&c, _)| c > 0.0)
        .map(|(&c, sums)| {
            let d = sums[i] / c - mean;
            c * d * d
        })
        .sum();
    // Rounding can leave a tiny positive total for a constant activation: treat it as none.
    if total <= 1e-12 * n * (1.0 + mean * mean) {
        0.0
    } else {
        (between / total).clamp(0.0, 1.0)
    }
}

/// The split by activations (module docs): the output layer's heads as [`assign`] gives them, each
/// hidden split neuron to the task of its largest correlation ratio.
pub fn assign_by_activations(model: &ModelConfig, params: &Params, test: &TestSet) -> Result<Assignment> {
    let d = drive(model, params, test)?;
    let mut assignment = assign(model, params);
    for (l, eta2) in d.layers.iter().zip(&d.eta2) {
        let k = assignment
            .layers
            .iter()
            .position(|x| x == l)
            .expect("drive covers split layers only");
        assignment.groups[k] = eta2.iter().map(|v| argmax_lowest(v)).collect();
    }
    Ok(assignment)
}
