//! Single-neuron ablation: every task's test accuracy with one neuron alone switched off, for every
//! neuron of the chosen layers, and the task selectivity it shows.
//!
//! Switching neuron `j` of layer `l` off (activation 0, as a [`NeuronMask`](crate::model::NeuronMask)
//! does) changes layer `l + 1`'s pre-activations by a rank-one term:
//! `z'_{l+1} = z_{l+1} - a_{l,j} W_{l+1}[:, j]`. So the test set is forwarded once per chunk of
//! examples, its pre-activations and activations kept, and each ablation only applies that rank-one
//! change and forwards the layers after `l + 1` (for the layer before the output: the logits
//! directly; for the output layer: its logit set to 0). The logits agree with a masked forward to
//! rounding (tests/ablation.rs checks them against `CpuBackend::logits`). [`ablate_masked`] takes
//! the plain route instead, one masked evaluation per neuron through any backend, for the GPU.
//!
//! Selectivity of a neuron, from its accuracy drops `d_t = acc_t(full) - acc_t(ablated)` and their
//! positive parts `d+_t = max(d_t, 0)`: its preferred task is `p = argmax_t d+_t` (the lower task on
//! a tie), defined when `d+_p > 0`; its selectivity index is `(d+_p - o) / (d+_p + o)` with `o` the
//! mean of `d+_t` over the other tasks: 1 when switching it off hurts one task only, 0 when it hurts
//! all tasks alike, and 0 when it hurts none (no preferred task). The split's agreement with the
//! ablation, per layer: of the neurons with a preferred task, the fraction assigned to that task.

use crate::assignment::Assignment;
use crate::backend::Backend;
use crate::config::ModelConfig;
use crate::cpu::activation::activation_forward;
use crate::cpu::linear::linear_forward;
use crate::data::batches::TestSet;
use crate::metrics::count_correct;
use crate::metrics::evaluate;
use crate::model::{Layout, NeuronMask, Params};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Examples forwarded together: the activations of one chunk stay in the core's caches.
const CHUNK: usize = 512;

/// Every task's accuracy with each neuron of `layers` switched off alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    /// The ablated layers, as given.
    pub layers: Vec<usize>,
    pub tasks: usize,
    /// Test examples.
    pub examples: usize,
    /// Each task's accuracy with nothing switched off.
    pub full_accuracy: Vec<f64>,
    /// `accuracy[k][i][t]`: task `t`'s accuracy with neuron `i` of `layers[k]` switched off.
    pub accuracy: Vec<Vec<Vec<f64>>>,
    /// Wall seconds it took.
    pub seconds: f64,
}

fn check(model: &ModelConfig, params: &Params, layers: &[usize]) -> Result<()> {
    if params.layout != Layout::new(&model.sizes) {
        bail!(
            "parameters of shape {:?} do not fit a model of sizes {:?}",
            params.layout.sizes,
            model.sizes
        );
    }
    let last = model.num_layers();
    if let Some(&l) = layers.iter().find(|&&l| l == 0 || l > last) {
        bail!("layer {l} cannot be ablated: ablation covers layers 1 to {last} (0 is the input)");
    }
    Ok(())
}

/// Activations of one chunk, the full forward and the scratch of one ablated forward.
struct Chunk {
    /// `pre[l]`: `z_l`, `(b, N_l)`, for `l = 1..=L`.
    pre: Vec<Vec<f32>>,
    /// `act[l]`: the activation of `z_l` for hidden layers, the logits for `l = L`.
    act: Vec<Vec<f32>>,
    /// `scratch[l]`: layer `l`'s activations in the ablated forward.
    scratch: Vec<Vec<f32>>,
    /// Column `j` of the weight matrix being ablated.
    column: Vec<f32>,
}

impl Chunk {
    fn new(sizes: &[usize], capacity: usize) -> Chunk {
        let per_layer = || sizes.iter().map(|&n| vec![0.0; capacity * n]).collect::<Vec<_>>();
        Chunk {
            pre: per_layer(),
            act: per_layer(),
            scratch: per_layer(),
            column: vec![0.0; *sizes.iter().max().unwrap_or(&0)],
        }
    }

    /// The forward pass of `b` examples, as `cpu::forward` computes it, keeping `z_l` and `a_l`.
    fn forward(&mut self, model: &ModelConfig, params: &Params, inputs: &[f32], b: usize) {
        let sizes = &model.sizes;
        let last = model.num_layers();
        for l in 1..=last {
            let (c, oc) = (sizes[l - 1], sizes[l]);
            let inp: &[f32] = if l == 1 { inputs } else { &self.act[l - 1][..b * c] };
            linear_forward(
                &mut self.pre[l][..b * oc],
                inp,
                params.weight(l),
                params.bias(l),
                b,
                c,
                oc,
            );
            let out = &mut self.act[l][..b * oc];
            out.copy_from_slice(&self.pre[l][..b * oc]);
            if l < last {
                activation_forward(model.activation, out);
            }
        }
    }

    /// The logits of the last [`Chunk::forward`] with neuron `j` of layer `l` switched off.
    fn ablated(&mut self, model: &ModelConfig, params: &Params, b: usize, l: usize, j: usize) -> &[f32] {
        let sizes = &model.sizes;
        let last = model.num_layers();
        if l == last {
            let n = sizes[last];
            let out = &mut self.scratch[last][..b * n];
            out.copy_from_slice(&self.act[last][..b * n]);
            // As the mask does: the logit times 0.
            for row in out.chunks_exact_mut(n) {
                row[j] *= 0.0;
            }
            return out;
        }
        let (n, next) = (sizes[l], l + 1);
        let n_next = sizes[next];
        let w = params.weight(next); // (N_{l+1}, N_l)
        let column = &mut self.column[..n_next];
        for (q, c) in column.iter_mut().enumerate() {
            *c = w[q * n + j];
        }
        let z = &mut self.scratch[next][..b * n_next];
        z.copy_from_slice(&self.pre[next][..b * n_next]);
        for (row, a_row) in z.chunks_exact_mut(n_next).zip(self.act[l].chunks_exact(n)) {
            let a = a_row[j];
            if a != 0.0 {
                for (v, &c) in row.iter_mut().zip(column.iter()) {
                    *v -= a * c;
                }
            }
        }
        if next < last {
            activation_forward(model.activation, z);
        }
        for m in next + 1..=last {
            let (c, oc) = (sizes[m - 1], sizes[m]);
            let (before, after) = self.scratch.split_at_mut(m);
            let out = &mut after[0][..b * oc];
            linear_forward(
                out,
                &before[m - 1][..b * c],
                params.weight(m),
                params.bias(m),
                b,
                c,
                oc,
            );
            if m < last {
                activation_forward(model.activation, out);
            }
        }
        &self.scratch[last][..b * sizes[last]]
    }
}

/// The logits of `count` examples (`inputs` is `(count, N_0)`) with neuron `neuron` of layer
/// `layer` switched off, by the rank-one route [`ablate`] takes.
pub fn ablated_logits(
    model: &ModelConfig,
    params: &Params,
    inputs: &[f32],
    count: usize,
    layer: usize,
    neuron: usize,
) -> Result<Vec<f32>> {
    check(model, params, &[layer])?;
    if neuron >= model.sizes[layer] {
        bail!(
            "neuron {neuron} does not exist: layer {layer} has {}",
            model.sizes[layer]
        );
    }
    let n0 = model.sizes[0];
    if inputs.len() != count * n0 {
        bail!("{} input values are not {count} examples of {n0}", inputs.len());
    }
    let out_dim = model.output_dim();
    let mut chunk = Chunk::new(&model.sizes, CHUNK.min(count.max(1)));
    let mut out = Vec::with_capacity(count * out_dim);
    for start in (0..count).step_by(CHUNK) {
        let b = CHUNK.min(count - start);
        chunk.forward(model, params, &inputs[start * n0..(start + b) * n0], b);
        out.extend_from_slice(chunk.ablated(model, params, b, layer, neuron));
    }
    Ok(out)
}

/// Every task's test accuracy with each neuron of `layers` switched off alone (module docs).
pub fn ablate(model: &ModelConfig, params: &Params, test: &TestSet, layers: &[usize]) -> Result<Ablation> {
    let t0 = Instant::now();
    check(model, params, layers)?;
    let (n0, heads) = (model.sizes[0], model.heads);
    if test.input_dim != n0 {
        bail!(
            "the test set has {} inputs per example but the model's input layer has {n0}",
            test.input_dim
        );
    }
    if test.labels.len() != test.len * heads || test.inputs.len() != test.len * n0 {
        bail!(
            "the test set of {} examples has {} label columns but the model has {heads} heads",
            test.len,
            test.labels.len() / test.len.max(1)
        );
    }
    let offsets = model.head_offsets();
    let mut chunk = Chunk::new(&model.sizes, CHUNK.min(test.len.max(1)));
    let mut full = vec![(0u64, 0u64); heads];
    let mut correct: Vec<Vec<Vec<u64>>> = layers
        .iter()
        .map(|&l| vec![vec![0u64; heads]; model.sizes[l]])
        .collect();
    let last = model.num_layers();
    for start in (0..test.len).step_by(CHUNK) {
        let b = CHUNK.min(test.len - start);
        let labels = &test.labels[start * heads..(start + b) * heads];
        chunk.forward(model, params, &test.inputs[start * n0..(start + b) * n0], b);
        let counts = count_correct(&chunk.act[last][..b * model.output_dim()], labels, b, &offsets);
        for (f, c) in full.iter_mut().zip(counts) {
            f.0 += c.0;
            f.1 += c.1;
        }
        for (k, &l) in layers.iter().enumerate() {
            for (j, per_task) in correct[k].iter_mut().enumerate() {
                let logits = chunk.ablated(model, params, b, l, j);
                for (acc, c) in per_task
                    .iter_mut()
                    .zip(count_correct(logits, labels, b, &offsets))
                {
                    *acc += c.0;
                }
            }
        }
    }
    let rate = |c: u64, t: usize| {
        let n = full[t].1;
        if n == 0 {
            0.0
        } else {
            c as f64 / n as f64
        }
    };
    Ok(Ablation {
        layers: layers.to_vec(),
        tasks: heads,
        examples: test.len,
        full_accuracy: (0..heads).map(|t| rate(full[t].0, t)).collect(),
        accuracy: correct
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .map(|c| c.iter().enumerate().map(|(t, &c)| rate(c, t)).collect())
                    .collect()
            })
            .collect(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// [`ablate`] through any backend: one masked evaluation of the whole test set per neuron, so it
/// runs on the GPU where there is one (`layers.len()` x `N_l` forward passes of the test set; on
/// the CPU backend [`ablate`] is much faster). Same numbers as [`ablate`] up to rounding of the
/// logits.
pub fn ablate_masked(backend: &mut dyn Backend, test: &TestSet, layers: &[usize]) -> Result<Ablation> {
    let t0 = Instant::now();
    let model = backend.model_config().clone();
    let last = model.num_layers();
    if let Some(&l) = layers.iter().find(|&&l| l == 0 || l > last) {
        bail!("layer {l} cannot be ablated: ablation covers layers 1 to {last} (0 is the input)");
    }
    if test.input_dim != model.sizes[0] {
        bail!(
            "the test set has {} inputs per example but the model's input layer has {}",
            test.input_dim,
            model.sizes[0]
        );
    }
    let full_accuracy = evaluate(backend, test, None)?;
    let mut keep: NeuronMask = model.sizes.iter().map(|&n| vec![1.0; n]).collect();
    let mut accuracy = Vec::with_capacity(layers.len());
    for &l in layers {
        let mut per_neuron = Vec::with_capacity(model.sizes[l]);
        for j in 0..model.sizes[l] {
            keep[l][j] = 0.0;
            per_neuron.push(evaluate(backend, test, Some(&keep))?);
            keep[l][j] = 1.0;
        }
        accuracy.push(per_neuron);
    }
    Ok(Ablation {
        layers: layers.to_vec(),
        tasks: model.heads,
        examples: test.len,
        full_accuracy,
        accuracy,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What switching one neuron off shows about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronSelectivity {
    pub layer: usize,
    pub neuron: usize,
    /// The task the split assigned it to.
    pub assigned: usize,
    /// `d_t`: each task's accuracy drop when it alone is switched off.
    pub drops: Vec<f64>,
    /// The task it hurts most when switched off, if it hurts any.
    pub preferred: Option<usize>,
    /// Selectivity index in `[0, 1]` (module docs).
    pub index: f64,
}

/// The selectivity of one layer's neurons and the split's agreement with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerSelectivity {
    pub layer: usize,
    pub neurons: usize,
    /// Neurons whose removal lowers some task's accuracy (those with a preferred task).
    pub with_drop: usize,
    /// Of those, the fraction assigned to their preferred task.
    pub agreement: Option<f64>,
    /// Mean selectivity index of those.
    pub mean_index: Option<f64>,
}

/// Selectivity of every ablated neuron, per layer, and over the hidden split layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selectivity {
    pub neurons: Vec<NeuronSelectivity>,
    pub layers: Vec<LayerSelectivity>,
    /// Agreement over the neurons with a preferred task of every ablated layer but the output
    /// layer, whose neurons belong to their head by construction (so they always agree).
    pub agreement: Option<f64>,
}

/// The selectivity of each neuron of an [`Ablation`] and the agreement of `assignment` with it.
/// Every ablated layer must be a split layer of `assignment`.
pub fn selectivity(ablation: &Ablation, assignment: &Assignment) -> Result<Selectivity> {
    // The split layers end at the output layer.
    let last = assignment.layers.last().copied().unwrap_or(0);
    if ablation.tasks != assignment.tasks {
        bail!(
            "the ablation has {} tasks but the assignment {}",
            ablation.tasks,
            assignment.tasks
        );
    }
    let mut neurons = Vec::new();
    let mut layers = Vec::new();
    let (mut agree, mut with_drop) = (0usize, 0usize);
    for (k, &l) in ablation.layers.iter().enumerate() {
        let Some(groups) = assignment.of(l) else {
            bail!(
                "layer {l} was ablated but is not a split layer {:?}",
                assignment.layers
            );
        };
        let (mut layer_agree, mut layer_drop, mut index_sum) = (0usize, 0usize, 0.0f64);
        for (i, acc) in ablation.accuracy[k].iter().enumerate() {
            let drops: Vec<f64> = ablation
                .full_accuracy
                .iter()
                .zip(acc)
                .map(|(f, a)| f - a)
                .collect();
            let (preferred, index) = preference(&drops);
            if let Some(p) = preferred {
                layer_drop += 1;
                index_sum += index;
                if p == groups[i] {
                    layer_agree += 1;
                }
            }
            neurons.push(NeuronSelectivity {
                layer: l,
                neuron: i,
                assigned: groups[i],
                drops,
                preferred,
                index,
            });
        }
        if l != last {
            agree += layer_agree;
            with_drop += layer_drop;
        }
        layers.push(LayerSelectivity {
            layer: l,
            neurons: groups.len(),
            with_drop: layer_drop,
            agreement: (layer_drop > 0).then(|| layer_agree as f64 / layer_drop as f64),
            mean_index: (layer_drop > 0).then(|| index_sum / layer_drop as f64),
        });
    }
    Ok(Selectivity {
        neurons,
        layers,
        agreement: (with_drop > 0).then(|| agree as f64 / with_drop as f64),
    })
}

/// For each ablated layer, each neuron's drop in the test accuracy of the task `assignment` gives
/// it (`full - ablated`, a fraction): what the viewer shows when a neuron is hovered.
pub fn own_task_drops(ablation: &Ablation, assignment: &Assignment) -> Result<Vec<(usize, Vec<f64>)>> {
    ablation
        .layers
        .iter()
        .zip(&ablation.accuracy)
        .map(|(&l, accuracy)| {
            let Some(groups) = assignment.of(l) else {
                bail!(
                    "layer {l} was ablated but is not a split layer {:?}",
                    assignment.layers
                );
            };
            let drops = groups
                .iter()
                .zip(accuracy)
                .map(|(&t, acc)| ablation.full_accuracy[t] - acc[t])
                .collect();
            Ok((l, drops))
        })
        .collect()
}

/// The preferred task and the selectivity index of a neuron with accuracy drops `drops`.
pub fn preference(drops: &[f64]) -> (Option<usize>, f64) {
    let pos: Vec<f64> = drops.iter().map(|&d| d.max(0.0)).collect();
    let mut p = 0;
    for (t, &d) in pos.iter().enumerate() {
        if d > pos[p] {
            p = t;
        }
    }
    if pos.is_empty() || pos[p] <= 0.0 {
        return (None, 0.0);
    }
    let others = pos.len() - 1;
    let o = if others == 0 {
        0.0
    } else {
        (pos.iter().sum::<f64>() - pos[p]) / others as f64
    };
    (Some(p), (pos[p] - o) / (pos[p] + o))
}
