//! Evaluation on the device (`gpu/evaluate.rs`), on the adapter the environment gives (lavapipe in
//! CI): the GPU's `count_correct` (the test set resident on the device, every batch in one submit,
//! the counts added up on the device) equals the default path (`backend::count_correct_on_host`:
//! the logits read back batch by batch and counted on the host) exactly, with and without a neuron
//! mask, for a single network and for each member of a population of 2, on test sets whose length
//! is not a multiple of the batch; a second test set of the same shape is told from the first, and
//! both stay on the device (the last two do); a test
//! set of more batches than one submit holds is counted over several submits; without data on the
//! device the host path is taken.
//!
//! The labels are chosen so that a count that goes wrong shows: a quarter missing, a quarter at
//! random, half the class the network itself predicts (its argmax on the host), so that the counts
//! are neither 0 nor all, and rows counted against another row's labels, or another network's
//! counts, come out different.

mod support;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spatial_gpu::backend::{count_correct_on_host, Backend};
use spatial_gpu::config::{Activation, InputMode, ModelConfig, TrainConfig};
use spatial_gpu::data::batches::{test_set, TestSet};
use spatial_gpu::data::{Datasets, SyntheticTask};
use spatial_gpu::gpu::evaluate::MAX_BATCHES_PER_SUBMIT;
use spatial_gpu::gpu::population::Population;
use spatial_gpu::gpu::{GpuBackend, GpuOptions, MatmulChoice, Variant};
use spatial_gpu::model::{NeuronMask, Params, TrainState};
use support::*;

fn opts(device_data: bool) -> GpuOptions {
    GpuOptions {
        matmul: MatmulChoice::Fixed(Variant::Tiled),
        steps_per_submit: 4,
        device_data,
    }
}

/// The small model of the other GPU tests (4x4 images, concat: 32 inputs, two heads of 10),
/// batches of `batch`, with relu activations (whose outputs follow the inputs more than the
/// sigmoid's: see [`predictions_that_vary`]).
fn model_and_train(batch: usize, seed: u64) -> (ModelConfig, TrainConfig) {
    let data = small_data();
    let (model, mut train) = small_configs(InputMode::Concat, &data, 1, seed);
    train.batch_size = batch;
    let model = ModelConfig {
        activation: Activation::Relu,
        ..model
    };
    (model, train)
}

fn backend(model: &ModelConfig, train: &TrainConfig, device_data: bool) -> Option<GpuBackend> {
    let ctx = spatial_gpu::gpu::test_context()?;
    let state = TrainState::new(Params::init(model, train.seed));
    Some(GpuBackend::with_options(ctx, model.clone(), train.clone(), state, opts(device_data)).unwrap())
}

/// Argmax over `z`, a tie to the lower class (as `count_correct`).
fn argmax(z: &[f32]) -> usize {
    z.iter()
        .enumerate()
        .fold(0, |best, (k, &v)| if v > z[best] { k } else { best })
}

/// Scales `b`'s parameters up until its predictions on `inputs` take at least 3 classes on every
/// head (an initialised network predicts nearly one class everywhere), so that rows counted
/// against another row's labels would count differently; returns the logits.
fn predictions_that_vary(b: &mut dyn Backend, inputs: &[f32], len: usize) -> Vec<f32> {
    let model = b.model_config().clone();
    let (width, offsets) = (model.output_dim(), model.head_offsets());
    let start = b.state().unwrap();
    for scale in [1.0, 3.0, 10.0, 30.0] {
        let mut s = start.clone();
        s.params.data.iter_mut().for_each(|v| *v *= scale);
        b.set_state(&s).unwrap();
        let logits = b.logits(inputs, len, None).unwrap();
        let classes = |h: usize| {
            let mut seen: Vec<usize> = (0..len)
                .map(|row| argmax(&logits[row * width + offsets[h]..row * width + offsets[h + 1]]))
                .collect();
            seen.sort_unstable();
            seen.dedup();
            seen.len()
        };
        if (0..model.heads).all(|h| classes(h) >= 3) {
            return logits;
        }
    }
    panic!("the network predicts fewer than 3 classes on a head at every scale tried");
}

/// `len` rows of random inputs in [-4, 4) (centred and wide, for predictions that vary); labels: a quarter missing, a quarter random, half what
/// `b` predicts for the row (its parameters scaled by [`predictions_that_vary`]).
fn labelled_test_set(b: &mut dyn Backend, len: usize, seed: u64) -> TestSet {
    let model = b.model_config().clone();
    let (d, heads, offsets) = (model.sizes[0], model.heads, model.head_offsets());
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let inputs: Vec<f32> = (0..len * d).map(|_| r.random_range(-4.0..4.0)).collect();
    let logits = predictions_that_vary(b, &inputs, len);
    let width = model.output_dim();
    let mut labels = Vec::with_capacity(len * heads);
    for row in 0..len {
        for h in 0..heads {
            let classes = offsets[h + 1] - offsets[h];
            let z = &logits[row * width + offsets[h]..row * width + offsets[h + 1]];
            labels.push(match r.random_range(0..4) {
                0 => -1,
                1 => r.random_range(0..classes as i32),
                _ => argmax(z) as i32,
            });
        }
    }
    TestSet {
        inputs,
        labels,
        len,
        input_dim: d,
    }
}

/// A third of every layer's neurons off (in the output layer too, whose logits are then 0: ties).
fn mask(model: &ModelConfig) -> NeuronMask {
    model
        .sizes
        .iter()
        .enumerate()
        .map(|(l, &n)| (0..n).map(|j| if (j + l) % 3 == 0 { 0.0 } else { 1.0 }).collect())
        .collect()
}

/// Asserts the counts say something: per head, some right and some wrong.
fn assert_informative(counts: &[(u64, u64)], what: &str) {
    for (h, &(c, n)) in counts.iter().enumerate() {
        assert!(
            0 < c && c < n,
            "{what}: head {h} has {c} of {n} right: the test cannot tell"
        );
    }
}

/// The GPU's counts and the host path's, for `test` without and with the mask; `informative`: the
/// labels are `b`'s (see [`labelled_test_set`]), so that the unmasked counts must be informative.
fn assert_same_counts(b: &mut dyn Backend, test: &TestSet, informative: bool, what: &str) -> Vec<(u64, u64)> {
    let keep = mask(b.model_config());
    let mut unmasked = Vec::new();
    for (name, keep) in [("unmasked", None), ("masked", Some(&keep))] {
        let want = count_correct_on_host(b, test, keep).unwrap();
        let got = b.count_correct(test, keep).unwrap();
        assert_eq!(
            got, want,
            "{what}, {name}: device counts vs the logits counted on the host"
        );
        if keep.is_none() {
            if informative {
                assert_informative(&want, &format!("{what}, {name}"));
            }
            unmasked = got;
        }
    }
    unmasked
}

#[test]
fn device_counts_equal_the_logits_path_for_one_network() {
    let (model, train) = model_and_train(8, 3);
    let Some(mut b) = backend(&model, &train, true) else {
        return;
    };
    // 37 rows: four full batches of 8 and one of 5.
    let test = labelled_test_set(&mut b, 37, 1);
    let first = assert_same_counts(&mut b, &test, true, "37 rows");
    assert_eq!(b.device_test_status(), Ok(true));
    // A second set of the same shape replaces the first (it is told apart by its content) ...
    let other = labelled_test_set(&mut b, 37, 2);
    let second = assert_same_counts(&mut b, &other, true, "another 37 rows");
    assert_ne!(
        first, second,
        "two test sets, the same counts: the test cannot tell them apart"
    );
    // ... and the first comes back. Both stay on the device (the last two test sets do), each with
    // its counts at these parameters, so once both were counted, going back and forth runs no pass.
    assert_eq!(
        b.count_correct(&test, None).unwrap(),
        first,
        "the first set again"
    );
    assert_eq!(b.device_test_sets(), 2);
    let passes = b.evaluation_passes();
    assert_eq!(b.count_correct(&other, None).unwrap(), second);
    assert_eq!(b.count_correct(&test, None).unwrap(), first);
    assert_eq!(b.evaluation_passes(), passes, "both sets' kept counts");
    // A masked count of it runs a pass on the device copy kept.
    let keep = mask(&model);
    assert_eq!(
        b.count_correct(&test, Some(&keep)).unwrap(),
        count_correct_on_host(&mut b, &test, Some(&keep)).unwrap(),
        "the first set again, masked"
    );
    assert_eq!(b.evaluation_passes(), passes + 1);
    // A test set from the data (concat, tasks of different class counts, unlabelled rows where a
    // task's test set is shorter).
    let data = Datasets::synthetic_tasks(
        &[
            SyntheticTask {
                name: "mnist",
                classes: 10,
                rows: 4,
                cols: 4,
                train: 8,
                test: 13,
            },
            SyntheticTask {
                name: "fashion-mnist",
                classes: 10,
                rows: 4,
                cols: 4,
                train: 8,
                test: 19,
            },
        ],
        7,
    );
    let real = test_set(InputMode::Concat, &data);
    let want = count_correct_on_host(&mut b, &real, None).unwrap();
    assert_eq!(b.count_correct(&real, None).unwrap(), want, "the data's test set");
    assert_eq!(want.iter().map(|c| c.1).collect::<Vec<_>>(), vec![13, 19]);
}

#[test]
fn a_test_set_of_more_batches_than_one_submit_is_counted_in_several() {
    // Batches of 1: one more row than one submit holds, so the counts run over two submits.
    let (model, train) = model_and_train(1, 4);
    let Some(mut b) = backend(&model, &train, true) else {
        return;
    };
    let test = labelled_test_set(&mut b, MAX_BATCHES_PER_SUBMIT + 3, 5);
    let want = count_correct_on_host(&mut b, &test, None).unwrap();
    assert_informative(&want, "long test set");
    assert_eq!(b.count_correct(&test, None).unwrap(), want);
    assert_eq!(b.device_test_status(), Ok(true));
}

#[test]
fn without_data_on_the_device_the_host_path_is_taken() {
    let (model, train) = model_and_train(8, 3);
    let Some(mut b) = backend(&model, &train, false) else {
        return;
    };
    let test = labelled_test_set(&mut b, 21, 1);
    assert_same_counts(&mut b, &test, true, "host path");
    assert_eq!(b.device_test_status(), Ok(false));
}

#[test]
fn device_counts_equal_the_logits_path_for_members_of_a_population() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let (model, train) = model_and_train(8, 1);
    let trains: Vec<TrainConfig> = [1, 2]
        .iter()
        .map(|&seed| TrainConfig {
            seed,
            ..train.clone()
        })
        .collect();
    let states = trains
        .iter()
        .map(|t| TrainState::new(Params::init(&model, t.seed)))
        .collect();
    let pop = Population::new(ctx, vec![model; 2], trains, states, opts(true), None).unwrap();
    let mut m0 = pop.member(0).unwrap();
    let mut m1 = pop.member(1).unwrap();
    // Labels from network 1's predictions, so networks 0 and 1 score differently.
    let test = labelled_test_set(&mut m1, 29, 9);
    let before = pop.evaluation_passes();
    let c1 = assert_same_counts(&mut m1, &test, true, "member 1");
    let c0 = assert_same_counts(&mut m0, &test, false, "member 0");
    assert_ne!(
        c0, c1,
        "two networks, the same counts: the test cannot tell them apart"
    );
    // Member 1's pass without a mask counted both networks, and member 0 took its counts from it;
    // each masked evaluation ran its own pass (the masks are the members' own).
    assert_eq!(
        pop.evaluation_passes() - before,
        3,
        "passes for 2 unmasked and 2 masked evaluations"
    );
    // New parameters for network 0: the counts kept are stale, and both networks count again.
    let mut state = m0.state().unwrap();
    state.params.data.iter_mut().for_each(|v| *v *= -1.0);
    m0.set_state(&state).unwrap();
    let before = pop.evaluation_passes();
    let again0 = m0.count_correct(&test, None).unwrap();
    assert_eq!(
        again0,
        count_correct_on_host(&mut m0, &test, None).unwrap(),
        "member 0, new parameters"
    );
    assert_ne!(
        again0, c0,
        "new parameters, the same counts: the test cannot tell them apart"
    );
    assert_eq!(m1.count_correct(&test, None).unwrap(), c1, "member 1, unchanged");
    assert_eq!(
        pop.evaluation_passes() - before,
        1,
        "one pass for both after the change"
    );
}
