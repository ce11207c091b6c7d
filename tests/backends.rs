//! One test suite for every backend: each body below takes a backend maker and runs once per backend
//! (`cpu::…` and `gpu::…`, made by `backend_suite!`), as candle's tests do. What must hold on every
//! backend, with each activation (sigmoid, relu, tanh): training steps lower the loss and stay
//! finite; a state taken out and put into a fresh backend continues exactly as the original (bit
//! for bit: same kernels, same order); a neuron mask acts as if the neuron's outgoing weights were
//! zero; and bad input is refused with the *same*
//! error on every backend (the checks live in `backend::check_*`, which both call).
//!
//! The GPU half runs on the adapter of `gpu::test_context` (lavapipe in CI, where
//! `SPATIAL_GPU_REQUIRE_ADAPTER=1` turns a missing adapter into a failure); elsewhere it says
//! "skipped: no adapter" and returns.

#[path = "common/gpu.rs"]
mod common;

use spatial_gpu::backend::Backend;
use spatial_gpu::config::{Activation, InputMode, ModelConfig, TrainConfig};
use spatial_gpu::cpu::CpuBackend;
use spatial_gpu::data::batches::{epoch_order, Batch};
use spatial_gpu::data::Datasets;
use spatial_gpu::gpu::{GpuBackend, GpuOptions, MatmulChoice, Variant};
use spatial_gpu::model::{NeuronMask, Params, TrainState};

/// Makes a backend for a model, run configuration and state; `None` when the backend is not
/// available here (the GPU without an adapter, outside CI).
type Maker = fn(&ModelConfig, &TrainConfig, TrainState) -> Option<Box<dyn Backend>>;

fn cpu_maker(m: &ModelConfig, t: &TrainConfig, s: TrainState) -> Option<Box<dyn Backend>> {
    Some(Box::new(CpuBackend::new(m.clone(), t.clone(), s).unwrap()))
}

fn gpu_maker(m: &ModelConfig, t: &TrainConfig, s: TrainState) -> Option<Box<dyn Backend>> {
    let ctx = common::context()?;
    // A fixed matmul variant: autotuning on a software adapter takes long and changes nothing here.
    let opts = GpuOptions {
        matmul: MatmulChoice::Fixed(Variant::Tiled),
        ..GpuOptions::default()
    };
    Some(Box::new(
        GpuBackend::with_options(ctx, m.clone(), t.clone(), s, opts).unwrap(),
    ))
}

macro_rules! backend_suite {
    ($($test:ident),* $(,)?) => {
        mod cpu {
            $( #[test] fn $test() { super::$test(super::cpu_maker) } )*
        }
        mod gpu {
            $( #[test] fn $test() { super::$test(super::gpu_maker) } )*
        }
    };
}

backend_suite!(
    steps_lower_the_loss,
    a_state_moved_to_a_new_backend_continues_exactly,
    a_mask_acts_as_zero_outgoing_weights,
    bad_input_is_refused_with_the_shared_error,
);

/// Synthetic 4x4 data, the paper's structure in small (spatial layers 3-5, 2 heads of 10).
fn setup() -> (Datasets, ModelConfig, TrainConfig) {
    setup_with(Activation::Sigmoid)
}

/// [`setup`] with the hidden layers' activation `act`.
fn setup_with(act: Activation) -> (Datasets, ModelConfig, TrainConfig) {
    let data = Datasets::synthetic(64, 16, 4, 4, 5);
    let mut model = ModelConfig::defaults(data.input_dim(InputMode::Concat));
    model.activation = act;
    model.sizes = vec![model.sizes[0], 12, 10, 10, 8, 20];
    model.alpha = 0.1;
    let train = TrainConfig {
        batch_size: 16,
        lr: 0.01,
        seed: 3,
        ..TrainConfig::default()
    };
    (data, model, train)
}

fn batches(data: &Datasets, train: &TrainConfig, n: usize) -> Vec<Batch> {
    let order = epoch_order(train.mode, data, train.seed, 0);
    let dim = data.input_dim(train.mode);
    (0..n)
        .map(|b| {
            let mut batch = Batch::with_capacity(train.batch_size, dim);
            order.fill_batch(
                data,
                train.mode,
                b % order.num_batches(train.batch_size),
                train.batch_size,
                &mut batch,
            );
            batch
        })
        .collect()
}

fn fresh_state(model: &ModelConfig, train: &TrainConfig) -> TrainState {
    TrainState::new(Params::init(model, train.seed))
}

fn steps_lower_the_loss(make: Maker) {
    for act in Activation::ALL {
        steps_lower_the_loss_with(make, act);
    }
}

fn steps_lower_the_loss_with(make: Maker, act: Activation) {
    let (data, model, train) = setup_with(act);
    let Some(mut b) = make(&model, &train, fresh_state(&model, &train)) else {
        return;
    };
    let batch = &batches(&data, &train, 1)[0];
    let mut losses = Vec::new();
    for _ in 0..20 {
        b.train_step(batch).unwrap();
        losses.push(b.take_losses().unwrap().expect("one step's losses"));
    }
    assert_eq!(b.steps(), 20);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let (first, last) = (&losses[0], &losses[19]);
    assert!(
        last.total < 0.95 * first.total && last.task < first.task,
        "{act}: 20 steps on one batch: total loss {} -> {}, task loss {} -> {}",
        first.total,
        last.total,
        first.task,
        last.task
    );
    assert_eq!(losses[0].transport.len(), model.spatial_layers.len());
}

fn a_state_moved_to_a_new_backend_continues_exactly(make: Maker) {
    for act in Activation::ALL {
        a_state_moved_continues_exactly_with(make, act);
    }
}

fn a_state_moved_continues_exactly_with(make: Maker, act: Activation) {
    let (data, model, train) = setup_with(act);
    let Some(mut original) = make(&model, &train, fresh_state(&model, &train)) else {
        return;
    };
    let batches = batches(&data, &train, 6);
    for b in &batches[..3] {
        original.train_step(b).unwrap();
    }
    let saved = original.state().unwrap();
    assert_eq!(saved.step, 3);
    let mut moved = make(&model, &train, fresh_state(&model, &train)).unwrap();
    moved.set_state(&saved).unwrap();
    assert_eq!(moved.steps(), 3);
    for b in &batches[3..] {
        original.train_step(b).unwrap();
        moved.train_step(b).unwrap();
    }
    let (a, b) = (original.state().unwrap(), moved.state().unwrap());
    assert_eq!(a.step, b.step);
    for (name, x, y) in [
        ("parameters", &a.params.data, &b.params.data),
        ("adam m", &a.adam_m, &b.adam_m),
        ("adam v", &a.adam_v, &b.adam_v),
    ] {
        let differ = x
            .iter()
            .zip(y.iter())
            .filter(|(p, q)| p.to_bits() != q.to_bits())
            .count();
        assert_eq!(
            differ, 0,
            "{act}: {name}: {differ} values differ after the same 3 steps"
        );
    }
}

fn a_mask_acts_as_zero_outgoing_weights(make: Maker) {
    for act in Activation::ALL {
        a_mask_acts_as_zero_outgoing_weights_with(make, act);
    }
}

fn a_mask_acts_as_zero_outgoing_weights_with(make: Maker, act: Activation) {
    let (data, model, train) = setup_with(act);
    let state = fresh_state(&model, &train);
    let Some(mut b) = make(&model, &train, state.clone()) else {
        return;
    };
    let test = spatial_gpu::data::batches::test_set(train.mode, &data);
    let n = test.len.min(12);
    let inputs = &test.inputs[..n * test.input_dim];
    let all_on: NeuronMask = model.sizes.iter().map(|&s| vec![1.0; s]).collect();
    let plain = b.logits(inputs, n, None).unwrap();
    assert_eq!(
        plain,
        b.logits(inputs, n, Some(&all_on)).unwrap(),
        "an all-ones mask changes nothing"
    );

    // Switch off neurons 1 and 4 of layer 3; the same network with their outgoing weights zeroed.
    let l = 3;
    let mut keep = all_on.clone();
    keep[l][1] = 0.0;
    keep[l][4] = 0.0;
    let masked = b.logits(inputs, n, Some(&keep)).unwrap();
    let mut cut = state.clone();
    let layout = cut.params.layout.clone();
    let w = &mut cut.params.data[layout.weights[l].clone()]; // W_{l+1}: (N_{l+1}, N_l)
    for row in w.chunks_mut(model.sizes[l]) {
        row[1] = 0.0;
        row[4] = 0.0;
    }
    b.set_state(&cut).unwrap();
    let zeroed = b.logits(inputs, n, None).unwrap();
    let worst = masked
        .iter()
        .zip(&zeroed)
        .map(|(a, z)| (a - z).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 1e-6,
        "{act}: masked vs zeroed outgoing weights: max difference {worst}"
    );
    assert_ne!(masked, plain, "the mask must change the logits");

    // An output neuron switched off gives a logit of exactly 0.
    let mut keep = all_on;
    keep[model.num_layers()][7] = 0.0;
    let out = b.logits(inputs, n, Some(&keep)).unwrap();
    let width = model.output_dim();
    assert!((0..n).all(|r| out[r * width + 7] == 0.0));
}

/// Runs `f` on the backend and returns its error text (the test fails if it succeeds).
fn error_of(what: &str, r: anyhow::Result<impl std::fmt::Debug>) -> String {
    match r {
        Ok(v) => panic!("{what}: accepted ({v:?})"),
        Err(e) => format!("{e:#}"),
    }
}

fn bad_input_is_refused_with_the_shared_error(make: Maker) {
    let (data, model, train) = setup();
    let Some(mut b) = make(&model, &train, fresh_state(&model, &train)) else {
        return;
    };
    let good = batches(&data, &train, 1).remove(0);
    let mut cases: Vec<(&str, Batch, &str)> = Vec::new();
    let mut short_labels = good.clone();
    short_labels.labels.truncate(5);
    cases.push((
        "short labels",
        short_labels,
        "batch: the labels holds 5 values, the shape needs at least 32",
    ));
    let mut bad_label = good.clone();
    bad_label.labels[3] = 10;
    cases.push((
        "label 10",
        bad_label,
        "softmax_xent: label 10 (example 1, head 1) is not one of the 10 classes",
    ));
    let mut short_inputs = good.clone();
    short_inputs.inputs.truncate(7);
    cases.push((
        "short inputs",
        short_inputs,
        "batch: the inputs holds 7 values, the shape needs at least",
    ));
    let mut too_big = good.clone();
    too_big.size = 17;
    cases.push((
        "17 examples",
        too_big,
        "does not fit the backend, built for batches of 1 to 16",
    ));
    let mut wrong_width = good.clone();
    wrong_width.input_dim = 31;
    cases.push((
        "31 inputs",
        wrong_width,
        "the batch has 31 inputs per example, the model's input layer has 32",
    ));
    for (what, batch, want) in &cases {
        let e = error_of(what, b.train_step(batch));
        assert!(e.contains(want), "{what}: {e}");
    }
    assert_eq!(b.steps(), 0, "a refused batch takes no step");

    let test = spatial_gpu::data::batches::test_set(train.mode, &data);
    let inputs = &test.inputs[..4 * test.input_dim];
    let e = error_of("short inputs", b.logits(&inputs[..10], 4, None));
    assert_eq!(e, "logits: the inputs holds 10 values, the shape needs 128");
    let all_on: NeuronMask = model.sizes.iter().map(|&s| vec![1.0; s]).collect();
    let mut short_mask = all_on.clone();
    short_mask[2].pop();
    let e = error_of("short mask", b.logits(inputs, 4, Some(&short_mask)));
    assert_eq!(
        e,
        "mask: the neuron mask of layer 2 has 9 entries, the layer has 10 neurons"
    );
    let e = error_of(
        "mask without its last layer",
        b.logits(inputs, 4, Some(&all_on[..5].to_vec())),
    );
    assert!(e.contains("the neuron mask has no layer 5"), "{e}");

    let mut other = model.clone();
    other.sizes[2] = 11;
    let e = error_of("other shape", b.set_state(&fresh_state(&other, &train)));
    assert!(e.starts_with("state: parameters of shape"), "{e}");
    let mut short_moment = fresh_state(&model, &train);
    short_moment.adam_v.pop();
    let e = error_of("short moment", b.set_state(&short_moment));
    assert!(e.starts_with("state: Adam's second moment holds"), "{e}");
}
