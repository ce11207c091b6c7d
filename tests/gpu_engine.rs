//! The GPU engine's data path and submission, on the adapter the environment gives (lavapipe in
//! CI): batches gathered on the device equal the host's `EpochOrder::fill_batch` bit for bit (every
//! mode, tasks of different image sizes and class counts, the short last batch); an epoch recorded
//! in chunks of many steps per submit equals the same epoch one step per submit and the same epoch
//! from host-built batches, bit for bit; and a chunked run stopped at a checkpoint and resumed
//! equals the run that went straight through, bit for bit (its losses to a relative 1e-6).

mod support;

use spatial_gpu::backend::Backend;
use spatial_gpu::checkpoint::Progress;
use spatial_gpu::config::{InputMode, ModelConfig, Overrides, TrainConfig};
use spatial_gpu::data::batches::{Batch, EpochOrder};
use spatial_gpu::data::{epoch_order, Datasets, SyntheticTask};
use spatial_gpu::gpu::{GpuBackend, GpuContext, GpuOptions, MatmulChoice, Variant};
use spatial_gpu::model::{Params, TrainState};
use spatial_gpu::train::{self, Outcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::*;

/// Three made-up tasks: two of 4x4 images and one of 3x5 (concat only), of 10, 7 and 4 classes, and
/// training sets of 37, 29 and 41 examples (so every epoch pairs repeats and ends in a short batch).
fn three_tasks(same_size: bool) -> Datasets {
    let (rows, cols) = if same_size { (4, 4) } else { (3, 5) };
    Datasets::synthetic_tasks(
        &[
            SyntheticTask {
                name: "mnist",
                classes: 10,
                rows: 4,
                cols: 4,
                train: 37,
                test: 9,
            },
            SyntheticTask {
                name: "fashion-mnist",
                classes: 7,
                rows: 4,
                cols: 4,
                train: 29,
                test: 9,
            },
            SyntheticTask {
                name: "animal-mnist",
                classes: 4,
                rows,
                cols,
                train: 41,
                test: 9,
            },
        ],
        5,
    )
}

fn configs(data: &Datasets, mode: InputMode, batch: usize) -> (ModelConfig, TrainConfig) {
    let o = Overrides {
        mode: Some(mode),
        hidden: Some(vec![12, 10, 10, 8]),
        alpha: Some(0.5),
        beta: Some(2.0),
        epochs: Some(2),
        seed: Some(3),
        batch_size: Some(batch),
        lr: Some(0.01),
        ..Overrides::default()
    };
    o.configs_for(&data.shape()).unwrap()
}

fn gpu(ctx: &Arc<GpuContext>, model: &ModelConfig, train: &TrainConfig, opts: GpuOptions) -> GpuBackend {
    let state = TrainState::new(Params::init(model, train.seed));
    GpuBackend::with_options(ctx.clone(), model.clone(), train.clone(), state, opts).unwrap()
}

/// A fixed matmul variant, so that two backends built apart run the same kernels.
fn opts(steps_per_submit: usize, device_data: bool) -> GpuOptions {
    GpuOptions {
        matmul: MatmulChoice::Fixed(Variant::Tiled),
        steps_per_submit,
        device_data,
    }
}

#[test]
fn device_batches_equal_host_batches_in_every_mode() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    for (mode, same_size) in [
        (InputMode::Concat, false),
        (InputMode::Mixed, true),
        (InputMode::Sequential, true),
    ] {
        let data = three_tasks(same_size);
        let (model, train) = configs(&data, mode, 16);
        let mut b = gpu(&ctx, &model, &train, opts(4, true));
        for epoch in 0..2 {
            let order = epoch_order(mode, &data, train.seed, epoch);
            let n = order.num_batches(train.batch_size);
            for k in 0..n {
                let mut host = Batch::default();
                order.fill_batch(&data, mode, k, train.batch_size, &mut host);
                let dev = b.gathered_batch(&data, &order, k).unwrap();
                let what = format!("{mode}, epoch {epoch}, batch {k} of {n}");
                assert_eq!(dev.size, host.size, "{what}: rows");
                assert_eq!(dev.labels, host.labels, "{what}: labels");
                assert_eq!(dev.inputs.len(), host.inputs.len(), "{what}: inputs");
                let differ = (0..host.inputs.len())
                    .filter(|&i| dev.inputs[i].to_bits() != host.inputs[i].to_bits())
                    .count();
                assert_eq!(differ, 0, "{what}: {differ} input values differ");
            }
        }
        assert_eq!(b.device_data_status(), Ok(true), "{mode}");
    }
}

/// Trains one epoch through `train_batches` and returns the state and mean losses.
fn one_epoch(b: &mut GpuBackend, data: &Datasets, order: &EpochOrder) -> (TrainState, Vec<f64>) {
    let n = order.num_batches(b.train_config().batch_size);
    let mut scratch = Batch::default();
    b.train_batches(data, order, 0..n, &mut scratch).unwrap();
    let l = b.take_losses().unwrap().unwrap();
    let mut losses = vec![l.task, l.total];
    losses.extend(l.transport.iter().chain(&l.density));
    (b.state().unwrap(), losses)
}

#[test]
fn a_chunked_epoch_equals_a_step_by_step_epoch() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    for mode in [InputMode::Concat, InputMode::Sequential] {
        let data = three_tasks(true);
        let (model, train) = configs(&data, mode, 8);
        let order = epoch_order(mode, &data, train.seed, 0);
        let n = order.num_batches(train.batch_size);
        let (one, l1) = one_epoch(&mut gpu(&ctx, &model, &train, opts(1, true)), &data, &order);
        let mut whole = gpu(&ctx, &model, &train, opts(n, true));
        let (all, l_all) = one_epoch(&mut whole, &data, &order);
        let (some, l_some) = one_epoch(&mut gpu(&ctx, &model, &train, opts(3, true)), &data, &order);
        let (host, l_host) = one_epoch(&mut gpu(&ctx, &model, &train, opts(3, false)), &data, &order);
        assert_eq!(whole.device_data_status(), Ok(true));
        assert_eq!(one.step, n as u64);
        let what = format!("{mode}");
        assert_bits_eq(
            &all,
            &one,
            &format!("{what}: the whole epoch in one submit vs one step each"),
        );
        assert_bits_eq(&some, &one, &format!("{what}: chunks of 3 vs one step each"));
        assert_bits_eq(&host, &one, &format!("{what}: host batches vs device batches"));
        // The losses accumulate on the device over every step of the epoch, however submitted.
        for (name, l) in [("whole", &l_all), ("chunks of 3", &l_some), ("host", &l_host)] {
            let same = l.iter().zip(&l1).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what}: losses {name} {l:?} vs one step each {l1:?}");
        }
    }
}

#[test]
fn a_chunked_run_stopped_and_resumed_equals_a_straight_run() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 2, 5);
    // 8 batches per epoch; chunks of 5 steps, cut at every checkpoint (every 3 steps).
    let straight_dir = tempfile::tempdir().unwrap();
    let mut straight = gpu(&ctx, &model, &cfg, opts(5, true));
    let outcome = train::train(
        &mut straight,
        &data,
        &quiet_options(straight_dir.path()),
        Progress::default(),
    )
    .unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)), "{outcome:?}");
    let reference = straight.state().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut o = quiet_options(dir.path());
    o.checkpoint_every = 3;
    // Ctrl-C before the first step: the run stops at the end of its first chunk, which the
    // checkpoint interval cuts at step 3.
    let stop = Arc::new(AtomicBool::new(true));
    o.stop = Some(stop.clone());
    let mut b = gpu(&ctx, &model, &cfg, opts(5, true));
    let outcome = train::train(&mut b, &data, &o, Progress::default()).unwrap();
    let Outcome::Interrupted(p) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(p, Progress { epoch: 0, batch: 3 });
    let ck = load_run(dir.path());
    assert_eq!(ck.progress, p);
    assert_bits_eq(&ck.state, &b.state().unwrap(), "the checkpoint at the stop");

    stop.store(false, Ordering::SeqCst);
    let mut resumed =
        GpuBackend::with_options(ctx.clone(), ck.model, ck.train, ck.state, opts(5, true)).unwrap();
    let outcome = train::train(&mut resumed, &data, &o, p).unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)), "{outcome:?}");
    assert_bits_eq(&resumed.state().unwrap(), &reference, "resumed vs straight");
    // Accuracies exactly; the losses of the interrupted epoch are summed on the device in f32 in
    // two parts (before and after the stop), so to a relative 1e-6.
    assert_metrics_within(
        &metrics_without_timing(dir.path()),
        &metrics_without_timing(straight_dir.path()),
        1e-6,
        "chunked GPU run, stopped and resumed",
    );
}
