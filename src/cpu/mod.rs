//! The CPU backend: the readable reference every GPU kernel is judged against.
//!
//! One file per op, forward and backward side by side (`linear`, `sigmoid`, `softmax_xent`,
//! `transport`, `density`, `adam`); this module chains them into a training step. Matrix products
//! use `matrixmultiply` (single-threaded, ~100 GFLOP/s here); everything else is plain loops.

pub mod adam;
pub mod density;
pub mod linear;
pub mod sigmoid;
pub mod softmax_xent;
pub mod transport;

use crate::backend::{Backend, LossMeter, Losses};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::batches::Batch;
use crate::model::{Layout, NeuronMask, Params, TrainState};
use adam::{adam_update, AdamStep};
use anyhow::{bail, Result};

/// Activations and scratch space for a batch of up to `capacity` examples, reused across steps.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub capacity: usize,
    /// `acts[l]` is `(B, N_l)` for `l = 1..=L` (`acts[0]` is unused: the input is read in place);
    /// hidden layers hold the sigmoid output, the last layer the logits.
    pub acts: Vec<Vec<f32>>,
    /// `deltas[l]` is `dloss/dz_l`, `(B, N_l)`, for `l = 1..=L`.
    pub deltas: Vec<Vec<f32>>,
}

impl Workspace {
    pub fn new(sizes: &[usize], capacity: usize) -> Workspace {
        let per_layer = || sizes.iter().enumerate().map(|(l, &n)| vec![0.0; if l == 0 { 0 } else { capacity * n }]).collect();
        Workspace { capacity, acts: per_layer(), deltas: per_layer() }
    }
}

/// Forward pass of `b` examples: fills `ws.acts[1..=L]`. Neurons with `keep[l][j] == 0` are
/// switched off (activation 0).
pub fn forward(model: &ModelConfig, params: &Params, ws: &mut Workspace, inputs: &[f32], b: usize, keep: Option<&NeuronMask>) {
    let sizes = &model.sizes;
    let last = model.num_layers();
    for l in 1..=last {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        let (before, after) = ws.acts.split_at_mut(l);
        let inp: &[f32] = if l == 1 { inputs } else { &before[l - 1] };
        let out = &mut after[0][..b * oc];
        linear::linear_forward(out, inp, params.weight(l), params.bias(l), b, c, oc);
        if l < last {
            sigmoid::sigmoid_forward(out);
        }
        if let Some(keep) = keep {
            for row in out.chunks_exact_mut(oc) {
                for (v, &k) in row.iter_mut().zip(&keep[l]) {
                    *v *= k;
                }
            }
        }
    }
}

/// One forward and backward pass: returns the losses and writes the full gradient of the total
/// loss into `grads` (same layout as `params`; every element is overwritten).
pub fn forward_backward(
    model: &ModelConfig,
    params: &Params,
    ws: &mut Workspace,
    grads: &mut [f32],
    inputs: &[f32],
    labels: &[i32],
    b: usize,
) -> Losses {
    let sizes = &model.sizes;
    let last = model.num_layers();
    forward(model, params, ws, inputs, b, None);
    grads.fill(0.0);
    let mut g = params.layout.split_mut(grads);

    // Task loss: fused softmax cross-entropy gives dloss/dlogits directly.
    let task = softmax_xent::softmax_xent_forward_backward(
        &mut ws.deltas[last][..b * sizes[last]],
        &ws.acts[last][..b * sizes[last]],
        labels,
        b,
        model.heads,
        model.head_size(),
    );

    // Backward through the dense layers, last to first.
    for l in (1..=last).rev() {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        let (d_before, d_after) = ws.deltas.split_at_mut(l);
        let dout = &d_after[0][..b * oc];
        let inp: &[f32] = if l == 1 { inputs } else { &ws.acts[l - 1][..b * c] };
        let dinp = if l > 1 { Some(&mut d_before[l - 1][..b * c]) } else { None };
        let has_dinp = dinp.is_some();
        linear::linear_backward(dinp, &mut g.weights[l - 1][..], &mut g.biases[l - 1][..], dout, inp, params.weight(l), b, c, oc);
        if has_dinp {
            sigmoid::sigmoid_backward(&mut d_before[l - 1][..b * c], &ws.acts[l - 1][..b * c]);
        }
    }

    // Spatial costs of the layers of L, each weighted by alpha/|L| or beta/|L| in the total.
    let n_spatial = model.spatial_layers.len().max(1) as f32;
    let (ct, cv) = (model.alpha / n_spatial, model.beta / n_spatial);
    let mut transport = Vec::new();
    let mut density = Vec::new();
    for &l in &model.spatial_layers {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        let (p_lo, p_hi) = g.positions.split_at_mut(l);
        transport.push(transport::transport_forward_backward(
            &mut g.weights[l - 1][..],
            &mut p_lo[l - 1][..],
            &mut p_hi[0][..],
            params.weight(l),
            params.position(l - 1),
            params.position(l),
            c,
            oc,
            model.transport_norm,
            model.weight_norm,
            ct,
        ));
        density.push(density::density_forward_backward(&mut g.positions[l][..], params.position(l), oc, cv));
    }
    Losses { task, transport, density, total: 0.0 }.with_total(model)
}

/// The reference backend.
pub struct CpuBackend {
    model: ModelConfig,
    train: TrainConfig,
    state: TrainState,
    grads: Vec<f32>,
    ws: Workspace,
    meter: LossMeter,
}

impl CpuBackend {
    pub fn new(model: ModelConfig, train: TrainConfig, state: TrainState) -> Result<CpuBackend> {
        model.validate()?;
        train.validate()?;
        if state.params.layout != Layout::new(&model.sizes) {
            bail!("parameters of shape {:?} do not fit a model of sizes {:?}", state.params.layout.sizes, model.sizes);
        }
        let grads = vec![0.0; state.params.data.len()];
        let ws = Workspace::new(&model.sizes, train.batch_size);
        Ok(CpuBackend { model, train, state, grads, ws, meter: LossMeter::default() })
    }

    /// The gradient of the last step (before Adam applied it), for tests.
    pub fn last_grads(&self) -> &[f32] {
        &self.grads
    }
    /// The activations of the last step, for tests.
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".to_string()
    }
    fn model_config(&self) -> &ModelConfig {
        &self.model
    }
    fn train_config(&self) -> &TrainConfig {
        &self.train
    }
    fn steps(&self) -> u64 {
        self.state.step
    }

    fn train_step(&mut self, batch: &Batch) -> Result<()> {
        let b = batch.size;
        if b == 0 || b > self.ws.capacity {
            bail!("batch of {b} examples does not fit the backend's capacity of {}", self.ws.capacity);
        }
        if batch.input_dim != self.model.sizes[0] {
            bail!("batch has {} inputs per example, the model expects {}", batch.input_dim, self.model.sizes[0]);
        }
        let losses = forward_backward(
            &self.model,
            &self.state.params,
            &mut self.ws,
            &mut self.grads,
            &batch.inputs[..b * batch.input_dim],
            &batch.labels[..b * self.model.heads],
            b,
        );
        self.state.step += 1;
        let hp = AdamStep {
            lr: self.train.lr,
            beta1: self.train.beta1,
            beta2: self.train.beta2,
            eps: self.train.eps,
            step: self.state.step,
        };
        adam_update(&mut self.state.params.data, &self.grads, &mut self.state.adam_m, &mut self.state.adam_v, hp);
        self.meter.add(&losses);
        Ok(())
    }

    fn take_losses(&mut self) -> Result<Option<Losses>> {
        Ok(self.meter.take_mean())
    }

    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>) -> Result<Vec<f32>> {
        let n0 = self.model.sizes[0];
        let out_dim = self.model.output_dim();
        if inputs.len() != count * n0 {
            bail!("{} input values are not {count} examples of {n0}", inputs.len());
        }
        // Evaluate in large chunks with a workspace of its own, so training scratch is untouched.
        let chunk = 1024.min(count.max(1));
        let mut ws = Workspace::new(&self.model.sizes, chunk);
        let mut out = vec![0.0; count * out_dim];
        let last = self.model.num_layers();
        for start in (0..count).step_by(chunk) {
            let b = chunk.min(count - start);
            forward(&self.model, &self.state.params, &mut ws, &inputs[start * n0..(start + b) * n0], b, keep);
            out[start * out_dim..(start + b) * out_dim].copy_from_slice(&ws.acts[last][..b * out_dim]);
        }
        Ok(out)
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(self.state.clone())
    }

    fn set_state(&mut self, state: &TrainState) -> Result<()> {
        if state.params.layout != self.state.params.layout {
            bail!("state of shape {:?} does not fit a model of sizes {:?}", state.params.layout.sizes, self.model.sizes);
        }
        self.state = state.clone();
        Ok(())
    }
}
