//! Finite-difference checks of every hand-derived gradient of the CPU reference.
//!
//! What is checked, and against what:
//! - `losses_equal_naive_formulas`: the loss values of `cpu::forward_backward` (task, `T(l)` and
//!   `V(l)` per spatial layer, total) equal a slow, direct f64 evaluation of METHOD.md's formulas
//!   written here (`naive_losses`), which shares no code with the reference.
//! - `gradcheck_task`, `gradcheck_transport`, `gradcheck_density`, `gradcheck_total`: the full
//!   gradient written by `cpu::forward_backward` (every weight, bias and position of every layer,
//!   so of layers `l` and `l-1` of each spatial layer `l`) against central differences, for the
//!   task loss alone (`alpha = beta = 0`), `T` alone (`alpha > 0`, `beta = 0`, every label masked so
//!   the task loss is exactly 0), `V` alone (likewise with `beta > 0`) and the total; `T` and the
//!   total under both `TransportNorm`s and both `WeightNorm`s, the task loss and the total also with
//!   each activation (`relu`, `tanh` besides the sigmoid). Entries the term cannot depend on
//!   (e.g. biases for `T`, positions for the task loss) must be exactly 0; in every tensor the term
//!   does depend on, most entries must exceed ten times the absolute tolerance, so that a missing or
//!   zeroed gradient fails. Each gradient is compared three ways:
//!   1. entry by entry with central differences of `naive_losses` in f64 (`H64`, `TOL64`);
//!   2. entry by entry with central differences of the reference's own f32 loss (`H32`, `TOL32`);
//!   3. along random directions `u`: `(L(θ+εu) − L(θ−εu)) / 2ε` against `g·u`, both losses.
//! - One test per op on its own: `transport_forward_backward`, `density_forward_backward` and
//!   `softmax_xent_forward_backward` against central differences of their own returned value (and
//!   `+=` / `=` semantics), the conventions at `w = 0` and at a zero distance, each activation
//!   against its derivative, `linear_forward`/`linear_backward` against naive triple loops, and
//!   `adam_update` against a two-step example computed by hand with `torch.optim.Adam`'s formulas.
//!
//! Random networks (`CASES`): five shapes with odd sizes, 1 to 3 heads, batches of 3 to 5, spatial
//! layers from `[3]` to `[2, 3, 4]` and `[1, 2]` (so `p_0` too), labels complete, one head per
//! example (the sequential mode) or randomly masked. Parameters from `Params::init` with
//! `Init::Torch`, inputs uniform in [0, 1) and labels from `ChaCha8Rng`; every seed is written in
//! `CASES` or in the unit test. Kinks are avoided, not skipped: weights with `|w| < 4·H32` are moved
//! to `±4·H32` (sign kept; the l1 norm's kink at 0 is then four steps away or more), and positions
//! closer than `MIN_DIST` to a neuron of their own or the previous layer are redrawn (the distance's
//! kink at 0, and its curvature ~1/d, stay far away); in a relu network, an example with a hidden
//! pre-activation closer than `RELU_MARGIN` to the relu's kink gets new inputs, and a neuron off
//! for the whole batch has its weights and bias negated (`prepare_relu`). The gradient buffer
//! starts full of NaN (every element must be written), and one workspace larger than the batch,
//! starting full of NaN, serves every evaluation of a run (as in training, where it is reused and
//! the last batch is short).
//!
//! Each check was seen to fail on deliberately broken copies of the ops (a lost factor 2 in `V`'s
//! gradient, a flipped sign or `=` for `+=` in `T`'s position gradients, `mean`'s scale, `2w` of
//! l2, `sign(0) = 1`, `alpha` without `1/|L|`, `V` on the wrong layer, the sigmoid derivative, the
//! softmax's `1/B` or mask, `dbias` not accumulated, Adam's eps under the square root).
//!
//! Run with `cargo test --test gradcheck -- --nocapture` to see the worst entry of every run.

// The naive reference loops index arrays the way the formulas do, on purpose.
#![allow(clippy::needless_range_loop)]

// The tests, by what they check; the random networks, the naive formulas and the reporting they
// share are below.
mod network;
mod ops;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use spatial_gpu::config::{Activation, Init, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::adam::{adam_update, AdamStep};
use spatial_gpu::cpu::{self, density, linear, softmax_xent, transport, Workspace};
use spatial_gpu::model::{Layout, Params};
use std::cell::RefCell;
use std::ops::Range;

// ---------------------------------------------------------------------------------------------
// Steps and tolerances
// ---------------------------------------------------------------------------------------------

/// A tolerance `abs + rel·|g|` on the difference between a hand-derived and a numerical derivative
/// `g` (the numerical one sets the scale: a hand-derived 0 where `g` is large must fail).
#[derive(Clone, Copy, Debug)]
struct Tol {
    abs: f64,
    rel: f64,
}

impl Tol {
    fn of(self, g: f64) -> f64 {
        self.abs + self.rel * g.abs()
    }
}

/// Step of the f64 central differences of `naive_losses`. That loss is evaluated in f64 on the f32
/// parameters widened to f64 and perturbed exactly (no f32 rounding of the step), so its rounding
/// error (~1e-16·|L|, |L| ≲ 10) divided by 2h is ~1e-11, and the truncation error h²/6·|L'''| is
/// ~1e-8 at most (|L'''| ≲ 1e1..1e2 here: interacting neurons are at least `MIN_DIST` apart and
/// weights at least 4·H32 from the l1 kink; the sigmoid and softmax are smooth).
const H64: f64 = 1e-4;

/// The f64 numerical derivative above is exact to ~1e-8, so this tolerance bounds the f32 rounding
/// of the hand-derived gradient itself: each entry is a short sum (≲ 20 terms of magnitude ≲ 1) of
/// f32 products, after up to four layers of f32 activations and deltas; with unit roundoff 6e-8
/// that is an absolute error of ~1e-7 and a relative one of ~1e-6 without cancellation. Measured:
/// at most 7e-8 (diff/tol ≤ 0.03; the worst entry of each run is printed), a margin of 30 or more.
const TOL64: Tol = Tol { abs: 1e-6, rel: 1e-5 };

/// Step of the f32 central differences of the reference's own loss (weights, biases, positions).
const H32: f32 = 1e-2;

/// The reference's loss is computed in f32 (then summed in f64 over rows and examples): each value
/// is off by a few roundings of |L| ≲ 10, δ ≲ 1e-6 (unit roundoff 6e-8), so the central difference
/// carries up to 2δ/2h = 1e-4 of rounding; the truncation error h²/6·|L'''| ≈ 1.7e-5·|L'''| adds
/// ≲ 5e-5 (|L'''| ≲ a few; the distance's third derivative ~φ/d² is bounded through `MIN_DIST`).
/// Hence 2e-4 absolute, plus 1e-3·|g| because the truncation grows with the entry's own curvature
/// (this also covers the gradient's own ~1e-6 relative f32 error). Measured: at most 2.6e-5
/// (diff/tol ≤ 0.11).
const TOL32: Tol = Tol { abs: 2e-4, rel: 1e-3 };

/// Length of the random directions of the directional-derivative check, in f64 and in f32.
const EPS64: f64 = 1e-4;
const EPS32: f32 = 1e-2;

/// Positions of neurons that interact (same layer, or adjacent layers) are at least this far apart.
const MIN_DIST: f32 = 0.25;

/// An entry is "significant" when it exceeds this many absolute tolerances: a zero there fails.
const SIGNIFICANT: f64 = 10.0;

// ---------------------------------------------------------------------------------------------
// Random networks
// ---------------------------------------------------------------------------------------------

/// How the labels of a case are masked (a negative label is "no label for this head").
#[derive(Clone, Copy, Debug)]
enum Masking {
    /// Every example has a label for every head (concatenated / mixed modes).
    None,
    /// Each example has a label for exactly one head (the sequential mode).
    OneHead,
    /// Each (example, head) is masked with probability 0.35; every head keeps at least one label.
    Random,
}

struct Case {
    name: &'static str,
    sizes: &'static [usize],
    heads: usize,
    /// Classes of each head when the heads differ in size (empty: `heads` equal blocks).
    classes: &'static [usize],
    spatial: &'static [usize],
    batch: usize,
    /// Seed of `Params::init`.
    init_seed: u64,
    /// Seed of the `ChaCha8Rng` that draws inputs, labels, redrawn positions and directions.
    data_seed: u64,
    masking: Masking,
}

const CASES: &[Case] = &[
    Case {
        name: "A",
        sizes: &[5, 7, 3, 4],
        heads: 2,
        classes: &[],
        spatial: &[2, 3],
        batch: 3,
        init_seed: 11,
        data_seed: 101,
        masking: Masking::None,
    },
    Case {
        name: "B",
        sizes: &[9, 6, 11, 6],
        heads: 2,
        classes: &[],
        spatial: &[3],
        batch: 5,
        init_seed: 12,
        data_seed: 102,
        masking: Masking::OneHead,
    },
    Case {
        name: "C",
        sizes: &[7, 5, 6, 9],
        heads: 3,
        classes: &[],
        spatial: &[2, 3],
        batch: 5,
        init_seed: 13,
        data_seed: 103,
        masking: Masking::Random,
    },
    Case {
        name: "D",
        sizes: &[6, 5, 7, 3, 6],
        heads: 2,
        classes: &[],
        spatial: &[2, 3, 4],
        batch: 4,
        init_seed: 14,
        data_seed: 104,
        masking: Masking::Random,
    },
    Case {
        name: "E",
        sizes: &[4, 5, 3],
        heads: 1,
        classes: &[],
        spatial: &[1, 2],
        batch: 3,
        init_seed: 15,
        data_seed: 105,
        masking: Masking::Random,
    },
    // Heads of different sizes (3 and 5 classes): the per-head offsets of the loss.
    Case {
        name: "F",
        sizes: &[6, 5, 7, 8],
        heads: 2,
        classes: &[3, 5],
        spatial: &[2, 3],
        batch: 4,
        init_seed: 16,
        data_seed: 106,
        masking: Masking::Random,
    },
];

const NORMS: [(TransportNorm, WeightNorm); 4] = [
    (TransportNorm::Paper, WeightNorm::L1),
    (TransportNorm::Paper, WeightNorm::L2),
    (TransportNorm::Mean, WeightNorm::L1),
    (TransportNorm::Mean, WeightNorm::L2),
];

/// The part of the loss under test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Term {
    Task,
    Transport,
    Density,
    Total,
}

impl Term {
    /// `(alpha, beta)`: values other than 1 so that a missing coefficient shows.
    fn alpha_beta(self) -> (f32, f32) {
        match self {
            Term::Task => (0.0, 0.0),
            Term::Transport => (0.7, 0.0),
            Term::Density => (0.0, 1.3),
            Term::Total => (1.0, 3.0),
        }
    }
    /// The activation only changes the task loss.
    fn activations(self) -> &'static [Activation] {
        match self {
            Term::Task | Term::Total => &Activation::ALL,
            Term::Transport | Term::Density => &[Activation::Sigmoid],
        }
    }
    /// The norms only change `T`.
    fn norms(self) -> &'static [(TransportNorm, WeightNorm)] {
        match self {
            Term::Task | Term::Density => &NORMS[..1],
            Term::Transport | Term::Total => &NORMS,
        }
    }
    /// `T` and `V` are isolated by masking every label: the task loss is then exactly 0.
    fn masks_every_label(self) -> bool {
        matches!(self, Term::Transport | Term::Density)
    }
}

/// Which tensor of the flat buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Weight,
    Bias,
    Position,
}

struct Tensor {
    kind: Kind,
    /// The layer, numbered as in METHOD.md.
    layer: usize,
    range: Range<usize>,
    /// Columns of the row-major tensor (`N_{l-1}` for `W_l`, 1 for `b_l`, 2 for `p_l`).
    cols: usize,
}

impl Tensor {
    fn name(&self) -> String {
        match self.kind {
            Kind::Weight => format!("W_{}", self.layer),
            Kind::Bias => format!("b_{}", self.layer),
            Kind::Position => format!("p_{}", self.layer),
        }
    }
    /// E.g. `W_2[j=3, i=1]`, `b_3[4]`, `p_1[5].y`, with the flat index.
    fn entry(&self, flat: usize) -> String {
        let k = flat - self.range.start;
        let at = match self.kind {
            Kind::Weight => format!("[j={}, i={}]", k / self.cols, k % self.cols),
            Kind::Bias => format!("[{k}]"),
            Kind::Position => format!("[{}].{}", k / 2, if k.is_multiple_of(2) { "x" } else { "y" }),
        };
        format!("{}{at} (flat {flat})", self.name())
    }
    /// Whether `term` of `model` depends on this tensor at all.
    fn depends(&self, term: Term, model: &ModelConfig) -> bool {
        let task = matches!(term, Term::Task | Term::Total) && self.kind != Kind::Position;
        let spatial = |l: usize| model.spatial_layers.contains(&l);
        let transport = matches!(term, Term::Transport | Term::Total)
            && match self.kind {
                Kind::Weight => spatial(self.layer),
                Kind::Bias => false,
                Kind::Position => spatial(self.layer) || spatial(self.layer + 1),
            };
        let density =
            matches!(term, Term::Density | Term::Total) && self.kind == Kind::Position && spatial(self.layer);
        task || transport || density
    }
}

fn tensors(layout: &Layout) -> Vec<Tensor> {
    let sizes = &layout.sizes;
    let mut out = Vec::new();
    for l in 1..sizes.len() {
        out.push(Tensor {
            kind: Kind::Weight,
            layer: l,
            range: layout.weights[l - 1].clone(),
            cols: sizes[l - 1],
        });
        out.push(Tensor {
            kind: Kind::Bias,
            layer: l,
            range: layout.biases[l - 1].clone(),
            cols: 1,
        });
    }
    for l in 0..sizes.len() {
        out.push(Tensor {
            kind: Kind::Position,
            layer: l,
            range: layout.positions[l].clone(),
            cols: 2,
        });
    }
    out
}

/// A network, a batch and the loss configuration of one run.
struct Setup {
    label: String,
    model: ModelConfig,
    params: Params,
    inputs: Vec<f32>,
    labels: Vec<i32>,
    b: usize,
    rng: ChaCha8Rng,
    /// One workspace for every evaluation, larger than the batch and starting full of NaN, as in
    /// training (where it is reused and the last batch is short): nothing stale may leak in.
    ws: RefCell<Workspace>,
}

fn dist(p: &[f32], j: usize, q: &[f32], k: usize) -> f32 {
    ((p[2 * j] - q[2 * k]).powi(2) + (p[2 * j + 1] - q[2 * k + 1]).powi(2)).sqrt()
}

/// The hidden pre-activations of the network `theta` for the input `x`, in f64: `z[l - 1][j]` for
/// the hidden layers `l = 1..L`.
fn hidden_preactivations(model: &ModelConfig, layout: &Layout, theta: &[f32], x: &[f32]) -> Vec<Vec<f64>> {
    let n = &model.sizes;
    let mut a: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut out = Vec::new();
    for l in 1..n.len() - 1 {
        let w = &theta[layout.weights[l - 1].clone()];
        let bias = &theta[layout.biases[l - 1].clone()];
        let z: Vec<f64> = (0..n[l])
            .map(|j| {
                bias[j] as f64
                    + (0..n[l - 1])
                        .map(|i| w[j * n[l - 1] + i] as f64 * a[i])
                        .sum::<f64>()
            })
            .collect();
        a = z.iter().map(|&v| activation64(model.activation, v)).collect();
        out.push(z);
    }
    out
}

/// Moves a relu network off its kinks and keeps every neuron in use: repeatedly, a hidden neuron
/// that is off (`z < 0`) for every example of the batch is turned around (its weights and bias
/// negated: `z → −z`, the same distances from the kink), and an example with a pre-activation closer
/// than `RELU_MARGIN` to 0 gets new inputs, until neither happens.
fn prepare_relu(model: &ModelConfig, params: &mut Params, inputs: &mut [f32], rng: &mut ChaCha8Rng) {
    let n0 = model.sizes[0];
    for _ in 0..10_000 {
        let z: Vec<Vec<Vec<f64>>> = inputs
            .chunks_exact(n0)
            .map(|x| hidden_preactivations(model, &params.layout, &params.data, x))
            .collect();
        let dead = (0..z[0].len()).find_map(|k| {
            (0..z[0][k].len())
                .find(|&j| z.iter().all(|zr| zr[k][j] < 0.0))
                .map(|j| (k + 1, j))
        });
        if let Some((l, j)) = dead {
            let c = model.sizes[l - 1];
            let w = params.layout.weights[l - 1].start + j * c;
            params.data[w..w + c].iter_mut().for_each(|v| *v = -*v);
            let b = params.layout.biases[l - 1].start + j;
            params.data[b] = -params.data[b];
            continue;
        }
        let near = z
            .iter()
            .position(|zr| zr.iter().flatten().any(|v| v.abs() < RELU_MARGIN));
        match near {
            Some(r) => inputs[r * n0..(r + 1) * n0]
                .iter_mut()
                .for_each(|v| *v = rng.random::<f32>()),
            None => return,
        }
    }
    panic!("no inputs keep this relu network off its kinks with every neuron in use");
}

/// A relu network's hidden pre-activations stay at least this far from the kink at 0: a step of
/// `H32` in one weight or bias moves a pre-activation by about `H32·|a| ≲ 0.02` (inputs in [0, 1),
/// `Init::Torch` weights), so no difference quotient straddles the kink.
const RELU_MARGIN: f64 = 0.05;

impl Setup {
    fn new(case: &Case, term: Term, norm: TransportNorm, weight_norm: WeightNorm, act: Activation) -> Setup {
        let (alpha, beta) = term.alpha_beta();
        let model = ModelConfig {
            sizes: case.sizes.to_vec(),
            heads: case.heads,
            tasks: case
                .classes
                .iter()
                .enumerate()
                .map(|(t, &n)| spatial_gpu::config::TaskHead::new(&format!("t{t}"), n))
                .collect(),
            spatial_layers: case.spatial.to_vec(),
            alpha,
            beta,
            transport_norm: norm,
            weight_norm,
            init: Init::Torch,
            activation: act,
        };
        model.validate().expect("test configuration is valid");
        let mut params = Params::init(&model, case.init_seed);
        let mut rng = ChaCha8Rng::seed_from_u64(case.data_seed);
        // Keep every weight at least 4 steps away from the l1 norm's kink at 0 (sign kept).
        let min_w = 4.0 * H32;
        let t = params.tensors_mut();
        for w in t.weights.into_iter().flat_map(|w| w.iter_mut()) {
            if w.abs() < min_w {
                *w = if *w < 0.0 { -min_w } else { min_w };
            }
        }
        // Redraw any position closer than MIN_DIST to an earlier neuron of its layer or the layer before.
        let mut positions = t.positions;
        for l in 0..positions.len() {
            let (before, rest) = positions.split_at_mut(l);
            let p = &mut *rest[0];
            let prev: &[f32] = if l > 0 { &*before[l - 1] } else { &[] };
            for j in 0..p.len() / 2 {
                let too_close = |p: &[f32]| {
                    (0..j).any(|k| dist(p, j, p, k) < MIN_DIST)
                        || (0..prev.len() / 2).any(|k| dist(p, j, prev, k) < MIN_DIST)
                };
                while too_close(p) {
                    p[2 * j] = 1.5 * rng.sample::<f32, _>(StandardNormal);
                    p[2 * j + 1] = 1.5 * rng.sample::<f32, _>(StandardNormal);
                }
            }
        }
        let b = case.batch;
        let mut inputs: Vec<f32> = (0..b * case.sizes[0]).map(|_| rng.random::<f32>()).collect();
        // The relu's kink is avoided like the others, and no neuron is off for the whole batch
        // (its gradients would all be 0, and the check would mean little).
        if act == Activation::Relu {
            prepare_relu(&model, &mut params, &mut inputs, &mut rng);
        }
        let classes = model.head_sizes();
        let mut labels: Vec<i32> = (0..b * case.heads)
            .map(|k| rng.random_range(0..classes[k % case.heads] as i32))
            .collect();
        for r in 0..b {
            let own_head = rng.random_range(0..case.heads);
            for h in 0..case.heads {
                let masked = match case.masking {
                    Masking::None => false,
                    Masking::OneHead => h != own_head,
                    // Example h % b always keeps head h's label, so that no head is left without one.
                    Masking::Random => r != h % b && rng.random::<f32>() < 0.35,
                };
                if masked || term.masks_every_label() {
                    labels[r * case.heads + h] = -1;
                }
            }
        }
        let label = format!(
            "case {} {:?} {act} sizes {:?} heads {} spatial {:?} B={} {norm:?}/{weight_norm:?}",
            case.name, term, case.sizes, case.heads, case.spatial, b
        );
        let mut ws = Workspace::new(&model.sizes, b + 3);
        ws.acts
            .iter_mut()
            .chain(ws.deltas.iter_mut())
            .for_each(|v| v.fill(f32::NAN));
        Setup {
            label,
            model,
            params,
            inputs,
            labels,
            b,
            rng,
            ws: RefCell::new(ws),
        }
    }

    /// The reference's losses and full gradient at `params`.
    fn reference(&self, params: &Params) -> (spatial_gpu::backend::Losses, Vec<f32>) {
        let mut grads = vec![f32::NAN; params.data.len()];
        let ws = &mut self.ws.borrow_mut();
        let losses = cpu::forward_backward(
            &self.model,
            params,
            ws,
            &mut grads,
            &self.inputs,
            &self.labels,
            self.b,
        );
        (losses, grads)
    }

    fn naive(&self, theta: &[f64]) -> NaiveLosses {
        naive_losses(
            &self.model,
            &self.params.layout,
            theta,
            &self.inputs,
            &self.labels,
            self.b,
        )
    }

    fn theta64(&self) -> Vec<f64> {
        self.params.data.iter().map(|&v| v as f64).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The formulas of METHOD.md, evaluated directly in f64
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct NaiveLosses {
    task: f64,
    transport: Vec<f64>,
    density: Vec<f64>,
    total: f64,
}

/// METHOD.md's losses, written as literally as possible, in f64, from the flat parameters `theta`
/// (the layout of `layout`): hidden layers through the activation (`activation64`), linear output; per example the cross-entropy
/// `−ln(e^{z_y} / Σ_k e^{z_k})` of each labelled head, summed over heads, averaged over the batch;
/// `T(l) = c · Σ_{i,j} φ(W_l[j,i]) · ‖p_{l-1}(i) − p_l(j)‖`; `V(l) = 1/N_l² Σ_{j,k} e^{−‖p_l(j) − p_l(k)‖}`;
/// `total = task + 1/|L| Σ_{l∈L} (α·T(l) + β·V(l))`.
fn naive_losses(
    model: &ModelConfig,
    layout: &Layout,
    theta: &[f64],
    inputs: &[f32],
    labels: &[i32],
    b: usize,
) -> NaiveLosses {
    let n = &model.sizes;
    let last = n.len() - 1;
    let w = |l: usize, j: usize, i: usize| theta[layout.weights[l - 1].start + j * n[l - 1] + i];
    let bias = |l: usize, j: usize| theta[layout.biases[l - 1].start + j];
    let p = |l: usize, j: usize| {
        let s = layout.positions[l].start + 2 * j;
        (theta[s], theta[s + 1])
    };
    let dist = |(x1, y1): (f64, f64), (x2, y2): (f64, f64)| ((x1 - x2).powi(2) + (y1 - y2).powi(2)).sqrt();

    let offsets = model.head_offsets();
    let mut task = 0.0;
    for r in 0..b {
        let mut a: Vec<f64> = (0..n[0]).map(|i| inputs[r * n[0] + i] as f64).collect();
        for l in 1..=last {
            let mut z = vec![0.0; n[l]];
            for j in 0..n[l] {
                z[j] = bias(l, j);
                for i in 0..n[l - 1] {
                    z[j] += w(l, j, i) * a[i];
                }
            }
            a = if l < last {
                z.iter().map(|&v| activation64(model.activation, v)).collect()
            } else {
                z
            };
        }
        for h in 0..model.heads {
            let y = labels[r * model.heads + h];
            if y < 0 {
                continue;
            }
            let z = &a[offsets[h]..offsets[h + 1]];
            let sum: f64 = z.iter().map(|v| v.exp()).sum();
            task += -(z[y as usize].exp() / sum).ln();
        }
    }
    task /= b as f64;

    let mut transport = Vec::new();
    let mut density = Vec::new();
    for &l in &model.spatial_layers {
        let c = match model.transport_norm {
            TransportNorm::Paper => 1.0 / n[l] as f64,
            TransportNorm::Mean => 1.0 / (n[l - 1] * n[l]) as f64,
        };
        let mut t = 0.0;
        for i in 0..n[l - 1] {
            for j in 0..n[l] {
                let phi = match model.weight_norm {
                    WeightNorm::L1 => w(l, j, i).abs(),
                    WeightNorm::L2 => w(l, j, i).powi(2),
                };
                t += phi * dist(p(l - 1, i), p(l, j));
            }
        }
        transport.push(c * t);
        let mut v = 0.0;
        for j in 0..n[l] {
            for k in 0..n[l] {
                v += (-dist(p(l, j), p(l, k))).exp();
            }
        }
        density.push(v / (n[l] * n[l]) as f64);
    }
    let (alpha, beta) = (model.alpha as f64, model.beta as f64);
    let spatial: f64 = transport
        .iter()
        .zip(&density)
        .map(|(t, v)| alpha * t + beta * v)
        .sum();
    let total = task + spatial / model.spatial_layers.len() as f64;
    NaiveLosses {
        task,
        transport,
        density,
        total,
    }
}

/// The activation `f(z)` in f64, from its definition (METHOD.md, "Activations").
fn activation64(act: Activation, z: f64) -> f64 {
    match act {
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Relu => z.max(0.0),
        Activation::Tanh => z.tanh(),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison and reporting
// ---------------------------------------------------------------------------------------------

/// The outcome of comparing one gradient with its numerical estimate.
struct Report {
    what: String,
    checked: usize,
    /// The largest `|hand − numerical|`, and the largest ratio of it to the tolerance, with where.
    max_diff: f64,
    max_ratio: f64,
    worst: String,
    failures: Vec<String>,
}

impl Report {
    fn new(what: impl Into<String>) -> Report {
        Report {
            what: what.into(),
            checked: 0,
            max_diff: 0.0,
            max_ratio: 0.0,
            worst: String::new(),
            failures: Vec::new(),
        }
    }

    fn compare(&mut self, name: &dyn Fn() -> String, hand: f64, numerical: f64, tol: Tol) {
        self.checked += 1;
        let diff = (hand - numerical).abs();
        let allowed = tol.of(numerical);
        let ratio = diff / allowed;
        // A NaN anywhere is the worst entry and a failure.
        if ratio.is_nan() || ratio > self.max_ratio {
            self.max_ratio = if ratio.is_nan() { f64::INFINITY } else { ratio };
            self.worst = format!("{}: hand {hand:.8e}, numerical {numerical:.8e}", name());
        }
        self.max_diff = self.max_diff.max(diff);
        if diff.is_nan() || diff > allowed {
            self.failures.push(format!(
                "{}: {}: hand {hand:.8e} vs numerical {numerical:.8e}, |diff| {diff:.3e} > tol {allowed:.3e}",
                self.what,
                name()
            ));
        }
    }

    fn summary(&self) -> String {
        format!(
            "{}: {} checked, max |diff| {:.3e}, max diff/tol {:.3} at {}",
            self.what, self.checked, self.max_diff, self.max_ratio, self.worst
        )
    }
}

/// Prints every report, and panics listing the failures (the first 40) and the worst entries.
fn finish(reports: Vec<Report>) {
    let mut failures = Vec::new();
    for r in &reports {
        println!("{}", r.summary());
        failures.extend(r.failures.iter().cloned());
    }
    if !failures.is_empty() {
        let worst: Vec<String> = reports
            .iter()
            .filter(|r| !r.failures.is_empty())
            .map(Report::summary)
            .collect();
        panic!(
            "{} gradient entries out of tolerance; first ones:\n{}\nworst of each failing run:\n{}",
            failures.len(),
            failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n"),
            worst.join("\n")
        );
    }
}
