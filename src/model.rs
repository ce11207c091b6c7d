//! The parameters of a spatial network and where each tensor lives in one flat buffer.
//!
//! Every parameter (weights, biases, positions) sits in one `Vec<f32>` so that the optimiser is a
//! single pass over one buffer, gradients and Adam moments share the same layout, and the GPU keeps
//! each of them in a single storage buffer. Each tensor starts at a multiple of
//! [`TENSOR_ALIGN`] floats (256 bytes), the storage-buffer offset alignment every wgpu adapter
//! accepts, so a tensor can be bound on its own; the padding stays zero forever (zero gradient).
//!
//! Conventions (as in METHOD.md): layers are numbered 0 (input) to `L` (output). `W_l` (for
//! `l = 1..=L`) is `(N_l, N_{l-1})` row-major, `W_l[j, i]` the weight from neuron `i` of layer `l-1`
//! to neuron `j` of layer `l`. `b_l` is `(N_l)`. `p_l` (for `l = 0..=L`) is `(N_l, 2)`, the
//! position of each neuron in its layer's plane.

use crate::config::{Init, ModelConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::ops::Range;

/// Tensor offsets are multiples of this many `f32`s (256 bytes).
pub const TENSOR_ALIGN: usize = 64;

/// Where each tensor of a model lives in the flat parameter buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub sizes: Vec<usize>,
    /// `weights[l - 1]` is the range of `W_l`.
    pub weights: Vec<Range<usize>>,
    /// `biases[l - 1]` is the range of `b_l`.
    pub biases: Vec<Range<usize>>,
    /// `positions[l]` is the range of `p_l`, for every layer including the input.
    pub positions: Vec<Range<usize>>,
    /// Total length of the buffer, padding included.
    pub len: usize,
}

fn align(n: usize) -> usize {
    n.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}

impl Layout {
    /// The layout for layer sizes `sizes` (input first). Order: `W_1, b_1, ..., W_L, b_L, p_0..p_L`.
    pub fn new(sizes: &[usize]) -> Layout {
        let mut at = 0;
        let mut take = |n: usize| {
            let r = at..at + n;
            at = align(at + n);
            r
        };
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for l in 1..sizes.len() {
            weights.push(take(sizes[l] * sizes[l - 1]));
            biases.push(take(sizes[l]));
        }
        let positions = sizes.iter().map(|&n| take(2 * n)).collect();
        Layout {
            sizes: sizes.to_vec(),
            weights,
            biases,
            positions,
            len: at,
        }
    }

    pub fn num_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Splits a buffer of this layout into disjoint mutable views of each tensor.
    pub fn split_mut<'a>(&self, data: &'a mut [f32]) -> TensorsMut<'a> {
        assert_eq!(data.len(), self.len, "buffer does not have this layout's length");
        // All ranges, in increasing order of their start, each tagged with where it goes.
        let mut ranges: Vec<(usize, usize, Range<usize>)> = Vec::new();
        for l in 0..self.num_layers() {
            ranges.push((0, l, self.weights[l].clone()));
            ranges.push((1, l, self.biases[l].clone()));
        }
        for (l, r) in self.positions.iter().enumerate() {
            ranges.push((2, l, r.clone()));
        }
        ranges.sort_by_key(|(_, _, r)| r.start);
        let mut w: Vec<Option<&'a mut [f32]>> = (0..self.num_layers()).map(|_| None).collect();
        let mut b: Vec<Option<&'a mut [f32]>> = (0..self.num_layers()).map(|_| None).collect();
        let mut p: Vec<Option<&'a mut [f32]>> = (0..self.sizes.len()).map(|_| None).collect();
        let mut rest = data;
        let mut consumed = 0;
        for (kind, l, r) in ranges {
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(r.start - consumed);
            let (view, tail) = tail.split_at_mut(r.len());
            rest = tail;
            consumed = r.end;
            match kind {
                0 => w[l] = Some(view),
                1 => b[l] = Some(view),
                _ => p[l] = Some(view),
            }
        }
        TensorsMut {
            weights: w.into_iter().map(Option::unwrap).collect(),
            biases: b.into_iter().map(Option::unwrap).collect(),
            positions: p.into_iter().map(Option::unwrap).collect(),
        }
    }
}

/// Mutable views of every tensor of one flat buffer (see [`Layout::split_mut`]).
pub struct TensorsMut<'a> {
    pub weights: Vec<&'a mut [f32]>,
    pub biases: Vec<&'a mut [f32]>,
    pub positions: Vec<&'a mut [f32]>,
}

/// The trainable parameters of a network, in one flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub layout: Layout,
    pub data: Vec<f32>,
}

impl Params {
    pub fn zeros(sizes: &[usize]) -> Params {
        let layout = Layout::new(sizes);
        let data = vec![0.0; layout.len];
        Params { layout, data }
    }

    /// `W_l` for `l` in `1..=L`, `(N_l, N_{l-1})` row-major.
    pub fn weight(&self, l: usize) -> &[f32] {
        &self.data[self.layout.weights[l - 1].clone()]
    }
    /// `b_l` for `l` in `1..=L`.
    pub fn bias(&self, l: usize) -> &[f32] {
        &self.data[self.layout.biases[l - 1].clone()]
    }
    /// `p_l` for `l` in `0..=L`, `(N_l, 2)` row-major.
    pub fn position(&self, l: usize) -> &[f32] {
        &self.data[self.layout.positions[l].clone()]
    }
    pub fn tensors_mut(&mut self) -> TensorsMut<'_> {
        self.layout.split_mut(&mut self.data)
    }

    /// Initial parameters per METHOD.md and the `init` option, all drawn from one seed.
    ///
    /// Draw order (fixed, so a seed means the same network on every backend): for each layer
    /// `l = 1..=L`, the weights row by row then the biases; then the positions of layers `0..=L`.
    pub fn init(config: &ModelConfig, seed: u64) -> Params {
        let mut params = Params::zeros(&config.sizes);
        let mut rng = ChaCha8Rng::seed_from_u64(crate::rng::stream_seed(seed, crate::rng::INIT_STREAM, 0));
        let sizes = config.sizes.clone();
        let mut t = params.tensors_mut();
        for l in 1..sizes.len() {
            let (fan_in, fan_out) = (sizes[l - 1] as f32, sizes[l] as f32);
            let (w_bound, b_bound) = match config.init {
                Init::Torch => (1.0 / fan_in.sqrt(), 1.0 / fan_in.sqrt()),
                Init::Xavier => ((6.0 / (fan_in + fan_out)).sqrt(), 0.0),
            };
            for w in t.weights[l - 1].iter_mut() {
                *w = uniform(&mut rng, w_bound);
            }
            for b in t.biases[l - 1].iter_mut() {
                *b = if b_bound > 0.0 {
                    uniform(&mut rng, b_bound)
                } else {
                    0.0
                };
            }
        }
        for p in t.positions.iter_mut() {
            for x in p.iter_mut() {
                *x = rng.sample(StandardNormal);
            }
        }
        params
    }
}

/// Uniform in `[-bound, bound)`.
fn uniform(rng: &mut impl Rng, bound: f32) -> f32 {
    (rng.random::<f32>() * 2.0 - 1.0) * bound
}

/// Everything an optimiser step depends on: parameters, Adam's moments and its step count.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub params: Params,
    /// Adam's first moment, same layout as the parameters.
    pub adam_m: Vec<f32>,
    /// Adam's second moment, same layout as the parameters.
    pub adam_v: Vec<f32>,
    /// Number of Adam steps taken so far.
    pub step: u64,
}

impl TrainState {
    pub fn new(params: Params) -> TrainState {
        let n = params.data.len();
        TrainState {
            params,
            adam_m: vec![0.0; n],
            adam_v: vec![0.0; n],
            step: 0,
        }
    }
}

/// Which neurons of each layer are switched on (1.0) or off (0.0), for evaluating a subnetwork:
/// `keep[l]` has `N_l` entries for `l = 1..=L` (`keep[0]`, the input, is ignored). A neuron switched
/// off has activation 0, so it passes nothing on.
pub type NeuronMask = Vec<Vec<f32>>;
