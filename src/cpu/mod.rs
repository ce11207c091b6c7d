//! The CPU backend: the readable reference every GPU kernel is judged against.
//!
//! One file per op, forward and backward side by side (`linear`, `activation`, `softmax_xent`,
//! `transport`, `density`, `adam`); this module chains them into a training step. Matrix products
//! use `matrixmultiply`; everything else is plain loops. With several threads (`--threads N`,
//! [`threads`]) each op's output is split among them so that the results are the same bits as on
//! one thread.

pub mod activation;
pub mod adam;
pub mod density;
pub mod linear;
mod parallel;
pub mod softmax_xent;
pub mod threads;
pub mod transport;

use crate::backend::{Backend, LossMeter, Losses};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::batches::Batch;
use crate::guard::{bad_gradient, describe_non_finite, non_finite_losses, non_finite_tensor, Diverged};
use crate::model::{NeuronMask, Params, TrainState};
use adam::{adam_update, AdamStep};
use anyhow::Result;
use std::ops::Range;
pub use threads::Threads;
use threads::ROW_ALIGN;

/// Activations and scratch space for a batch of up to `capacity` examples, reused across steps.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub capacity: usize,
    /// `acts[l]` is `(B, N_l)` for `l = 1..=L` (`acts[0]` is unused: the input is read in place);
    /// hidden layers hold the activation's output, the last layer the logits.
    pub acts: Vec<Vec<f32>>,
    /// `deltas[l]` is `dloss/dz_l`, `(B, N_l)`, for `l = 1..=L`.
    pub deltas: Vec<Vec<f32>>,
    /// `density[l]`: the positions `V(l)` was last computed for without a gradient, and its value.
    /// When the density cost has weight 0 (a regular network, whose positions never move), `V(l)`
    /// is only reported, and is taken from here while the positions are bit for bit the same.
    density: Vec<(Vec<f32>, f64)>,
    /// Scratch of the threaded spatial costs: each row's sum, and the transport's input-position
    /// gradient terms (`cpu::threads`); empty on one thread.
    row_totals: Vec<f64>,
    transport_u: Vec<f32>,
}

impl Workspace {
    pub fn new(sizes: &[usize], capacity: usize) -> Workspace {
        let per_layer = || {
            sizes
                .iter()
                .enumerate()
                .map(|(l, &n)| vec![0.0; if l == 0 { 0 } else { capacity * n }])
                .collect()
        };
        let density = sizes.iter().map(|_| (Vec::new(), 0.0)).collect();
        Workspace {
            capacity,
            acts: per_layer(),
            deltas: per_layer(),
            density,
            row_totals: Vec::new(),
            transport_u: Vec::new(),
        }
    }

    /// `V(l)` of positions `p` (`n` neurons), without its gradient: the cached value if `p` has not
    /// changed since it was computed (the same bits as computing it again).
    fn density_value(&mut self, l: usize, p: &[f32], n: usize) -> f64 {
        let (cached_p, value) = &mut self.density[l];
        let same =
            cached_p.len() == p.len() && cached_p.iter().zip(p).all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            *value = density::density_forward_backward(&mut [], p, n, 0.0);
            cached_p.clear();
            cached_p.extend_from_slice(p);
        }
        *value
    }
}

/// The phases of a CPU training step, in the order they first run. A [`PhaseHook`] is told when
/// each one ends, so `spatial-gpu bench` can time the real step phase by phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPhase {
    /// One layer's matrix product with the bias (forward).
    ForwardGemm,
    /// One hidden layer's activation.
    Activation,
    /// Zeroing the gradient buffer.
    ZeroGradient,
    /// The fused softmax cross-entropy and its gradient.
    SoftmaxXent,
    /// One layer's weight, bias and input gradients.
    BackwardGemm,
    /// One hidden layer's activation derivative.
    ActivationBackward,
    /// One spatial layer's transport cost and its gradient.
    Transport,
    /// One spatial layer's density cost and its gradient (or its cached value).
    Density,
    /// The divergence guard's scans of the losses and the gradient.
    Guard,
    /// The Adam update.
    Adam,
}

/// Told the end of each phase of a training step (one call per layer for per-layer phases).
pub trait PhaseHook {
    fn phase_done(&mut self, phase: StepPhase);
}

/// The hook of an untimed step: every call compiles to nothing.
pub struct NoHook;

impl PhaseHook for NoHook {
    #[inline(always)]
    fn phase_done(&mut self, _: StepPhase) {}
}

/// Forward pass of `b` examples: fills `ws.acts[1..=L]`. Neurons with `keep[l][j] == 0` are
/// switched off (activation 0).
pub fn forward(
    model: &ModelConfig,
    params: &Params,
    ws: &mut Workspace,
    inputs: &[f32],
    b: usize,
    keep: Option<&NeuronMask>,
) {
    forward_hooked(model, params, ws, inputs, b, keep, &Threads::one(), &mut NoHook);
}

#[allow(clippy::too_many_arguments)]
fn forward_hooked<H: PhaseHook + ?Sized>(
    model: &ModelConfig,
    params: &Params,
    ws: &mut Workspace,
    inputs: &[f32],
    b: usize,
    keep: Option<&NeuronMask>,
    threads: &Threads,
    hook: &mut H,
) {
    let sizes = &model.sizes;
    let last = model.num_layers();
    for l in 1..=last {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        let (before, after) = ws.acts.split_at_mut(l);
        let inp: &[f32] = if l == 1 { inputs } else { &before[l - 1] };
        let out = &mut after[0][..b * oc];
        if threads.parallel() {
            // Each task: its rows' product, activation and mask (the phases are timed together).
            let (w, bias, act) = (params.weight(l), params.bias(l), model.activation);
            let keep = keep.map(|k| &k[l][..]);
            threads.rows_mut(out, oc, ROW_ALIGN, |first, rows| {
                let n = rows.len() / oc;
                linear::linear_forward(rows, &inp[first * c..(first + n) * c], w, bias, n, c, oc);
                if l < last {
                    activation::activation_forward(act, rows);
                }
                if let Some(keep) = keep {
                    apply_mask(rows, keep);
                }
            });
            hook.phase_done(StepPhase::ForwardGemm);
            continue;
        }
        linear::linear_forward(out, inp, params.weight(l), params.bias(l), b, c, oc);
        hook.phase_done(StepPhase::ForwardGemm);
        if l < last {
            activation::activation_forward(model.activation, out);
            hook.phase_done(StepPhase::Activation);
        }
        if let Some(keep) = keep {
            apply_mask(out, &keep[l]);
        }
    }
}

/// `rows (B, N) *= keep (N)`, row by row.
fn apply_mask(rows: &mut [f32], keep: &[f32]) {
    for row in rows.chunks_exact_mut(keep.len()) {
        for (v, &k) in row.iter_mut().zip(keep) {
            *v *= k;
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
    let mut losses = Losses::default();
    forward_backward_into(model, params, ws, grads, inputs, labels, b, &mut losses);
    losses
}

/// Disjoint mutable views of `ranges` of `buf`, which must be in increasing order and not overlap.
fn disjoint_mut<'a, const N: usize>(
    mut buf: &'a mut [f32],
    ranges: [&Range<usize>; N],
) -> [&'a mut [f32]; N] {
    let mut consumed = 0;
    ranges.map(|r| {
        assert!(r.start >= consumed, "ranges overlap or are out of order");
        let (_, tail) = std::mem::take(&mut buf).split_at_mut(r.start - consumed);
        let (view, tail) = tail.split_at_mut(r.len());
        buf = tail;
        consumed = r.end;
        view
    })
}

/// [`forward_backward`] writing the losses into `losses`, whose vectors are reused: once they have
/// room for the spatial layers' terms, a step allocates nothing.
#[allow(clippy::too_many_arguments)]
pub fn forward_backward_into(
    model: &ModelConfig,
    params: &Params,
    ws: &mut Workspace,
    grads: &mut [f32],
    inputs: &[f32],
    labels: &[i32],
    b: usize,
    losses: &mut Losses,
) {
    forward_backward_hooked(
        model,
        params,
        ws,
        grads,
        inputs,
        labels,
        b,
        losses,
        &Threads::one(),
        &mut NoHook,
    );
}

/// [`forward_backward_into`], telling `hook` the end of each phase.
#[allow(clippy::too_many_arguments)]
fn forward_backward_hooked<H: PhaseHook + ?Sized>(
    model: &ModelConfig,
    params: &Params,
    ws: &mut Workspace,
    grads: &mut [f32],
    inputs: &[f32],
    labels: &[i32],
    b: usize,
    losses: &mut Losses,
    threads: &Threads,
    hook: &mut H,
) {
    let sizes = &model.sizes;
    let last = model.num_layers();
    let layout = &params.layout;
    forward_hooked(model, params, ws, inputs, b, None, threads, hook);
    threads.chunks_mut(grads, |_, g| g.fill(0.0));
    hook.phase_done(StepPhase::ZeroGradient);

    // Task loss: fused softmax cross-entropy gives dloss/dlogits directly.
    let task = model.with_head_offsets(|offsets| {
        softmax_xent::softmax_xent_forward_backward(
            &mut ws.deltas[last][..b * sizes[last]],
            &ws.acts[last][..b * sizes[last]],
            labels,
            b,
            offsets,
        )
    });
    hook.phase_done(StepPhase::SoftmaxXent);

    // Backward through the dense layers, last to first.
    for l in (1..=last).rev() {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        let (d_before, d_after) = ws.deltas.split_at_mut(l);
        let dout = &d_after[0][..b * oc];
        let inp: &[f32] = if l == 1 { inputs } else { &ws.acts[l - 1][..b * c] };
        let dinp = if l > 1 {
            Some(&mut d_before[l - 1][..b * c])
        } else {
            None
        };
        let has_dinp = dinp.is_some();
        let [dw, db] = disjoint_mut(grads, [&layout.weights[l - 1], &layout.biases[l - 1]]);
        if threads.parallel() {
            let a_prev = if l > 1 { &ws.acts[l - 1][..b * c] } else { &[][..] };
            let shape = parallel::Shape { b, c, oc };
            parallel::backward(
                threads,
                model.activation,
                dinp,
                dw,
                db,
                dout,
                inp,
                a_prev,
                params.weight(l),
                shape,
            );
            hook.phase_done(StepPhase::BackwardGemm);
            continue;
        }
        linear::linear_backward(dinp, dw, db, dout, inp, params.weight(l), b, c, oc);
        hook.phase_done(StepPhase::BackwardGemm);
        if has_dinp {
            activation::activation_backward(
                model.activation,
                &mut d_before[l - 1][..b * c],
                &ws.acts[l - 1][..b * c],
            );
            hook.phase_done(StepPhase::ActivationBackward);
        }
    }

    // Spatial costs of the layers of L, each weighted by alpha/|L| or beta/|L| in the total.
    let n_spatial = model.spatial_layers.len().max(1) as f32;
    let (ct, cv) = (model.alpha / n_spatial, model.beta / n_spatial);
    losses.transport.clear();
    losses.density.clear();
    for &l in &model.spatial_layers {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        let ranges = [
            &layout.weights[l - 1],
            &layout.positions[l - 1],
            &layout.positions[l],
        ];
        let [dw, dp_in, dp_out] = disjoint_mut(grads, ranges);
        if threads.parallel() {
            let (w, p_in, p_out) = (params.weight(l), params.position(l - 1), params.position(l));
            let t = parallel::transport(
                threads,
                ws,
                [dw, dp_in, &mut *dp_out],
                [w, p_in, p_out],
                c,
                oc,
                model,
                ct,
            );
            losses.transport.push(t);
            hook.phase_done(StepPhase::Transport);
            losses.density.push(if cv == 0.0 {
                ws.density_value(l, params.position(l), oc)
            } else {
                parallel::density(threads, ws, dp_out, params.position(l), oc, cv)
            });
            hook.phase_done(StepPhase::Density);
            continue;
        }
        losses.transport.push(transport::transport_forward_backward(
            dw,
            dp_in,
            dp_out,
            params.weight(l),
            params.position(l - 1),
            params.position(l),
            c,
            oc,
            model.transport_norm,
            model.weight_norm,
            ct,
        ));
        hook.phase_done(StepPhase::Transport);
        losses.density.push(if cv == 0.0 {
            ws.density_value(l, params.position(l), oc)
        } else {
            density::density_forward_backward(dp_out, params.position(l), oc, cv)
        });
        hook.phase_done(StepPhase::Density);
    }
    losses.task = task;
    *losses = std::mem::take(losses).with_total(model);
}

/// The reference backend.
pub struct CpuBackend {
    model: ModelConfig,
    train: TrainConfig,
    state: TrainState,
    grads: Vec<f32>,
    ws: Workspace,
    /// The last step's losses (reused: a step allocates nothing).
    losses: Losses,
    meter: LossMeter,
    /// The threads a step runs on (one unless [`CpuBackend::with_threads`] says otherwise).
    threads: Threads,
}

impl CpuBackend {
    pub fn new(model: ModelConfig, train: TrainConfig, state: TrainState) -> Result<CpuBackend> {
        model.validate()?;
        train.validate()?;
        crate::backend::check_state(&model, &state)?;
        let grads = vec![0.0; state.params.data.len()];
        let ws = Workspace::new(&model.sizes, train.batch_size);
        Ok(CpuBackend {
            model,
            train,
            state,
            grads,
            ws,
            losses: Losses::default(),
            meter: LossMeter::default(),
            threads: Threads::one(),
        })
    }

    /// This backend on `count` threads (at least 1; `--threads`). The results are the same bits
    /// whatever the count (`cpu::threads`).
    pub fn with_threads(mut self, count: usize) -> Result<CpuBackend> {
        self.threads = Threads::new(count)?;
        Ok(self)
    }

    /// The number of threads a step runs on.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// One training step ([`Backend::train_step`]), telling `hook` the end of each phase.
    pub fn train_step_hooked<H: PhaseHook + ?Sized>(&mut self, batch: &Batch, hook: &mut H) -> Result<()> {
        crate::backend::check_batch(&self.model, self.ws.capacity, batch)?;
        let b = batch.size;
        forward_backward_hooked(
            &self.model,
            &self.state.params,
            &mut self.ws,
            &mut self.grads,
            &batch.inputs[..b * batch.input_dim],
            &batch.labels[..b * self.model.heads],
            b,
            &mut self.losses,
            &self.threads,
            hook,
        );
        // The divergence guard, every step (two vectorised scans, small next to the matrix products):
        // a non-finite loss or a gradient that would make Adam's state non-finite is never applied, so
        // the state stays that of the last good step.
        let step = self.state.step + 1;
        let bad_losses = non_finite_losses(&self.model, &self.losses);
        if !bad_losses.is_empty() {
            return Err(Diverged::at(step, describe_non_finite(&bad_losses)).into());
        }
        if let Some(what) = bad_gradient(&self.state.params.layout, &self.grads) {
            return Err(Diverged::at(step, what).into());
        }
        hook.phase_done(StepPhase::Guard);
        self.state.step = step;
        let hp = AdamStep {
            lr: self.train.lr,
            beta1: self.train.beta1,
            beta2: self.train.beta2,
            eps: self.train.eps,
            step: self.state.step,
        };
        let (params, m, v) = (
            &mut self.state.params.data,
            &mut self.state.adam_m,
            &mut self.state.adam_v,
        );
        if self.threads.parallel() {
            parallel::adam(&self.threads, params, &self.grads, m, v, hp);
        } else {
            adam_update(params, &self.grads, m, v, hp);
        }
        hook.phase_done(StepPhase::Adam);
        // With a safe gradient only an absurd --lr can make a parameter overflow.
        let layout = &self.state.params.layout;
        if let Some(t) = non_finite_tensor(layout, &self.state.params.data) {
            return Err(Diverged::at(step, format!("{t} (after the Adam update)")).into());
        }
        self.meter.add(&self.losses);
        Ok(())
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
        self.train_step_hooked(batch, &mut NoHook)
    }

    fn take_losses(&mut self) -> Result<Option<Losses>> {
        Ok(self.meter.take_mean())
    }

    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>) -> Result<Vec<f32>> {
        crate::backend::check_logits_input(&self.model, inputs, count, keep)?;
        let n0 = self.model.sizes[0];
        let out_dim = self.model.output_dim();
        // Evaluate in large chunks with a workspace of its own, so training scratch is untouched.
        let chunk = 1024.min(count.max(1));
        let mut ws = Workspace::new(&self.model.sizes, chunk);
        let mut out = vec![0.0; count * out_dim];
        let last = self.model.num_layers();
        for start in (0..count).step_by(chunk) {
            let b = chunk.min(count - start);
            forward_hooked(
                &self.model,
                &self.state.params,
                &mut ws,
                &inputs[start * n0..(start + b) * n0],
                b,
                keep,
                &self.threads,
                &mut NoHook,
            );
            out[start * out_dim..(start + b) * out_dim].copy_from_slice(&ws.acts[last][..b * out_dim]);
        }
        Ok(out)
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(self.state.clone())
    }

    fn set_state(&mut self, state: &TrainState) -> Result<()> {
        crate::backend::check_state(&self.model, state)?;
        self.state = state.clone();
        Ok(())
    }

    /// Nothing to wait for: a CPU step has finished when `train_step` returns.
    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }
}
