//! Whole training steps of `GpuBackend` against `CpuBackend` from the same seed and data:
//! one step (every activation, every gradient, the parameters after Adam, the losses) and ten
//! consecutive steps (losses each step, state at the end), for spatial configurations with each
//! TransportNorm × WeightNorm, a regular one (alpha = beta = 0), the relu and the tanh (the others
//! use the default sigmoid), a sequential-style batch with masked labels, a smaller last batch, and
//! evaluation with and without a neuron mask.
//!
//! Tolerances (abs + rel·|ref| per element):
//! - activations: abs 1e-5 + rel 1e-4. Each layer's pre-activation is a K-term f32 dot product
//!   summed in another order than `matrixmultiply` (≈ sqrt(K)·2^-24 relative), passed through a
//!   sigmoid (derivative ≤ 1/4; the relu's and tanh's ≤ 1) and fed forward through at most 5
//!   layers.
//! - gradients: abs 1e-6·max|ref| + rel 1e-3 per tensor. They go back through the same products
//!   plus the transport/density sums (tree order on the GPU); the relative part covers the
//!   propagated differences of the activations, the absolute part cancellation in the sums.
//! - parameters after one Adam step: abs 1e-6 + rel 1e-5 wherever |g| ≥ 1e-5 (there Adam's
//!   first step lr·g/(|g|+eps) is insensitive to a gradient difference: d/dg ≈ lr·eps/g² ≤ 5e-4).
//!   Where |g| < 1e-5 a rounding difference in g can move the update by up to 2·lr, so those
//!   elements are checked by applying the CPU Adam to the GPU's own gradient instead (which is
//!   required everywhere, abs 1e-6 + rel 1e-5).
//! - losses: rel 1e-4 (f32 sums of a few hundred terms in another order).
//! - ten steps: the losses of every step rel 1e-3, and the final parameters abs 2e-4 + rel 1e-3 for
//!   at least 99.9% of elements (the rest are the |g| ≈ 0 elements above whose first-steps
//!   Adam updates may legitimately differ; each is still bounded by 2·lr·steps).

#[path = "common/gpu.rs"]
mod common;

use common::{check, context, rng, uniform, Failures};
use rand::Rng;
use spatial_gpu::backend::{Backend, Losses};
use spatial_gpu::config::{Activation, ModelConfig, TaskHead, TrainConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::{adam, CpuBackend};
use spatial_gpu::data::batches::Batch;
use spatial_gpu::gpu::{GpuBackend, GpuContext, GpuOptions, MatmulChoice, Variant};
use spatial_gpu::model::{Params, TrainState};
use std::sync::Arc;

/// A small network of the paper's structure (5 dense layers, 2 heads, spatial layers 3-5).
fn small_model(input: usize) -> ModelConfig {
    ModelConfig {
        sizes: vec![input, 24, 16, 32, 40, 20],
        ..ModelConfig::paper(input)
    }
}

/// Random inputs in [0, 1) and labels; with `sequential`, each example has one head's label only.
fn batch(seed: u64, size: usize, input_dim: usize, classes: &[usize], sequential: bool) -> Batch {
    let heads = classes.len();
    let mut r = rng(seed);
    let inputs = uniform(&mut r, size * input_dim, 0.0, 1.0);
    let mut labels = Vec::new();
    for _ in 0..size {
        let own = r.random_range(0..heads);
        for (h, &n) in classes.iter().enumerate() {
            let l = r.random_range(0..n as i32);
            labels.push(if sequential && h != own { -1 } else { l });
        }
    }
    Batch {
        size,
        input_dim,
        inputs,
        labels,
    }
}

fn backends(
    ctx: &Arc<GpuContext>,
    model: &ModelConfig,
    train: &TrainConfig,
    v: MatmulChoice,
) -> (CpuBackend, GpuBackend) {
    let state = TrainState::new(Params::init(model, train.seed));
    let cpu = CpuBackend::new(model.clone(), train.clone(), state.clone()).unwrap();
    let gpu = GpuBackend::with_options(
        ctx.clone(),
        model.clone(),
        train.clone(),
        state,
        GpuOptions {
            matmul: v,
            ..GpuOptions::default()
        },
    )
    .unwrap();
    (cpu, gpu)
}

fn check_losses(tag: &str, got: &Losses, want: &Losses, rel: f32, fails: &mut Failures) {
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    fails.add(check(
        &format!("{tag} task loss"),
        &[got.task as f32],
        &[want.task as f32],
        1e-7,
        rel,
    ));
    fails.add(check(
        &format!("{tag} transport"),
        &f(&got.transport),
        &f(&want.transport),
        1e-7,
        rel,
    ));
    fails.add(check(
        &format!("{tag} density"),
        &f(&got.density),
        &f(&want.density),
        1e-7,
        rel,
    ));
    fails.add(check(
        &format!("{tag} total"),
        &[got.total as f32],
        &[want.total as f32],
        1e-7,
        rel,
    ));
}

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// One step: activations, gradients tensor by tensor, parameters after Adam, losses.
fn one_step(
    ctx: &Arc<GpuContext>,
    tag: &str,
    model: ModelConfig,
    b: usize,
    sequential: bool,
    v: MatmulChoice,
    fails: &mut Failures,
) {
    let train = TrainConfig {
        batch_size: b.max(8),
        seed: 3,
        ..TrainConfig::default()
    };
    let (mut cpu, mut gpu) = backends(ctx, &model, &train, v);
    let before = cpu.state().unwrap();
    let bt = batch(11, b, model.sizes[0], &model.head_sizes(), sequential);
    cpu.train_step(&bt).unwrap();
    gpu.train_step(&bt).unwrap();
    let snap = gpu.debug_snapshot().unwrap();
    let sizes = &model.sizes;
    for (l, &n) in sizes.iter().enumerate().skip(1) {
        let want = &cpu.workspace().acts[l][..b * n];
        fails.add(check(
            &format!("{tag} acts[{l}]"),
            &snap.acts[l],
            want,
            1e-5,
            1e-4,
        ));
    }
    let layout = &before.params.layout;
    let want_g = cpu.last_grads().to_vec();
    let mut tensors: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for l in 1..sizes.len() {
        tensors.push((format!("dW{l}"), layout.weights[l - 1].clone()));
        tensors.push((format!("db{l}"), layout.biases[l - 1].clone()));
    }
    for l in 0..sizes.len() {
        tensors.push((format!("dp{l}"), layout.positions[l].clone()));
    }
    for (name, r) in &tensors {
        let w = &want_g[r.clone()];
        fails.add(check(
            &format!("{tag} {name}"),
            &snap.grads[r.clone()],
            w,
            1e-6 * max_abs(w),
            1e-3,
        ));
    }
    // Padding between tensors stays exactly zero.
    let mut covered = vec![false; layout.len];
    for (_, r) in &tensors {
        covered[r.clone()].iter_mut().for_each(|c| *c = true);
    }
    let pad_bad = (0..layout.len)
        .filter(|&i| !covered[i] && (snap.grads[i] != 0.0 || snap.state.params.data[i] != 0.0))
        .count();
    if pad_bad > 0 {
        fails.add(Err(format!("{tag}: {pad_bad} padding elements are not zero")));
    }
    // Adam: the CPU update of the GPU's own gradient must equal the GPU's parameters everywhere.
    let cpu_state = cpu.state().unwrap();
    let hp = adam::AdamStep {
        lr: train.lr,
        beta1: train.beta1,
        beta2: train.beta2,
        eps: train.eps,
        step: 1,
    };
    let (mut p, mut m, mut vv) = (
        before.params.data.clone(),
        before.adam_m.clone(),
        before.adam_v.clone(),
    );
    adam::adam_update(&mut p, &snap.grads, &mut m, &mut vv, hp);
    fails.add(check(
        &format!("{tag} params = adam(gpu grads)"),
        &snap.state.params.data,
        &p,
        1e-6,
        1e-5,
    ));
    fails.add(check(
        &format!("{tag} adam m"),
        &snap.state.adam_m,
        &m,
        1e-10,
        1e-5,
    ));
    // And the CPU's parameters wherever the gradient is not tiny.
    let keep: Vec<usize> = (0..layout.len).filter(|&i| want_g[i].abs() >= 1e-5).collect();
    let pick = |x: &[f32]| keep.iter().map(|&i| x[i]).collect::<Vec<_>>();
    fails.add(check(
        &format!(
            "{tag} params after Adam (|g| >= 1e-5: {} of {})",
            keep.len(),
            layout.len
        ),
        &pick(&snap.state.params.data),
        &pick(&cpu_state.params.data),
        1e-6,
        1e-5,
    ));
    if snap.state.step != 1 {
        fails.add(Err(format!("{tag}: step {} after one step", snap.state.step)));
    }
    let (gl, cl) = (
        gpu.take_losses().unwrap().unwrap(),
        cpu.take_losses().unwrap().unwrap(),
    );
    eprintln!("{tag}: gpu {gl:?}\n{tag}: cpu {cl:?}");
    check_losses(tag, &gl, &cl, 1e-4, fails);
    if gpu.take_losses().unwrap().is_some() {
        fails.add(Err(format!("{tag}: losses not reset after take_losses")));
    }
}

fn spatial_configs(input: usize) -> Vec<(String, ModelConfig)> {
    let mut out = Vec::new();
    for norm in [TransportNorm::Paper, TransportNorm::Mean] {
        for wn in [WeightNorm::L1, WeightNorm::L2] {
            let m = ModelConfig {
                transport_norm: norm,
                weight_norm: wn,
                ..small_model(input)
            };
            out.push((format!("spatial {norm:?}/{wn:?}"), m));
        }
    }
    out.push((
        "regular".to_string(),
        ModelConfig {
            alpha: 0.0,
            beta: 0.0,
            ..small_model(input)
        },
    ));
    for act in [Activation::Relu, Activation::Tanh] {
        out.push((
            format!("spatial {act}"),
            ModelConfig {
                activation: act,
                ..small_model(input)
            },
        ));
    }
    out
}

#[test]
fn one_step_matches_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    let v = MatmulChoice::Fixed(Variant::Tiled);
    for (tag, model) in spatial_configs(37) {
        one_step(&ctx, &tag, model, 13, false, v, &mut fails);
    }
    one_step(
        &ctx,
        "sequential masked labels",
        small_model(37),
        13,
        true,
        v,
        &mut fails,
    );
    // Heads of different sizes (3 and 17 classes, 20 outputs as the paper's): per-head offsets in
    // the loss, sequential masking included.
    let mut unequal = small_model(37);
    unequal.tasks = vec![TaskHead::new("small", 3), TaskHead::new("large", 17)];
    unequal.validate().unwrap();
    for sequential in [false, true] {
        one_step(
            &ctx,
            "heads of 3 and 17",
            unequal.clone(),
            13,
            sequential,
            v,
            &mut fails,
        );
    }
    // Batch of 1, smaller than any tile, with the register-blocked kernel.
    one_step(
        &ctx,
        "batch 1 reg16x8",
        small_model(37),
        1,
        false,
        MatmulChoice::Fixed(Variant::Reg16x8),
        &mut fails,
    );
    // The split-K and vec4 kernels in a whole step (a vec4 variant runs its scalar twin on the
    // products whose operands are not aligned to 4 floats, e.g. the 37-wide input).
    for v in [Variant::SplitK, Variant::TiledVec4, Variant::SplitKVec4] {
        one_step(
            &ctx,
            &format!("{v:?}"),
            small_model(37),
            13,
            false,
            MatmulChoice::Fixed(v),
            &mut fails,
        );
    }
    fails.assert_none();
}

/// The paper's network itself (concat input, 1568-128-128-128-256-20), one step with autotuned
/// matmul variants.
#[test]
fn one_step_paper_network_autotuned() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    one_step(
        &ctx,
        "paper network",
        ModelConfig::paper(1568),
        16,
        false,
        MatmulChoice::Autotune,
        &mut fails,
    );
    fails.assert_none();
}

#[test]
fn ten_steps_match_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    let configs = [
        ("spatial paper/l1", small_model(37), false),
        (
            "spatial mean/l2 sequential",
            ModelConfig {
                transport_norm: TransportNorm::Mean,
                weight_norm: WeightNorm::L2,
                ..small_model(37)
            },
            true,
        ),
        (
            "regular",
            ModelConfig {
                alpha: 0.0,
                beta: 0.0,
                ..small_model(37)
            },
            false,
        ),
        (
            "spatial relu",
            ModelConfig {
                activation: Activation::Relu,
                ..small_model(37)
            },
            false,
        ),
        (
            "spatial tanh sequential",
            ModelConfig {
                activation: Activation::Tanh,
                ..small_model(37)
            },
            true,
        ),
    ];
    for (tag, model, sequential) in configs {
        let train = TrainConfig {
            batch_size: 12,
            seed: 5,
            ..TrainConfig::default()
        };
        let (mut cpu, mut gpu) = backends(&ctx, &model, &train, MatmulChoice::Fixed(Variant::Reg4x4));
        for s in 0..10 {
            // The last batch of an "epoch" is smaller.
            let b = if s == 9 { 5 } else { 12 };
            let bt = batch(100 + s, b, model.sizes[0], &model.head_sizes(), sequential);
            cpu.train_step(&bt).unwrap();
            gpu.train_step(&bt).unwrap();
            let (gl, cl) = (
                gpu.take_losses().unwrap().unwrap(),
                cpu.take_losses().unwrap().unwrap(),
            );
            check_losses(&format!("{tag} step {s}"), &gl, &cl, 1e-3, &mut fails);
        }
        let (gs, cs) = (gpu.state().unwrap(), cpu.state().unwrap());
        assert_eq!(gs.step, 10);
        let n = cs.params.data.len();
        let out: Vec<usize> = (0..n)
            .filter(|&i| {
                (gs.params.data[i] - cs.params.data[i]).abs() > 2e-4 + 1e-3 * cs.params.data[i].abs()
            })
            .collect();
        let max_diff = (0..n)
            .map(|i| (gs.params.data[i] - cs.params.data[i]).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "{tag}: after 10 steps {} of {n} parameters outside abs 2e-4 + rel 1e-3, max |diff| {max_diff:e}",
            out.len()
        );
        if out.len() * 1000 > n || max_diff > 2.0 * train.lr * 10.0 {
            fails.add(Err(format!(
                "{tag}: after 10 steps {} of {n} parameters differ by more than abs 2e-4 + rel 1e-3 (first {:?}), max |diff| {max_diff:e}",
                out.len(),
                out.first().map(|&i| (i, gs.params.data[i], cs.params.data[i]))
            )));
        }
        // Accumulated losses: the mean over two steps equals the CPU's mean.
        let bt = batch(500, 12, model.sizes[0], &model.head_sizes(), sequential);
        for _ in 0..2 {
            cpu.train_step(&bt).unwrap();
            gpu.train_step(&bt).unwrap();
        }
        let (gl, cl) = (
            gpu.take_losses().unwrap().unwrap(),
            cpu.take_losses().unwrap().unwrap(),
        );
        check_losses(&format!("{tag} mean of 2 steps"), &gl, &cl, 1e-3, &mut fails);
    }
    fails.assert_none();
}

#[test]
fn logits_state_and_errors() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    let model = small_model(37);
    let train = TrainConfig {
        batch_size: 8,
        seed: 9,
        ..TrainConfig::default()
    };
    let (mut cpu, mut gpu) = backends(&ctx, &model, &train, MatmulChoice::Fixed(Variant::Naive));
    // Evaluation in chunks of the capacity (8), the last one partial, with and without a mask.
    let count = 21;
    let mut r = rng(33);
    let inputs = uniform(&mut r, count * 37, 0.0, 1.0);
    let mut mask: Vec<Vec<f32>> = model.sizes.iter().map(|&n| vec![1.0; n]).collect();
    for k in mask.iter_mut().skip(1).flatten() {
        if r.random_range(0..3) == 0 {
            *k = 0.0;
        }
    }
    for keep in [None, Some(&mask), None] {
        let (g, c) = (
            gpu.logits(&inputs, count, keep).unwrap(),
            cpu.logits(&inputs, count, keep).unwrap(),
        );
        fails.add(check(
            &format!("logits mask={}", keep.is_some()),
            &g,
            &c,
            1e-5,
            1e-4,
        ));
    }
    // set_state / state round trip.
    let mut st = cpu.state().unwrap();
    st.step = 42;
    st.adam_m
        .iter_mut()
        .enumerate()
        .for_each(|(i, m)| *m = i as f32 * 1e-6);
    gpu.set_state(&st).unwrap();
    let back = gpu.state().unwrap();
    assert_eq!(back, st, "state read back differs from the state set");
    // Errors, not panics.
    let too_big = batch(1, 9, 37, &[10, 10], false);
    let e = gpu.train_step(&too_big).unwrap_err().to_string();
    assert!(e.contains("built for batches of 1 to 8"), "{e}");
    let wrong_dim = batch(1, 4, 36, &[10, 10], false);
    assert!(gpu.train_step(&wrong_dim).is_err());
    assert!(gpu.logits(&inputs[..10], count, None).is_err());
    let other = TrainState::new(Params::init(&small_model(36), 1));
    assert!(gpu.set_state(&other).is_err());
    fails.assert_none();
}
