//! Finite-difference checks of every hand-derived gradient of the CPU reference (issue 2, item 4).
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
//!   total under both `TransportNorm`s and both `WeightNorm`s. Entries the term cannot depend on
//!   (e.g. biases for `T`, positions for the task loss) must be exactly 0; in every tensor the term
//!   does depend on, most entries must exceed ten times the absolute tolerance, so that a missing or
//!   zeroed gradient fails. Each gradient is compared three ways:
//!   1. entry by entry with central differences of `naive_losses` in f64 (`H64`, `TOL64`);
//!   2. entry by entry with central differences of the reference's own f32 loss (`H32`, `TOL32`);
//!   3. along random directions `u`: `(L(θ+εu) − L(θ−εu)) / 2ε` against `g·u`, both losses.
//! - One test per op on its own: `transport_forward_backward`, `density_forward_backward` and
//!   `softmax_xent_forward_backward` against central differences of their own returned value (and
//!   `+=` / `=` semantics), the conventions at `w = 0` and at a zero distance, `sigmoid` against its
//!   derivative, `linear_forward`/`linear_backward` against naive triple loops, and `adam_update`
//!   against a two-step example computed by hand with `torch.optim.Adam`'s formulas.
//!
//! Random networks (`CASES`): five shapes with odd sizes, 1 to 3 heads, batches of 3 to 5, spatial
//! layers from `[3]` to `[2, 3, 4]` and `[1, 2]` (so `p_0` too), labels complete, one head per
//! example (the sequential mode) or randomly masked. Parameters from `Params::init` with
//! `Init::Torch`, inputs uniform in [0, 1) and labels from `ChaCha8Rng`; every seed is written in
//! `CASES` or in the unit test. Kinks are avoided, not skipped: weights with `|w| < 4·H32` are moved
//! to `±4·H32` (sign kept; the l1 norm's kink at 0 is then four steps away or more), and positions
//! closer than `MIN_DIST` to a neuron of their own or the previous layer are redrawn (the distance's
//! kink at 0, and its curvature ~1/d, stay far away). The gradient buffer starts full of NaN (every
//! element must be written), and one workspace larger than the batch, starting full of NaN, serves
//! every evaluation of a run (as in training, where it is reused and the last batch is short).
//!
//! Each check was seen to fail on deliberately broken copies of the ops (a lost factor 2 in `V`'s
//! gradient, a flipped sign or `=` for `+=` in `T`'s position gradients, `mean`'s scale, `2w` of
//! l2, `sign(0) = 1`, `alpha` without `1/|L|`, `V` on the wrong layer, the sigmoid derivative, the
//! softmax's `1/B` or mask, `dbias` not accumulated, Adam's eps under the square root).
//!
//! Run with `cargo test --test gradcheck -- --nocapture` to see the worst entry of every run.

// The naive reference loops index arrays the way the formulas do, on purpose.
#![allow(clippy::needless_range_loop)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use spatial_gpu::config::{Init, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::adam::{adam_update, AdamStep};
use spatial_gpu::cpu::{self, density, linear, sigmoid, softmax_xent, transport, Workspace};
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
        spatial: &[1, 2],
        batch: 3,
        init_seed: 15,
        data_seed: 105,
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

impl Setup {
    fn new(case: &Case, term: Term, norm: TransportNorm, weight_norm: WeightNorm) -> Setup {
        let (alpha, beta) = term.alpha_beta();
        let model = ModelConfig {
            sizes: case.sizes.to_vec(),
            heads: case.heads,
            spatial_layers: case.spatial.to_vec(),
            alpha,
            beta,
            transport_norm: norm,
            weight_norm,
            init: Init::Torch,
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
        let inputs: Vec<f32> = (0..b * case.sizes[0]).map(|_| rng.random::<f32>()).collect();
        let classes = model.head_size() as i32;
        let mut labels: Vec<i32> = (0..b * case.heads)
            .map(|_| rng.random_range(0..classes))
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
            "case {} {:?} sizes {:?} heads {} spatial {:?} B={} {norm:?}/{weight_norm:?}",
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
/// (the layout of `layout`): sigmoid hidden layers, linear output; per example the cross-entropy
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

    let classes = n[last] / model.heads;
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
                z.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect()
            } else {
                z
            };
        }
        for h in 0..model.heads {
            let y = labels[r * model.heads + h];
            if y < 0 {
                continue;
            }
            let z = &a[h * classes..(h + 1) * classes];
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

// ---------------------------------------------------------------------------------------------
// Whole-network checks
// ---------------------------------------------------------------------------------------------

#[test]
fn losses_equal_naive_formulas() {
    let mut reports = Vec::new();
    for term in [Term::Task, Term::Transport, Term::Density, Term::Total] {
        for case in CASES {
            for &(norm, weight_norm) in term.norms() {
                let s = Setup::new(case, term, norm, weight_norm);
                let (got, _) = s.reference(&s.params);
                let want = s.naive(&s.theta64());
                println!("{}: reference {got:?}\n    naive {want:?}", s.label);
                assert_eq!(got.transport.len(), s.model.spatial_layers.len());
                assert_eq!(got.density.len(), s.model.spatial_layers.len());
                if term.masks_every_label() {
                    assert_eq!(
                        got.task, 0.0,
                        "{}: every label is masked, the task loss must be 0",
                        s.label
                    );
                }
                // f32 forward vs f64 formulas: each value is a short f32 sum of terms of size ≲ 5,
                // exact to a few ulps (unit roundoff 6e-8). Measured: at most 9e-8 (diff/tol ≤ 0.04).
                let tol = Tol { abs: 1e-7, rel: 2e-6 };
                let mut r = Report::new(format!("{} loss values", s.label));
                r.compare(&|| "task".into(), got.task, want.task, tol);
                for (k, &l) in s.model.spatial_layers.iter().enumerate() {
                    r.compare(&|| format!("T({l})"), got.transport[k], want.transport[k], tol);
                    r.compare(&|| format!("V({l})"), got.density[k], want.density[k], tol);
                }
                r.compare(&|| "total".into(), got.total, want.total, tol);
                reports.push(r);
            }
        }
    }
    finish(reports);
}

/// Checks the reference's gradient of `term` on every case and norm (see the module comment).
fn gradcheck(term: Term) {
    let mut reports = Vec::new();
    for case in CASES {
        for &(norm, weight_norm) in term.norms() {
            let mut s = Setup::new(case, term, norm, weight_norm);
            let (_, grad) = s.reference(&s.params);
            let layout = s.params.layout.clone();
            let all = tensors(&layout);
            let theta = s.theta64();

            // Every element is written (the buffer was filled with NaN), the padding is 0, and
            // what the term cannot depend on is exactly 0.
            let mut structure = Report::new(format!("{} structure", s.label));
            let in_tensor = |k: usize| all.iter().find(|t| t.range.contains(&k));
            for (k, &g) in grad.iter().enumerate() {
                let zero_expected = match in_tensor(k) {
                    None => true,
                    Some(t) => !t.depends(term, &s.model),
                };
                if !g.is_finite() || (zero_expected && g != 0.0) {
                    let name = in_tensor(k).map_or(format!("padding (flat {k})"), |t| t.entry(k));
                    structure.failures.push(format!(
                        "{}: {name}: gradient {g:e}, expected exactly 0",
                        structure.what
                    ));
                }
                structure.checked += 1;
            }

            // 1. Entry by entry, central differences of the f64 formulas.
            let mut r64 = Report::new(format!("{} f64 FD (h={H64:e})", s.label));
            let mut th = theta.clone();
            let mut fd64 = vec![0.0; grad.len()];
            for t in &all {
                for k in t.range.clone() {
                    th[k] = theta[k] + H64;
                    let up = s.naive(&th).total;
                    th[k] = theta[k] - H64;
                    let down = s.naive(&th).total;
                    th[k] = theta[k];
                    fd64[k] = (up - down) / (2.0 * H64);
                    r64.compare(&|| t.entry(k), grad[k] as f64, fd64[k], TOL64);
                }
                // Most entries of a tensor the term depends on must be well above the tolerance.
                if t.depends(term, &s.model) {
                    let n = t.range.len();
                    let big = t
                        .range
                        .clone()
                        .filter(|&k| fd64[k].abs() > SIGNIFICANT * TOL64.abs)
                        .count();
                    if 2 * big < n {
                        r64.failures.push(format!(
                            "{}: only {big} of the {n} entries of {} exceed {SIGNIFICANT}·abs tol: the check means little",
                            r64.what,
                            t.name()
                        ));
                    }
                }
            }

            // 2. Entry by entry, central differences of the reference's own f32 loss.
            let mut r32 = Report::new(format!("{} f32 FD (h={H32:e})", s.label));
            let mut p = s.params.clone();
            let (mut dep, mut big32) = (0, 0);
            for t in &all {
                if t.depends(term, &s.model) {
                    dep += t.range.len();
                    big32 += t
                        .range
                        .clone()
                        .filter(|&k| fd64[k].abs() > SIGNIFICANT * TOL32.abs)
                        .count();
                }
                for k in t.range.clone() {
                    let x = s.params.data[k];
                    p.data[k] = x + H32;
                    let up = s.reference(&p).0.total;
                    let step_up = p.data[k] as f64;
                    p.data[k] = x - H32;
                    let down = s.reference(&p).0.total;
                    let step = step_up - p.data[k] as f64;
                    p.data[k] = x;
                    r32.compare(&|| t.entry(k), grad[k] as f64, (up - down) / step, TOL32);
                }
            }

            // 3. Directional derivatives along random unit directions (zero on the padding).
            let mut rdir = Report::new(format!("{} directional", s.label));
            for d in 0..3 {
                let mut u = vec![0.0f64; grad.len()];
                for t in &all {
                    for k in t.range.clone() {
                        u[k] = s.rng.sample(StandardNormal);
                    }
                }
                let norm_u = u.iter().map(|v| v * v).sum::<f64>().sqrt();
                u.iter_mut().for_each(|v| *v /= norm_u);
                let gu: f64 = grad.iter().zip(&u).map(|(&g, v)| g as f64 * v).sum();
                // g·u must be well above the tolerance, or the check would pass for g = 0.
                if gu.abs() < SIGNIFICANT * TOL64.abs {
                    rdir.failures.push(format!(
                        "{}: direction {d}: g·u = {gu:e} is too small to mean anything",
                        rdir.what
                    ));
                }
                // f64 formulas.
                let along = |e: f64| theta.iter().zip(&u).map(|(t, v)| t + e * v).collect::<Vec<_>>();
                let fd = (s.naive(&along(EPS64)).total - s.naive(&along(-EPS64)).total) / (2.0 * EPS64);
                rdir.compare(&|| format!("direction {d}, f64 (eps {EPS64:e})"), gu, fd, TOL64);
                // The reference's f32 loss; the f32 rounding of θ ± εu changes the step, so the
                // hand value is g·(θ₊ − θ₋) / 2ε with the steps actually taken.
                let mut up = s.params.clone();
                let mut down = s.params.clone();
                for k in 0..grad.len() {
                    up.data[k] = (theta[k] + EPS32 as f64 * u[k]) as f32;
                    down.data[k] = (theta[k] - EPS32 as f64 * u[k]) as f32;
                }
                let g_step: f64 = (0..grad.len())
                    .map(|k| grad[k] as f64 * (up.data[k] as f64 - down.data[k] as f64))
                    .sum::<f64>()
                    / (2.0 * EPS32 as f64);
                let fd = (s.reference(&up).0.total - s.reference(&down).0.total) / (2.0 * EPS32 as f64);
                rdir.compare(
                    &|| format!("direction {d}, f32 (eps {EPS32:e})"),
                    g_step,
                    fd,
                    TOL32,
                );
            }
            println!(
                "{}: {big32} of the {dep} entries it depends on exceed {SIGNIFICANT}x the f32 abs tol",
                s.label
            );
            if 4 * big32 < dep {
                r32.failures.push(format!(
                    "{}: only {big32} of the {dep} entries the term depends on exceed {SIGNIFICANT}·abs tol",
                    r32.what
                ));
            }
            reports.extend([structure, r64, r32, rdir]);
        }
    }
    finish(reports);
}

#[test]
fn gradcheck_task() {
    gradcheck(Term::Task);
}

#[test]
fn gradcheck_transport() {
    gradcheck(Term::Transport);
}

#[test]
fn gradcheck_density() {
    gradcheck(Term::Density);
}

#[test]
fn gradcheck_total() {
    gradcheck(Term::Total);
}

// ---------------------------------------------------------------------------------------------
// Each op on its own
// ---------------------------------------------------------------------------------------------

fn normals(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| scale * rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// `n` points in the plane, standard normal, each at least `MIN_DIST` from those before it and from
/// every point of `others`.
fn spread_points(rng: &mut ChaCha8Rng, n: usize, others: &[f32]) -> Vec<f32> {
    let mut p: Vec<f32> = Vec::with_capacity(2 * n);
    while p.len() < 2 * n {
        let q = [
            rng.sample::<f32, _>(StandardNormal),
            rng.sample::<f32, _>(StandardNormal),
        ];
        let far = |o: &[f32]| {
            o.chunks_exact(2)
                .all(|o| ((q[0] - o[0]).powi(2) + (q[1] - o[1]).powi(2)).sqrt() >= MIN_DIST)
        };
        if far(&p) && far(others) {
            p.extend(q);
        }
    }
    p
}

/// Central differences, step `H32`, of `f` with respect to each entry of `x`, with the steps taken.
fn fd32(x: &mut [f32], f: &mut dyn FnMut(&[f32]) -> f64) -> Vec<f64> {
    (0..x.len())
        .map(|k| {
            let v = x[k];
            x[k] = v + H32;
            let up = f(x);
            let step_up = x[k] as f64;
            x[k] = v - H32;
            let down = f(x);
            let step = step_up - x[k] as f64;
            x[k] = v;
            (up - down) / step
        })
        .collect()
}

#[test]
fn transport_op_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(201);
    let (c, oc) = (7, 5);
    let coeff = 0.7f32;
    let mut weight: Vec<f32> = (0..oc * c).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    for w in weight.iter_mut() {
        if w.abs() < 4.0 * H32 {
            *w = 4.0 * H32 * w.signum();
        }
    }
    let p_in = spread_points(&mut rng, c, &[]);
    let p_out = spread_points(&mut rng, oc, &p_in);
    // Gradients start from arbitrary values: the op must add to them (`+=`), as the full backward
    // relies on when p_l collects terms from T(l), T(l+1) and V(l).
    let prior_w = normals(&mut rng, oc * c, 1.0);
    let prior_in = normals(&mut rng, 2 * c, 1.0);
    let prior_out = normals(&mut rng, 2 * oc, 1.0);
    let mut reports = Vec::new();
    for (norm, wn) in NORMS {
        let (mut dw, mut dpi, mut dpo) = (prior_w.clone(), prior_in.clone(), prior_out.clone());
        let value = transport::transport_forward_backward(
            &mut dw, &mut dpi, &mut dpo, &weight, &p_in, &p_out, c, oc, norm, wn, coeff,
        );
        // The value against the formula, in f64.
        let scale = match norm {
            TransportNorm::Paper => 1.0 / oc as f64,
            TransportNorm::Mean => 1.0 / (c * oc) as f64,
        };
        let mut want = 0.0;
        for j in 0..oc {
            for i in 0..c {
                let w = weight[j * c + i] as f64;
                let phi = if wn == WeightNorm::L1 { w.abs() } else { w * w };
                want += phi * dist(&p_in, i, &p_out, j) as f64;
            }
        }
        let mut r = Report::new(format!("transport op {norm:?}/{wn:?}"));
        r.compare(
            &|| "value".into(),
            value,
            scale * want,
            Tol { abs: 1e-6, rel: 1e-5 },
        );
        // The gradients against central differences of the op's own value, times coeff.
        let (mut sw, mut si, mut so) = (vec![0.0; oc * c], vec![0.0; 2 * c], vec![0.0; 2 * oc]);
        let mut value_of = |w: &[f32], pi: &[f32], po: &[f32]| {
            transport::transport_forward_backward(
                &mut sw, &mut si, &mut so, w, pi, po, c, oc, norm, wn, coeff,
            )
        };
        let fd_w = fd32(&mut weight.clone(), &mut |w| value_of(w, &p_in, &p_out));
        let fd_in = fd32(&mut p_in.clone(), &mut |pi| value_of(&weight, pi, &p_out));
        let fd_out = fd32(&mut p_out.clone(), &mut |po| value_of(&weight, &p_in, po));
        for (name, got, prior, fd) in [
            ("dW", &dw, &prior_w, &fd_w),
            ("dp_in", &dpi, &prior_in, &fd_in),
            ("dp_out", &dpo, &prior_out, &fd_out),
        ] {
            for k in 0..got.len() {
                let hand = got[k] as f64 - prior[k] as f64;
                r.compare(&|| format!("{name}[{k}]"), hand, coeff as f64 * fd[k], TOL32);
            }
        }
        reports.push(r);
    }
    finish(reports);
}

#[test]
fn transport_op_conventions_at_zero() {
    // METHOD.md: d|w|/dw at w = 0 is 0, and a zero distance contributes no position gradient.
    let (c, oc) = (3, 2);
    let weight = [0.0, 0.5, -0.25, 1.0, 0.0, -2.0];
    let p_in = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    // Output neuron 0 sits exactly on input neuron 0; output neuron 1 at (3, 4).
    let p_out = [0.0, 0.0, 3.0, 4.0];
    for norm in [TransportNorm::Paper, TransportNorm::Mean] {
        let (mut dw, mut dpi, mut dpo) = (vec![0.0; 6], vec![0.0; 6], vec![0.0; 4]);
        let value = transport::transport_forward_backward(
            &mut dw,
            &mut dpi,
            &mut dpo,
            &weight,
            &p_in,
            &p_out,
            c,
            oc,
            norm,
            WeightNorm::L1,
            1.0,
        );
        let s = transport::transport_scale(norm, c, oc) as f64;
        // Distances: row 0: 0, 1, 1; row 1: 5, sqrt(4+16), sqrt(9+9).
        let want = s * (0.5 * 1.0 + 0.25 * 1.0 + 1.0 * 5.0 + 2.0 * 18f64.sqrt());
        assert!(
            (value - want).abs() < 1e-5,
            "{norm:?}: T = {value}, expected {want}"
        );
        assert_eq!(dw[0], 0.0, "{norm:?}: d|w|/dw at w = 0 must be 0");
        assert_eq!(dw[4], 0.0, "{norm:?}: d|w|/dw at w = 0 must be 0");
        assert!(
            dw[1] > 0.0 && dw[2] < 0.0 && dw[3] > 0.0 && dw[5] < 0.0,
            "{norm:?}: dW {dw:?} has the wrong signs"
        );
        assert!(
            dpi.iter().chain(&dpo).all(|v| v.is_finite()),
            "{norm:?}: NaN at a zero distance: {dpi:?} {dpo:?}"
        );
        // The pair at distance 0 has |w| = 0 here, so move weight 0 away from 0 and check that the
        // coincident pair still adds nothing: the gradient equals the one without that pair.
        let mut w2 = weight;
        w2[0] = 0.75;
        let (mut a_w, mut a_i, mut a_o) = (vec![0.0; 6], vec![0.0; 6], vec![0.0; 4]);
        transport::transport_forward_backward(
            &mut a_w,
            &mut a_i,
            &mut a_o,
            &w2,
            &p_in,
            &p_out,
            c,
            oc,
            norm,
            WeightNorm::L1,
            1.0,
        );
        assert_eq!(a_w[0], 0.0, "{norm:?}: dW at a zero distance is |w|' · 0 = 0");
        for k in 0..2 {
            assert_eq!(a_i[k], dpi[k], "{norm:?}: the coincident pair moved dp_in[{k}]");
            assert_eq!(a_o[k], dpo[k], "{norm:?}: the coincident pair moved dp_out[{k}]");
        }
    }
}

#[test]
fn density_op_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(202);
    let n = 9;
    let coeff = 1.3f32;
    let p = spread_points(&mut rng, n, &[]);
    let prior = normals(&mut rng, 2 * n, 1.0);
    let mut dp = prior.clone();
    let value = density::density_forward_backward(&mut dp, &p, n, coeff);
    let mut want = 0.0;
    for j in 0..n {
        for k in 0..n {
            want += (-(dist(&p, j, &p, k) as f64)).exp();
        }
    }
    let mut r = Report::new("density op");
    r.compare(
        &|| "value".into(),
        value,
        want / (n * n) as f64,
        Tol { abs: 1e-6, rel: 1e-5 },
    );
    let mut scratch = vec![0.0; 2 * n];
    let fd = fd32(&mut p.clone(), &mut |q| {
        density::density_forward_backward(&mut scratch, q, n, coeff)
    });
    for k in 0..2 * n {
        r.compare(
            &|| format!("dp[{k}]"),
            dp[k] as f64 - prior[k] as f64,
            coeff as f64 * fd[k],
            TOL32,
        );
    }
    finish(vec![r]);
}

#[test]
fn density_op_coincident_points() {
    // Points 0 and 2 coincide: that pair (distance 0) adds e^0 = 1 twice to the sum and nothing to
    // the gradient, which must then equal the analytic one over the other pairs.
    let n = 4;
    let p = [0.5, -0.5, 1.5, 0.25, 0.5, -0.5, -1.0, 2.0];
    let mut dp = vec![0.0; 2 * n];
    let value = density::density_forward_backward(&mut dp, &p, n, 1.0);
    let (mut want, mut grad) = (0.0f64, vec![0.0f64; 2 * n]);
    for j in 0..n {
        for k in 0..n {
            let d = dist(&p, j, &p, k) as f64;
            want += (-d).exp();
            if d > 0.0 {
                for a in 0..2 {
                    grad[2 * j + a] -= 2.0 * (-d).exp() * (p[2 * j + a] - p[2 * k + a]) as f64 / d;
                }
            }
        }
    }
    let n2 = (n * n) as f64;
    assert!(
        (value - want / n2).abs() < 1e-6,
        "V = {value}, expected {}",
        want / n2
    );
    for k in 0..2 * n {
        assert!(dp[k].is_finite(), "dp[{k}] is {} at a zero distance", dp[k]);
        assert!(
            (dp[k] as f64 - grad[k] / n2).abs() < 1e-6,
            "dp[{k}] = {}, expected {}",
            dp[k],
            grad[k] / n2
        );
    }
}

#[test]
fn softmax_xent_op_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(203);
    let (b, heads, classes) = (5, 3, 4);
    let logits = normals(&mut rng, b * heads * classes, 2.0);
    let mut labels: Vec<i32> = (0..b * heads)
        .map(|_| rng.random_range(0..classes as i32))
        .collect();
    // Some examples lack some heads' labels (and head 1 of example 0, all heads of example 3).
    for (k, l) in labels.iter_mut().enumerate() {
        if k == 1 || k / heads == 3 || rng.random::<f32>() < 0.2 {
            *l = -1;
        }
    }
    // dlogits is overwritten (`=`): start from NaN.
    let mut dlogits = vec![f32::NAN; b * heads * classes];
    let loss = softmax_xent::softmax_xent_forward_backward(&mut dlogits, &logits, &labels, b, heads, classes);
    let mut want = 0.0;
    for r in 0..b {
        for h in 0..heads {
            let y = labels[r * heads + h];
            if y >= 0 {
                let z = &logits[(r * heads + h) * classes..][..classes];
                let sum: f64 = z.iter().map(|&v| (v as f64).exp()).sum();
                want -= ((z[y as usize] as f64).exp() / sum).ln();
            }
        }
    }
    let mut r = Report::new("softmax_xent op");
    r.compare(
        &|| "loss".into(),
        loss,
        want / b as f64,
        Tol { abs: 1e-6, rel: 1e-5 },
    );
    let mut scratch = vec![0.0; dlogits.len()];
    let fd = fd32(&mut logits.clone(), &mut |z| {
        softmax_xent::softmax_xent_forward_backward(&mut scratch, z, &labels, b, heads, classes)
    });
    let (mut labelled, mut significant) = (0, 0);
    for k in 0..dlogits.len() {
        if labels[k / classes] < 0 {
            assert_eq!(dlogits[k], 0.0, "dlogits[{k}] of a masked head must be 0");
        } else {
            labelled += 1;
            significant += (fd[k].abs() > SIGNIFICANT * TOL32.abs) as usize;
        }
        r.compare(
            &|| {
                format!(
                    "dlogits[{k}] (example {}, head {}, class {})",
                    k / (heads * classes),
                    k / classes % heads,
                    k % classes
                )
            },
            dlogits[k] as f64,
            fd[k],
            TOL32,
        );
    }
    assert!(
        2 * significant >= labelled,
        "only {significant} of {labelled} labelled entries are significant"
    );
    finish(vec![r]);
    // Every label masked: loss 0, gradient 0.
    let none = vec![-1; b * heads];
    let mut d = vec![f32::NAN; dlogits.len()];
    assert_eq!(
        softmax_xent::softmax_xent_forward_backward(&mut d, &logits, &none, b, heads, classes),
        0.0
    );
    assert!(d.iter().all(|&v| v == 0.0));
}

#[test]
fn sigmoid_op_matches_its_derivative() {
    let mut rng = ChaCha8Rng::seed_from_u64(204);
    let z = normals(&mut rng, 33, 3.0);
    let mut a = z.clone();
    sigmoid::sigmoid_forward(&mut a);
    let da = normals(&mut rng, 33, 1.0);
    let mut dz = da.clone();
    sigmoid::sigmoid_backward(&mut dz, &a);
    for k in 0..z.len() {
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let zk = z[k] as f64;
        assert!(
            (a[k] as f64 - s(zk)).abs() < 1e-7,
            "sigmoid({}) = {}, expected {}",
            z[k],
            a[k],
            s(zk)
        );
        let h = 1e-5;
        let deriv = (s(zk + h) - s(zk - h)) / (2.0 * h);
        let want = da[k] as f64 * deriv;
        assert!(
            (dz[k] as f64 - want).abs() < 1e-6 + 1e-5 * want.abs(),
            "sigmoid backward [{k}]: {} vs {want}",
            dz[k]
        );
    }
}

#[test]
fn linear_op_matches_naive_loops() {
    let mut rng = ChaCha8Rng::seed_from_u64(205);
    let (b, c, oc) = (5, 7, 3);
    let inp = normals(&mut rng, b * c, 1.0);
    let weight = normals(&mut rng, oc * c, 1.0);
    let bias = normals(&mut rng, oc, 1.0);
    let dout = normals(&mut rng, b * oc, 1.0);
    // Sums of ≤ 7 products of normals in f32: error ≲ 1e-6; a wrong index is off by O(1).
    let close = |got: f32, want: f64, what: &str| {
        assert!(
            (got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
            "{what}: {got} vs naive {want}"
        );
    };

    let mut out = vec![f32::NAN; b * oc];
    linear::linear_forward(&mut out, &inp, &weight, &bias, b, c, oc);
    for r in 0..b {
        for j in 0..oc {
            let mut z = bias[j] as f64;
            for i in 0..c {
                z += inp[r * c + i] as f64 * weight[j * c + i] as f64;
            }
            close(out[r * oc + j], z, &format!("out[{r},{j}]"));
        }
    }

    // dweight and dbias accumulate (+=), dinp is overwritten (=).
    let prior_w = normals(&mut rng, oc * c, 1.0);
    let prior_b = normals(&mut rng, oc, 1.0);
    for with_dinp in [true, false] {
        let (mut dw, mut db, mut dinp) = (prior_w.clone(), prior_b.clone(), vec![f32::NAN; b * c]);
        let d = if with_dinp { Some(&mut dinp[..]) } else { None };
        linear::linear_backward(d, &mut dw, &mut db, &dout, &inp, &weight, b, c, oc);
        for j in 0..oc {
            for i in 0..c {
                let mut g = prior_w[j * c + i] as f64;
                for r in 0..b {
                    g += dout[r * oc + j] as f64 * inp[r * c + i] as f64;
                }
                close(dw[j * c + i], g, &format!("dweight[{j},{i}]"));
            }
            let mut g = prior_b[j] as f64;
            for r in 0..b {
                g += dout[r * oc + j] as f64;
            }
            close(db[j], g, &format!("dbias[{j}]"));
        }
        if with_dinp {
            for r in 0..b {
                for i in 0..c {
                    let mut g = 0.0;
                    for j in 0..oc {
                        g += dout[r * oc + j] as f64 * weight[j * c + i] as f64;
                    }
                    close(dinp[r * c + i], g, &format!("dinp[{r},{i}]"));
                }
            }
        } else {
            assert!(
                dinp.iter().all(|v| v.is_nan()),
                "dinp written although not asked for"
            );
        }
    }
}

#[test]
fn adam_two_steps_by_hand() {
    // torch.optim.Adam (no weight decay, no amsgrad), lr 0.1, betas (0.9, 0.999), eps 1e-8, t = 1, 2:
    //   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= (lr/(1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
    // Step 1 (m̂ = g, v̂ = g²): p −= 0.1 · g/(|g| + 1e-8), i.e. 0.1·sign(g) unless |g| is near eps
    // (g = 1e-8 moves by 0.1 · 1e-8/2e-8 = 0.05) or g = 0 (no move).
    // Step 2, entry 0 (g = 0.1 then 0.3): m = 0.9·0.01 + 0.1·0.3 = 0.039, v = 0.999·1e-5 + 0.001·0.09
    // = 9.999e-5, m̂ = 0.039/0.19 = 0.2052632, v̂ = 9.999e-5/0.001999 = 0.0500200,
    // p = 0.4 − 0.1 · 0.2052632/(0.2236515 + 1e-8) = 0.3082219. The other entries likewise.
    // The values below are these formulas evaluated in f64 with the hyper-parameters and gradients
    // as the f32 numbers the API takes: β2 = 0.999 is stored as 0.99900001287, so 1 − β2 is
    // 0.00099998713 and v comes out 1.3e-5 (relative) below the decimal value above (9.9998716e-6
    // for 1e-5); the parameters agree with the decimal computation to 1e-8.
    let hp = |step| AdamStep {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        step,
    };
    let mut p = vec![0.5f32, -1.0, 0.25, 0.0, 2.0];
    let grads = [[0.1f32, -0.2, 0.0, 1e-8, 3.0], [0.3, 0.1, 0.0, -1e-8, -1.0]];
    let want_p = [
        [0.4000000085, -0.9000000035, 0.25, -0.05000000075, 1.899999999],
        [0.3082218988, -0.8733663021, 0.25, -0.0473684211, 1.859978143],
    ];
    let want_m = [
        [0.01000000253, -0.02000000507, 0.0, 1.000000232e-9, 0.3000000715],
        [0.03900001039, -0.00800000155, 0.0, -1.000000471e-10, 0.1700000334],
    ];
    let want_v = [
        [
            9.999871552e-6,
            3.999948621e-5,
            0.0,
            9.999871132e-20,
            0.008999884129,
        ],
        [
            9.998872025e-5,
            4.995935879e-5,
            0.0,
            1.998974252e-19,
            0.009990871486,
        ],
    ];
    let (mut m, mut v) = (vec![0.0f32; 5], vec![0.0f32; 5]);
    for t in 0..2 {
        adam_update(&mut p, &grads[t], &mut m, &mut v, hp(t as u64 + 1));
        for k in 0..5 {
            // f32 arithmetic on a few operands: a few ulps (m of entry 3 at step 2 is a difference
            // 9e-10 − 1e-9, where the ulps of the operands are 10 times larger relative to it).
            let close = |got: f32, want: f64| (got as f64 - want).abs() <= 5e-6 * want.abs();
            assert!(
                close(p[k], want_p[t][k]),
                "step {}: p[{k}] = {} expected {}",
                t + 1,
                p[k],
                want_p[t][k]
            );
            assert!(
                close(m[k], want_m[t][k]),
                "step {}: m[{k}] = {} expected {}",
                t + 1,
                m[k],
                want_m[t][k]
            );
            assert!(
                close(v[k], want_v[t][k]),
                "step {}: v[{k}] = {} expected {}",
                t + 1,
                v[k],
                want_v[t][k]
            );
        }
    }
}
