//! The CPU backend on several threads (`--threads`, `cpu::threads`) computes the same bits as on
//! one: after several training steps, the parameters, Adam's moments, the losses and the
//! evaluation's logits are equal bit for bit with 1, 2 and 3 threads, for every activation, for a
//! spatial and a regular network, at odd batch sizes (blocks of unequal length, one block shorter than the
//! matrix kernel) and at a batch over 256 (the GEMM's own blocking over the summed dimension).

mod support;

use spatial_gpu::backend::Backend;
use spatial_gpu::config::{Activation, InputMode, ModelConfig, TrainConfig};
use spatial_gpu::cpu::CpuBackend;
use spatial_gpu::data::batches::{epoch_order, Batch};
use spatial_gpu::data::Datasets;
use spatial_gpu::model::{Params, TrainState};
use support::assert_bits_eq;

/// Trains `steps` steps on `threads` threads; returns the state, each step's losses (as bits) and
/// the logits of the first 50 training examples with neuron 0 of layer 2 switched off.
fn train(
    model: &ModelConfig,
    train: &TrainConfig,
    data: &Datasets,
    steps: usize,
    threads: usize,
) -> (TrainState, Vec<u64>, Vec<u32>) {
    let state = TrainState::new(Params::init(model, train.seed));
    let mut backend = CpuBackend::new(model.clone(), train.clone(), state)
        .unwrap()
        .with_threads(threads)
        .unwrap();
    assert_eq!(backend.threads(), threads);
    let order = epoch_order(train.mode, data, train.seed, 0);
    let mut batch = Batch::with_capacity(train.batch_size, data.input_dim(train.mode));
    let nb = order.num_batches(train.batch_size);
    let mut losses = Vec::new();
    for s in 0..steps {
        order.fill_batch(data, train.mode, s % nb, train.batch_size, &mut batch);
        backend.train_step(&batch).unwrap();
        let l = backend.take_losses().unwrap().unwrap();
        losses.push(l.total.to_bits());
        losses.extend(l.transport.iter().chain(&l.density).map(|v| v.to_bits()));
    }
    let mut keep: Vec<Vec<f32>> = model.sizes.iter().map(|&n| vec![1.0; n]).collect();
    keep[2][0] = 0.0;
    let n = 50.min(data.tasks[0].train_labels.len());
    let mut batch = Batch::with_capacity(n, data.input_dim(train.mode));
    order.fill_batch(data, train.mode, 0, n, &mut batch);
    let logits = backend
        .logits(&batch.inputs[..n * batch.input_dim], n, Some(&keep))
        .unwrap();
    let state = backend.state().unwrap();
    (state, losses, logits.iter().map(|v| v.to_bits()).collect())
}

fn configs(
    data: &Datasets,
    activation: Activation,
    spatial: bool,
    batch: usize,
) -> (ModelConfig, TrainConfig) {
    let mut model = ModelConfig::paper(data.input_dim(InputMode::Concat));
    // Odd widths: vector tails in the spatial costs, blocks of unequal length everywhere.
    model.sizes = vec![model.sizes[0], 24, 17, 33, 40, 20];
    model.activation = activation;
    (model.alpha, model.beta) = if spatial { (0.5, 2.0) } else { (0.0, 0.0) };
    let train = TrainConfig {
        mode: InputMode::Concat,
        batch_size: batch,
        lr: 0.01,
        seed: 3,
        ..TrainConfig::default()
    };
    (model, train)
}

#[test]
fn one_two_and_three_threads_give_the_same_bits() {
    // 10x15 images: 300 inputs per example in concat mode (more than the GEMM's 256-deep blocks).
    let data = Datasets::synthetic(300, 20, 10, 15, 5);
    for (activation, spatial, batch) in [
        (Activation::Sigmoid, true, 37),
        (Activation::Relu, true, 9),
        (Activation::Tanh, true, 263),
        (Activation::Sigmoid, false, 37),
    ] {
        let (model, train_cfg) = configs(&data, activation, spatial, batch);
        let (s1, l1, g1) = train(&model, &train_cfg, &data, 6, 1);
        assert!(s1.params.data.iter().all(|v| v.is_finite()));
        for threads in [2, 3] {
            let what = format!("{activation:?}, spatial {spatial}, batch {batch}, {threads} threads vs 1");
            let (s, l, g) = train(&model, &train_cfg, &data, 6, threads);
            assert_bits_eq(&s1, &s, &what);
            assert_eq!(l1, l, "{what}: losses differ");
            assert_eq!(g1, g, "{what}: logits differ");
        }
    }
}

#[test]
fn zero_threads_is_refused_with_the_option_named() {
    let data = Datasets::synthetic(30, 10, 4, 4, 5);
    let (model, train_cfg) = configs(&data, Activation::Sigmoid, true, 8);
    let state = TrainState::new(Params::init(&model, train_cfg.seed));
    let Err(err) = CpuBackend::new(model, train_cfg, state).unwrap().with_threads(0) else {
        panic!("0 threads accepted");
    };
    assert!(format!("{err:#}").contains("--threads 0"), "{err:#}");
}

#[test]
fn train_gives_the_same_run_with_any_thread_count_and_refuses_zero() {
    let data = support::cli_data_dir(7);
    let tmp = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for threads in ["1", "3"] {
        let out = tmp.path().join(format!("t{threads}"));
        let o = support::train_cli(
            data.path(),
            &["--threads", threads, "--out", out.to_str().unwrap()],
        );
        support::assert_success(&o, &format!("train --threads {threads}"));
        runs.push(support::metrics_without_timing(&out));
    }
    assert_eq!(runs[0], runs[1], "metrics of --threads 1 and --threads 3 differ");
    let out = tmp.path().join("t0");
    let o = support::train_cli(data.path(), &["--threads", "0", "--out", out.to_str().unwrap()]);
    support::assert_fails_with(&o, &["--threads 0"]);
    let o = support::bin()
        .args([
            "reproduce",
            "--threads",
            "0",
            "--backend",
            "cpu",
            "--epochs",
            "1",
            "--seeds",
            "1",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--out")
        .arg(tmp.path().join("grid"))
        .output()
        .unwrap();
    support::assert_fails_with(&o, &["--threads 0"]);
}
