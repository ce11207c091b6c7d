//! The GPU step as a plan: the device buffers of a model, and the training step and the
//! evaluation pass each as one ordered list of dispatches, in the order of `cpu::forward_backward`.
//! Adding an op is one op module (`gpu/<op>.rs`, implementing `GpuOp`) plus one line here.
//!
//! Conventions as the CPU's: activation gradients are written with `=`; the gradient buffer is
//! cleared before the step (by the runtime), the weight-gradient matmul and the bias gradient
//! write theirs, transport and density add (`+=`).

use super::adam::Adam;
use super::bias_grad::BiasGrad;
use super::buffers;
use super::context::GpuContext;
use super::density::Density;
use super::hyper::HyperLayout;
use super::kernel::Dispatch;
use super::mask::Mask;
use super::matmul::{BatchDim, MatmulArgs, MatmulOp, Variant};
use super::reduce::{Reduce, Terms};
use super::softmax_xent::SoftmaxXent;
use super::step_table;
use super::transport::{TransportArgs, TransportCols, TransportRows};
use crate::config::ModelConfig;
use crate::model::{Layout, TrainState};
use crate::ops::density::density_scale;
use crate::ops::mask;
use crate::ops::reduce::LossSlots;
use anyhow::Result;

/// Every device buffer of a population of `models` networks of one shape (one network: 1), for
/// batches of up to `capacity` examples. Each network has its own copy of every buffer but the
/// mask, the head offsets and `unused`, one after the other (the strides in [`Strides`]), and its
/// own record of hyperparameters in `hyper`.
pub struct Buffers {
    pub models: usize,
    pub strides: Strides,
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub adam_m: wgpu::Buffer,
    pub adam_v: wgpu::Buffer,
    /// The batch's inputs `(B, N_0)` and labels `(B, heads)`.
    pub input: wgpu::Buffer,
    pub labels: wgpu::Buffer,
    /// Where each head starts in the output layer, and its width (`heads + 1` `u32`s).
    pub head_offsets: wgpu::Buffer,
    /// `acts[l]`, `deltas[l]` for `l = 1..=L` (index 0 unused, a 1-element buffer).
    pub acts: Vec<wgpu::Buffer>,
    pub deltas: Vec<wgpu::Buffer>,
    /// Per-row partial losses: the task's per-example losses first, then per spatial layer its
    /// transport rows and its density rows (offsets in `spatial_partials`).
    pub partials: wgpu::Buffer,
    pub spatial_partials: Vec<(usize, usize)>,
    /// The loss accumulator (`LossSlots`).
    pub acc: wgpu::Buffer,
    pub slots: LossSlots,
    /// The evaluation mask of every layer, flattened (`ops::mask::flatten`).
    pub keep: wgpu::Buffer,
    /// Bound where a kernel's binding is unused by its flags (the matmul's `bias` and `aux`).
    pub unused: wgpu::Buffer,
    /// Each network's hyperparameters (`gpu/hyper.rs`), read by transport, density, the loss
    /// reduction and Adam.
    pub hyper: wgpu::Buffer,
    /// The step table (`gpu/step_table.rs`): each network's batch and Adam step in each recording
    /// of a chunk, read by the gather, the loss, the loss reduction and Adam.
    pub steps: wgpu::Buffer,
}

/// The per-model strides (elements) of a population's buffers.
#[derive(Clone, Debug)]
pub struct Strides {
    /// Parameters, gradients and both Adam moments.
    pub params: usize,
    pub input: usize,
    pub labels: usize,
    /// `acts[l]` and `deltas[l]`.
    pub layer: Vec<usize>,
    pub partials: usize,
    pub acc: usize,
    /// A network's record in `hyper` ([`HyperLayout::stride`]).
    pub hyper: usize,
}

impl Buffers {
    /// The buffers of a population whose network `k` starts from `states[k]` with the
    /// hyperparameters of `hyper` (the networks' records, [`HyperLayout::records`]), trained up to
    /// `chunk` steps per submit.
    pub fn new(
        ctx: &GpuContext,
        model: &ModelConfig,
        layout: &Layout,
        cap: usize,
        states: &[TrainState],
        hyper: &[f32],
        chunk: usize,
    ) -> Result<Buffers> {
        let sizes = &model.sizes;
        let models = states.len().max(1);
        // Each network's copy starts at a multiple of 4 floats, so that the vec4 matmuls'
        // alignment (`MatmulArgs::vec4_ok`) holds for every network of a population.
        let r4 = |n: usize| n.div_ceil(4) * 4;
        let mut partial_len = cap;
        let mut spatial_partials = Vec::new();
        for &l in &model.spatial_layers {
            spatial_partials.push((partial_len, partial_len + sizes[l]));
            partial_len += 2 * sizes[l];
        }
        let slots = LossSlots {
            spatial: model.spatial_layers.len(),
        };
        let strides = Strides {
            params: r4(layout.len),
            input: r4(cap * sizes[0]),
            labels: r4(cap * model.heads),
            layer: sizes
                .iter()
                .enumerate()
                .map(|(l, &n)| if l == 0 { 0 } else { r4(cap * n) })
                .collect(),
            partials: r4(partial_len),
            acc: r4(slots.len()),
            hyper: HyperLayout::of(model).stride(),
        };
        if hyper.len() != strides.hyper * models {
            anyhow::bail!(
                "{} hyperparameter values for {models} networks of {} each",
                hyper.len(),
                strides.hyper
            );
        }
        let mk = |label: &str, stride: usize| buffers::storage(ctx, label, stride * models);
        let per_layer = |what: &str| -> Result<Vec<wgpu::Buffer>> {
            (0..sizes.len())
                .map(|l| {
                    let stride = if l == 0 { 1 } else { strides.layer[l] };
                    mk(&format!("{what} of layer {l} ({cap} x {})", sizes[l]), stride)
                })
                .collect()
        };
        // The networks' states one after the other, `strides.params` apart.
        let concat = |f: &dyn Fn(&TrainState) -> &[f32]| -> Vec<f32> {
            let mut all = vec![0.0; strides.params * models];
            for (k, s) in states.iter().enumerate() {
                let v = f(s);
                all[k * strides.params..k * strides.params + v.len()].copy_from_slice(v);
            }
            all
        };
        Ok(Buffers {
            models,
            params: buffers::storage_with(ctx, "parameters", &concat(&|s| &s.params.data))?,
            grads: mk("gradients", strides.params)?,
            adam_m: buffers::storage_with(ctx, "adam m", &concat(&|s| &s.adam_m))?,
            adam_v: buffers::storage_with(ctx, "adam v", &concat(&|s| &s.adam_v))?,
            input: mk(&format!("input batch ({cap} x {})", sizes[0]), strides.input)?,
            labels: mk("labels", strides.labels)?,
            head_offsets: {
                let offsets = model.head_offsets();
                let buf = buffers::storage(ctx, "head offsets", offsets.len())?;
                ctx.queue
                    .write_buffer(&buf, 0, &super::softmax_xent::offsets_bytes(&offsets));
                buf
            },
            acts: per_layer("activations")?,
            deltas: per_layer("deltas")?,
            partials: mk("partial losses", strides.partials)?,
            spatial_partials,
            acc: mk("loss accumulator", strides.acc)?,
            slots,
            keep: buffers::storage(ctx, "neuron mask", sizes[1..].iter().sum())?,
            unused: buffers::storage(ctx, "unused", 4)?,
            hyper: buffers::storage_with(ctx, "hyperparameters", hyper)?,
            steps: buffers::storage(
                ctx,
                "step table",
                step_table::len(chunk, models) * step_table::WORDS,
            )?,
            strides,
        })
    }

    /// The input of layer `l`: the batch for layer 1, else the activations of layer `l - 1`.
    fn input_of(&self, l: usize) -> &wgpu::Buffer {
        if l == 1 {
            &self.input
        } else {
            &self.acts[l - 1]
        }
    }

    /// The per-model stride of [`Buffers::input_of`]`(l)`; `shared_input`: the networks all read
    /// the batch of network 0 (an evaluation).
    fn input_stride(&self, l: usize, shared_input: bool) -> usize {
        match l {
            1 if shared_input => 0,
            1 => self.strides.input,
            _ => self.strides.layer[l - 1],
        }
    }
}

/// What a plan is built from.
pub struct PlanInputs<'a> {
    pub model: &'a ModelConfig,
    pub layout: &'a Layout,
    pub bufs: &'a Buffers,
    /// The batch size the products are shaped for (the autotune's); each recording passes its own.
    pub capacity: usize,
    /// The matmul variant of every product until the autotune chooses.
    pub variant: Variant,
    pub max_workgroups: u32,
    /// Every network of the population reads the batch of network 0 (evaluation plans).
    pub shared_input: bool,
}

impl<'a> PlanInputs<'a> {
    /// Layer `l`'s forward: `acts[l] = input · Wᵀ + bias`, the activation fused for hidden layers.
    fn forward(&self, l: usize) -> Dispatch<'a> {
        let (sizes, b) = (&self.model.sizes, self.bufs);
        let hidden = l < self.model.num_layers();
        let args = MatmulArgs::forward(
            self.capacity,
            sizes[l - 1],
            sizes[l],
            self.layout.weights[l - 1].start,
            self.layout.biases[l - 1].start,
            hidden.then_some(self.model.activation),
        );
        let op = MatmulOp {
            args,
            batch_dim: BatchDim::M,
            variant: self.variant,
        };
        Dispatch::new(
            op,
            [
                ("a", b.input_of(l)),
                ("b", &b.params),
                ("bias", &b.params),
                ("aux", &b.unused),
                ("c", &b.acts[l]),
            ],
        )
        .per_model(&[
            ("a", b.input_stride(l, self.shared_input)),
            ("b", b.strides.params),
            ("bias", b.strides.params),
            ("c", b.strides.layer[l]),
        ])
    }

    /// Layer `l`'s weight gradient: `dW = deltas[l]ᵀ · input` (`=`).
    fn weight_grad(&self, l: usize) -> Dispatch<'a> {
        let (sizes, b) = (&self.model.sizes, self.bufs);
        let args = MatmulArgs::weight_grad(
            self.capacity,
            sizes[l - 1],
            sizes[l],
            self.layout.weights[l - 1].start,
            false,
        );
        let op = MatmulOp {
            args,
            batch_dim: BatchDim::K,
            variant: self.variant,
        };
        Dispatch::new(
            op,
            [
                ("a", &b.deltas[l]),
                ("b", b.input_of(l)),
                ("bias", &b.unused),
                ("aux", &b.unused),
                ("c", &b.grads),
            ],
        )
        .per_model(&[
            ("a", b.strides.layer[l]),
            ("b", b.input_stride(l, false)),
            ("c", b.strides.params),
        ])
    }

    /// Layer `l`'s bias gradient: `dbias = Σ_rows deltas[l]`.
    fn bias_grad(&self, l: usize) -> Dispatch<'a> {
        let op = BiasGrad {
            n: self.model.sizes[l],
            dbias_off: self.layout.biases[l - 1].start,
        };
        Dispatch::new(op, [("dout", &self.bufs.deltas[l]), ("grads", &self.bufs.grads)]).per_model(&[
            ("dout", self.bufs.strides.layer[l]),
            ("grads", self.bufs.strides.params),
        ])
    }

    /// The delta of layer `l - 1`: `deltas[l-1] = (deltas[l] · W) · f'(z)`, `f'` from the layer's
    /// outputs `a = f(z)` (hidden layers only).
    fn input_grad(&self, l: usize) -> Dispatch<'a> {
        let (sizes, b) = (&self.model.sizes, self.bufs);
        let args = MatmulArgs::input_grad(
            self.capacity,
            sizes[l - 1],
            sizes[l],
            self.layout.weights[l - 1].start,
            Some(self.model.activation),
        );
        let op = MatmulOp {
            args,
            batch_dim: BatchDim::M,
            variant: self.variant,
        };
        Dispatch::new(
            op,
            [
                ("a", &b.deltas[l]),
                ("b", &b.params),
                ("bias", &b.unused),
                ("aux", &b.acts[l - 1]),
                ("c", &b.deltas[l - 1]),
            ],
        )
        .per_model(&[
            ("a", b.strides.layer[l]),
            ("b", b.strides.params),
            ("aux", b.strides.layer[l - 1]),
            ("c", b.strides.layer[l - 1]),
        ])
    }

    /// The task loss: `deltas[L]` and the per-example losses at the start of `partials`.
    fn softmax_xent(&self) -> Dispatch<'a> {
        let (b, last) = (self.bufs, self.model.num_layers());
        let op = SoftmaxXent {
            heads: self.model.heads,
            width: self.model.output_dim(),
            loss_off: 0,
        };
        Dispatch::new(
            op,
            [
                ("logits", &b.acts[last]),
                ("labels", &b.labels),
                ("dlogits", &b.deltas[last]),
                ("row_loss", &b.partials),
                ("head_offsets", &b.head_offsets),
                ("steps", &b.steps),
            ],
        )
        .per_model(&[
            ("logits", b.strides.layer[last]),
            ("labels", b.strides.labels),
            ("row_loss", b.strides.partials),
            ("steps", 1),
        ])
    }

    /// The transport of spatial layer number `s` (layer `l`), weighted by each network's own
    /// `alpha / |L|` and norms.
    fn transport_args(&self, s: usize, l: usize) -> TransportArgs {
        let (sizes, layout) = (&self.model.sizes, self.layout);
        TransportArgs {
            c: sizes[l - 1],
            oc: sizes[l],
            w_off: layout.weights[l - 1].start,
            pin_off: layout.positions[l - 1].start,
            pout_off: layout.positions[l].start,
            partial_off: self.bufs.spatial_partials[s].0,
            spatial: s,
        }
    }

    fn spatial_op<O: super::kernel::GpuOp>(&self, op: O) -> Dispatch<'a> {
        let b = self.bufs;
        Dispatch::new(
            op,
            [
                ("params", &b.params),
                ("grads", &b.grads),
                ("partials", &b.partials),
                ("hyper", &b.hyper),
            ],
        )
        .per_model(&[
            ("params", b.strides.params),
            ("partials", b.strides.partials),
            ("hyper", b.strides.hyper),
        ])
    }

    /// The density of spatial layer number `s` (layer `l`), weighted by each network's own
    /// `beta / |L|`.
    fn density(&self, s: usize, l: usize) -> Density {
        Density {
            n: self.model.sizes[l],
            p_off: self.layout.positions[l].start,
            partial_off: self.bufs.spatial_partials[s].1,
            spatial: s,
        }
    }

    fn reduce(&self, src_off: usize, acc_idx: usize, terms: Terms) -> Dispatch<'a> {
        let op = Reduce {
            src_off,
            acc_idx,
            terms,
        };
        let b = self.bufs;
        Dispatch::new(
            op,
            [
                ("src", &b.partials),
                ("acc", &b.acc),
                ("hyper", &b.hyper),
                ("steps", &b.steps),
            ],
        )
        .per_model(&[
            ("src", b.strides.partials),
            ("acc", b.strides.acc),
            ("hyper", b.strides.hyper),
            ("steps", 1),
        ])
    }

    fn adam(&self) -> Dispatch<'a> {
        let b = self.bufs;
        let op = Adam {
            n: self.layout.len,
            max_workgroups: self.max_workgroups,
        };
        Dispatch::new(
            op,
            [
                ("grads", &b.grads),
                ("params", &b.params),
                ("m", &b.adam_m),
                ("v", &b.adam_v),
                ("hyper", &b.hyper),
                ("steps", &b.steps),
            ],
        )
        .per_model(&[
            ("params", b.strides.params),
            ("hyper", b.strides.hyper),
            ("steps", 1),
        ])
    }

    fn mask(&self, l: usize) -> Dispatch<'a> {
        let op = Mask {
            n: self.model.sizes[l],
            keep_off: mask::offsets(&self.model.sizes)[l],
            max_workgroups: self.max_workgroups,
        };
        Dispatch::new(op, [("keep", &self.bufs.keep), ("acts", &self.bufs.acts[l])])
            .per_model(&[("acts", self.bufs.strides.layer[l])])
    }
}

/// One training step: forward, loss, backward, spatial costs, loss reductions, Adam.
pub fn training_step<'a>(p: &PlanInputs<'a>) -> Vec<Dispatch<'a>> {
    let last = p.model.num_layers();
    let slots = p.bufs.slots;
    let mut plan = Vec::new();
    for l in 1..=last {
        plan.push(p.forward(l));
    }
    plan.push(p.softmax_xent());
    for l in (1..=last).rev() {
        plan.push(p.weight_grad(l));
        plan.push(p.bias_grad(l));
        if l > 1 {
            plan.push(p.input_grad(l));
        }
    }
    for (s, &l) in p.model.spatial_layers.iter().enumerate() {
        plan.push(p.spatial_op(TransportRows(p.transport_args(s, l))));
        plan.push(p.spatial_op(TransportCols(p.transport_args(s, l))));
        plan.push(p.spatial_op(p.density(s, l)));
    }
    plan.push(p.reduce(0, LossSlots::TASK, Terms::BatchMean));
    for (s, &l) in p.model.spatial_layers.iter().enumerate() {
        let n = p.model.sizes[l];
        let (transport_rows, density_rows) = p.bufs.spatial_partials[s];
        plan.push(p.reduce(
            transport_rows,
            slots.transport(s),
            Terms::Hyper {
                len: n,
                at: HyperLayout::transport_scale(s),
            },
        ));
        plan.push(p.reduce(
            density_rows,
            slots.density(s),
            Terms::Fixed {
                len: n,
                scale: density_scale(n),
            },
        ));
    }
    plan.push(p.adam());
    plan
}

/// The forward pass for logits, each layer followed by its mask when `masked`.
pub fn evaluation<'a>(p: &PlanInputs<'a>, masked: bool) -> Vec<Dispatch<'a>> {
    let mut plan = Vec::new();
    for l in 1..=p.model.num_layers() {
        plan.push(p.forward(l));
        if masked {
            plan.push(p.mask(l));
        }
    }
    plan
}
