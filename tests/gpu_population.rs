//! Populations on the adapter the environment gives (lavapipe in CI): three networks that differ
//! in their seed (or in seed, initialisation, learning rate, alpha, beta and both norms), trained
//! in the same dispatches by one engine, each through its own training loop and run directory, end
//! exactly where the three single runs end (parameters, Adam's moments, every metrics line: bit for
//! bit, since each network runs the same kernels on the same data with the same numbers as alone);
//! a population stopped by Ctrl-C stops every network after the same step, and resumed from their
//! checkpoints it ends where the single runs end. Networks of the mixed and the sequential input,
//! whose epochs differ in length, train side by side, each through its own epochs, and end where
//! they end alone (equal as numbers: see `assert_values_eq`).

mod support;

use spatial_gpu::backend::Backend;
use spatial_gpu::checkpoint::Progress;
use spatial_gpu::config::{Init, InputMode, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use spatial_gpu::data::Datasets;
use spatial_gpu::gpu::population::Population;
use spatial_gpu::gpu::{GpuBackend, GpuContext, GpuOptions, MatmulChoice, Variant};
use spatial_gpu::model::{Params, TrainState};
use spatial_gpu::train::{self, Outcome};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::*;

const SEEDS: [u64; 3] = [1, 2, 3];

fn opts() -> GpuOptions {
    GpuOptions {
        matmul: MatmulChoice::Fixed(Variant::Tiled),
        steps_per_submit: 5,
        device_data: true,
    }
}

fn configs(data: &Datasets, mode: InputMode) -> (ModelConfig, Vec<TrainConfig>) {
    let (model, cfg) = small_configs(mode, data, 2, 1);
    let trains = SEEDS
        .iter()
        .map(|&seed| TrainConfig { seed, ..cfg.clone() })
        .collect();
    (model, trains)
}

/// Each network alone (`models[k]` with `trains[k]`): its final state, in `dirs[k]`.
fn single_runs(
    ctx: &Arc<GpuContext>,
    data: &Datasets,
    models: &[ModelConfig],
    trains: &[TrainConfig],
    dirs: &[&Path],
) -> Vec<TrainState> {
    trains
        .iter()
        .zip(models)
        .zip(dirs)
        .map(|((t, model), dir)| {
            let state = TrainState::new(Params::init(model, t.seed));
            let mut b =
                GpuBackend::with_options(ctx.clone(), model.clone(), t.clone(), state, opts()).unwrap();
            let outcome = train::train(&mut b, data, &quiet_options(dir), Progress::default()).unwrap();
            assert!(matches!(outcome, Outcome::Finished(_)), "{outcome:?}");
            b.state().unwrap()
        })
        .collect()
}

/// Trains every member of `pop` from `starts[k]` into `dirs[k]`, each on a thread of its own;
/// returns each member's outcome and final state.
fn train_members(
    pop: &Arc<Population>,
    data: &Datasets,
    dirs: &[&Path],
    starts: &[Progress],
    every: usize,
) -> Vec<(Outcome, TrainState)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..pop.len())
            .map(|k| {
                let mut member = pop.member(k).unwrap();
                let mut o = quiet_options(dirs[k]);
                o.checkpoint_every = every;
                o.stop = Some(member.stop_flag());
                let start = starts[k];
                s.spawn(move || {
                    let outcome = train::train(&mut member, data, &o, start).unwrap();
                    (outcome, member.state().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The population of `models[k]` with `trains[k]`, each from its initial state; `stop`: the flag
/// Ctrl-C sets.
fn new_population(
    ctx: &Arc<GpuContext>,
    models: &[ModelConfig],
    trains: &[TrainConfig],
    stop: Option<Arc<AtomicBool>>,
) -> anyhow::Result<Arc<Population>> {
    let states = models
        .iter()
        .zip(trains)
        .map(|(m, t)| TrainState::new(Params::init(m, t.seed)))
        .collect();
    Population::new(
        ctx.clone(),
        models.to_vec(),
        trains.to_vec(),
        states,
        opts(),
        stop,
    )
}

/// [`new_population`] trained from the start, each member into a new run directory with a
/// checkpoint every `every` steps (0: none); returns the directories and each member's outcome and
/// final state.
fn train_new_population(
    ctx: &Arc<GpuContext>,
    data: &Datasets,
    models: &[ModelConfig],
    trains: &[TrainConfig],
    stop: Option<Arc<AtomicBool>>,
    every: usize,
) -> (Vec<tempfile::TempDir>, Vec<(Outcome, TrainState)>) {
    let pop = new_population(ctx, models, trains, stop).unwrap();
    let together: Vec<_> = models.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
    let out = train_members(&pop, data, &dirs, &vec![Progress::default(); models.len()], every);
    (together, out)
}

/// `models[k]` with `trains[k]` from their initial states as one population, with Ctrl-C
/// (`ctrl_c`, set) pressed before the first step and a checkpoint every 3 steps: every network stops
/// after the first round, which the interval cuts short, at batch 3 (asserted). Returns the run
/// directories.
fn stopped_after_the_first_round(
    ctx: &Arc<GpuContext>,
    data: &Datasets,
    models: &[ModelConfig],
    trains: &[TrainConfig],
    ctrl_c: &Arc<AtomicBool>,
) -> Vec<tempfile::TempDir> {
    let (together, out) = train_new_population(ctx, data, models, trains, Some(ctrl_c.clone()), 3);
    let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
    let at = Progress { epoch: 0, batch: 3 };
    for (k, (outcome, _)) in out.iter().enumerate() {
        assert!(
            matches!(outcome, Outcome::Interrupted(p) if *p == at),
            "network {k} (seed {}): {outcome:?}",
            trains[k].seed
        );
        assert_eq!(load_run(dirs[k]).progress, at);
    }
    together
}

#[test]
fn a_population_of_three_equals_the_three_single_runs() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    for mode in [InputMode::Concat, InputMode::Sequential] {
        let data = small_data();
        let (model, trains) = configs(&data, mode);
        let single: Vec<_> = SEEDS.iter().map(|_| tempfile::tempdir().unwrap()).collect();
        let single_dirs: Vec<&Path> = single.iter().map(|d| d.path()).collect();
        let models = vec![model.clone(); SEEDS.len()];
        let alone = single_runs(&ctx, &data, &models, &trains, &single_dirs);

        let (together, out) = train_new_population(&ctx, &data, &models, &trains, None, 0);
        let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
        for (k, (outcome, state)) in out.iter().enumerate() {
            let what = format!("{mode}, seed {}", SEEDS[k]);
            assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
            assert_bits_eq(state, &alone[k], &format!("{what}: population vs alone"));
            assert_bits_eq(
                &load_run(dirs[k]).state,
                &alone[k],
                &format!("{what}: checkpoint"),
            );
            assert_eq!(
                metrics_without_timing(dirs[k]),
                metrics_without_timing(single_dirs[k]),
                "{what}: metrics lines"
            );
        }
        // The seeds differ, so the networks do.
        assert_ne!(alone[0].params.data, alone[1].params.data);
    }
}

/// Three networks that differ in everything a population allows (seed, initialisation, learning
/// rate, alpha, beta, transport norm and weight norm; one of them regular), in the same dispatches,
/// each end where it ends alone, bit for bit, in its state, its checkpoint and its metrics.
#[test]
fn a_population_of_different_hyperparameters_equals_the_single_runs() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (model, trains) = configs(&data, InputMode::Concat);
    let regular = ModelConfig {
        alpha: 0.0,
        beta: 0.0,
        ..model.clone()
    };
    let other = ModelConfig {
        alpha: 3.0,
        beta: 0.25,
        transport_norm: TransportNorm::Mean,
        weight_norm: WeightNorm::L2,
        init: Init::Xavier,
        ..model.clone()
    };
    assert_ne!(
        model.init,
        Init::Xavier,
        "the third network must change the initialisation"
    );
    let models = vec![model.clone(), regular, other];
    let mut trains = trains;
    trains[1].lr = 0.003;
    trains[2].lr = 0.02;
    let single: Vec<_> = SEEDS.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let single_dirs: Vec<&Path> = single.iter().map(|d| d.path()).collect();
    let alone = single_runs(&ctx, &data, &models, &trains, &single_dirs);

    let (together, out) = train_new_population(&ctx, &data, &models, &trains, None, 0);
    let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
    for (k, (outcome, state)) in out.iter().enumerate() {
        let what = format!("network {k} (alpha {}, lr {})", models[k].alpha, trains[k].lr);
        assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
        assert_bits_eq(state, &alone[k], &format!("{what}: population vs alone"));
        let ck = load_run(dirs[k]);
        assert_bits_eq(&ck.state, &alone[k], &format!("{what}: checkpoint"));
        assert_eq!(ck.model, models[k], "{what}: the checkpoint's model");
        assert_eq!(
            ck.train, trains[k],
            "{what}: the checkpoint's training configuration"
        );
        assert_eq!(
            metrics_without_timing(dirs[k]),
            metrics_without_timing(single_dirs[k]),
            "{what}: metrics lines"
        );
    }
    // The regular network's positions never move, the spatial ones' do; every network differs.
    let init = |k: usize| Params::init(&models[k], trains[k].seed);
    let positions = |p: &spatial_gpu::model::Params| {
        let layout = &p.layout;
        layout
            .positions
            .iter()
            .flat_map(|r| p.data[r.clone()].to_vec())
            .collect::<Vec<f32>>()
    };
    assert_eq!(
        positions(&alone[1].params),
        positions(&init(1)),
        "regular positions"
    );
    assert_ne!(
        positions(&alone[0].params),
        positions(&init(0)),
        "spatial positions"
    );
    assert_ne!(
        positions(&alone[2].params),
        positions(&init(2)),
        "spatial positions"
    );
    // The same seed with other hyperparameters gives another network: the values reach the kernels.
    let same_seed: Vec<TrainState> = {
        let dir = tempfile::tempdir().unwrap();
        let t = TrainConfig {
            seed: trains[0].seed,
            ..trains[2].clone()
        };
        single_runs(&ctx, &data, &[models[2].clone()], &[t], &[dir.path()])
    };
    assert_ne!(same_seed[0].params.data, alone[0].params.data);
}

#[test]
fn a_stopped_population_resumes_to_the_single_runs() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (model, trains) = configs(&data, InputMode::Concat);
    // One network regular with its own learning rate: the resumed records must be its own too.
    let mut models = vec![model.clone(); SEEDS.len()];
    models[1].alpha = 0.0;
    models[1].beta = 0.0;
    let mut trains = trains;
    trains[1].lr = 0.004;
    let single: Vec<_> = SEEDS.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let single_dirs: Vec<&Path> = single.iter().map(|d| d.path()).collect();
    let alone = single_runs(&ctx, &data, &models, &trains, &single_dirs);

    let ctrl_c = Arc::new(AtomicBool::new(true));
    let together = stopped_after_the_first_round(&ctx, &data, &models, &trains, &ctrl_c);
    let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
    let at = Progress { epoch: 0, batch: 3 };

    // Resume all three from their checkpoints, as one population again.
    ctrl_c.store(false, Ordering::SeqCst);
    let cks: Vec<_> = dirs.iter().map(|d| load_run(d)).collect();
    let pop = Population::new(
        ctx.clone(),
        cks.iter().map(|c| c.model.clone()).collect(),
        cks.iter().map(|c| c.train.clone()).collect(),
        cks.iter().map(|c| c.state.clone()).collect(),
        opts(),
        Some(ctrl_c),
    )
    .unwrap();
    let out = train_members(&pop, &data, &dirs, &[at; 3], 3);
    for (k, (outcome, state)) in out.iter().enumerate() {
        let what = format!("seed {}", SEEDS[k]);
        assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
        assert_bits_eq(state, &alone[k], &format!("{what}: resumed population vs alone"));
        assert_metrics_within(
            &metrics_without_timing(dirs[k]),
            &metrics_without_timing(single_dirs[k]),
            1e-6,
            &what,
        );
    }
}

/// Asserts two states are equal as numbers (parameters, both moments, step): a network whose batch
/// is smaller than the population's widest in a step adds exact zeros to its sums, which may turn
/// an exact `-0.0` into `+0.0` and nothing else (`gpu/step_table.rs`). Returns how many values
/// differ in their bits (only such zeros).
fn assert_values_eq(a: &TrainState, b: &TrainState, what: &str) -> usize {
    assert_eq!(a.step, b.step, "{what}: step counts differ");
    let mut zero_signs = 0;
    for (name, x, y) in [
        ("parameter", &a.params.data, &b.params.data),
        ("adam_m", &a.adam_m, &b.adam_m),
        ("adam_v", &a.adam_v, &b.adam_v),
    ] {
        assert_eq!(x.len(), y.len(), "{what}: {name} lengths differ");
        for i in 0..x.len() {
            assert!(
                x[i] == y[i],
                "{what}: {name} {i} differs: {:e} vs {:e}",
                x[i],
                y[i]
            );
            zero_signs += (x[i].to_bits() != y[i].to_bits()) as usize;
        }
    }
    zero_signs
}

/// The configurations of the mixed-and-sequential tests: a sequential regular network with its own
/// learning rate and 3 epochs, a sequential spatial one of 2 (15 batches per epoch of the small
/// data, the last full) and a mixed spatial one of 2 (8 batches, the last of 4 rows), all of the
/// same width. The shorter runs come last, as a grid orders them: once one finishes, the steps
/// leave it out of their dispatches (`Launch::networks`), while the epoch ends in between leave a
/// network idle before one that trains.
fn mixed_and_sequential(data: &Datasets) -> (Vec<ModelConfig>, Vec<TrainConfig>) {
    let (mixed, mixed_train) = small_configs(InputMode::Mixed, data, 2, 1);
    let (sequential, seq_train) = small_configs(InputMode::Sequential, data, 2, 2);
    assert_eq!(
        mixed.sizes, sequential.sizes,
        "mixed and sequential share the width"
    );
    let regular = ModelConfig {
        alpha: 0.0,
        beta: 0.0,
        ..sequential.clone()
    };
    let models = vec![regular, sequential, mixed];
    let trains = vec![
        TrainConfig {
            seed: 3,
            lr: 0.004,
            epochs: 3,
            ..seq_train.clone()
        },
        seq_train,
        mixed_train,
    ];
    (models, trains)
}

/// Networks of the mixed and the sequential input (epochs of 8 and 15 batches, last batches of 4
/// and 8 rows, 2 and 3 epochs) train in the same dispatches, each through its own epochs: each ends
/// where it ends alone, in its state and checkpoint (equal as numbers) and in every metrics line.
#[test]
fn mixed_and_sequential_networks_share_a_population() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (models, trains) = mixed_and_sequential(&data);
    let single: Vec<_> = models.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let single_dirs: Vec<&Path> = single.iter().map(|d| d.path()).collect();
    let alone = single_runs(&ctx, &data, &models, &trains, &single_dirs);

    let (together, out) = train_new_population(&ctx, &data, &models, &trains, None, 0);
    let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
    for (k, (outcome, state)) in out.iter().enumerate() {
        let what = format!("network {k} ({}, {} epochs)", trains[k].mode, trains[k].epochs);
        assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
        let steps = data_steps(&data, &trains[k]);
        assert_eq!(state.step, steps, "{what}: its own number of steps");
        let signs = assert_values_eq(state, &alone[k], &format!("{what}: population vs alone"));
        eprintln!("{what}: {signs} values differ only in the sign of a zero");
        let ck = load_run(dirs[k]);
        assert_values_eq(&ck.state, &alone[k], &format!("{what}: checkpoint"));
        assert_eq!(ck.train, trains[k], "{what}: the checkpoint's configuration");
        assert_eq!(
            metrics_without_timing(dirs[k]),
            metrics_without_timing(single_dirs[k]),
            "{what}: metrics lines"
        );
    }
}

/// Steps of a whole run of `train` on `data`.
fn data_steps(data: &Datasets, train: &TrainConfig) -> u64 {
    let order = spatial_gpu::data::batches::epoch_order(train.mode, data, train.seed, 0);
    (order.num_batches(train.batch_size) * train.epochs) as u64
}

/// A mixed-and-sequential population stopped by Ctrl-C after its first round, resumed from the
/// checkpoints of two networks with the third started afresh (so its networks stand at different
/// steps), ends where the single runs end.
#[test]
fn a_mixed_and_sequential_population_resumes_from_different_steps() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (models, trains) = mixed_and_sequential(&data);
    let single: Vec<_> = models.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let single_dirs: Vec<&Path> = single.iter().map(|d| d.path()).collect();
    let alone = single_runs(&ctx, &data, &models, &trains, &single_dirs);

    let ctrl_c = Arc::new(AtomicBool::new(true));
    let together = stopped_after_the_first_round(&ctx, &data, &models, &trains, &ctrl_c);
    let dirs: Vec<&Path> = together.iter().map(|d| d.path()).collect();
    let at = Progress { epoch: 0, batch: 3 };

    // Networks 0 and 1 resume at step 3, network 2 starts again from nothing.
    ctrl_c.store(false, Ordering::SeqCst);
    std::fs::remove_dir_all(dirs[2]).unwrap();
    std::fs::create_dir_all(dirs[2]).unwrap();
    let cks: Vec<_> = dirs[..2].iter().map(|d| load_run(d)).collect();
    let mut states: Vec<TrainState> = cks.iter().map(|c| c.state.clone()).collect();
    states.push(TrainState::new(Params::init(&models[2], trains[2].seed)));
    assert_eq!((states[0].step, states[2].step), (3, 0));
    let pop = Population::new(
        ctx.clone(),
        models.clone(),
        trains.clone(),
        states,
        opts(),
        Some(ctrl_c),
    )
    .unwrap();
    let out = train_members(&pop, &data, &dirs, &[at, at, Progress::default()], 3);
    for (k, (outcome, state)) in out.iter().enumerate() {
        let what = format!("network {k} ({})", trains[k].mode);
        assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
        assert_values_eq(state, &alone[k], &format!("{what}: resumed population vs alone"));
        assert_metrics_within(
            &metrics_without_timing(dirs[k]),
            &metrics_without_timing(single_dirs[k]),
            1e-6,
            &what,
        );
    }
}

#[test]
fn a_population_refuses_networks_that_differ_in_shape_or_schedule() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (model, trains) = configs(&data, InputMode::Concat);
    let try_with = |models: Vec<ModelConfig>, trains: Vec<TrainConfig>| {
        new_population(&ctx, &models, &trains, None)
            .err()
            .map(|e| format!("{e:#}"))
    };
    let mut batch = trains.clone();
    batch[2].batch_size = 4;
    let err = try_with(vec![model.clone(); 3], batch).expect("a batch size of its own is refused");
    assert!(err.contains("network 2") && err.contains("batch size"), "{err}");
    assert!(err.contains("--alpha"), "the error says what may differ: {err}");
    let mut wider = vec![model.clone(); 3];
    wider[1].sizes[2] += 1;
    let err = try_with(wider, trains.clone()).expect("another shape is refused");
    assert!(err.contains("network 1") && err.contains("shape"), "{err}");
    let mut activation = vec![model.clone(); 3];
    activation[1].activation = spatial_gpu::config::Activation::Relu;
    assert!(
        try_with(activation, trains.clone()).is_some(),
        "another activation is refused"
    );
    // Mixed and sequential share the width: accepted together, and with other epochs.
    let (mixed, mut mixed_trains) = configs(&data, InputMode::Mixed);
    mixed_trains[1].mode = InputMode::Sequential;
    mixed_trains[2].epochs += 1;
    assert_eq!(try_with(vec![mixed; 3], mixed_trains), None);
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const SMALL: &[&str] = &[
    "--no-progress",
    "--no-plot",
    "--hidden",
    "16,16,16",
    "--batch-size",
    "16",
];

/// `train --seeds` on the GPU: one population, one run directory per seed (a run like any other:
/// its own summary, metrics and checkpoint, resumable alone).
#[test]
fn train_seeds_on_the_gpu_writes_a_run_directory_per_seed() {
    if spatial_gpu::gpu::test_context().is_none() {
        return;
    }
    let data = cli_data_dir(4);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pop");
    let o = bin()
        .args([
            "train",
            "--backend",
            "gpu",
            "--epochs",
            "2",
            "--seeds",
            "1,2",
            "--checkpoint-every",
            "3",
        ])
        .args(SMALL)
        .arg("--data-dir")
        .arg(data.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&o, "train --seeds on the GPU");
    assert!(String::from_utf8_lossy(&o.stdout).contains("as one population"));
    let mut accuracies = Vec::new();
    for seed in [1u64, 2] {
        let dir = out.join(format!("seed-{seed}"));
        let summary = json(&dir.join("summary.json"));
        assert_eq!(summary["seed"], seed, "{}", dir.display());
        assert_eq!(metrics_without_timing(&dir).len(), 2, "{}", dir.display());
        assert_eq!(load_run(&dir).progress, Progress { epoch: 2, batch: 0 });
        accuracies.push(load_run(&dir).state.params.data);
    }
    assert_ne!(accuracies[0], accuracies[1], "the seeds give different networks");
    // A member is a run like any other: it resumes (and extends) alone.
    let o = bin()
        .args([
            "train",
            "--backend",
            "gpu",
            "--no-progress",
            "--no-plot",
            "--epochs",
            "3",
            "--resume",
        ])
        .arg(out.join("seed-1"))
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_success(&o, "resume one network of a population");
    assert_eq!(metrics_without_timing(&out.join("seed-1")).len(), 3);
}

/// On the CPU, `--seeds` runs one run after another, each the run `--seed N` would be.
#[test]
fn train_seeds_on_the_cpu_equals_single_runs() {
    let data = cli_data_dir(5);
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], out: &Path| {
        let o = bin()
            .args(["train", "--backend", "cpu", "--epochs", "1"])
            .args(SMALL)
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert_success(&o, &format!("train {args:?}"));
    };
    run(&["--seeds", "3,4"], &tmp.path().join("both"));
    run(&["--seed", "4"], &tmp.path().join("alone"));
    assert_bits_eq(
        &load_run(&tmp.path().join("both/seed-4")).state,
        &load_run(&tmp.path().join("alone")).state,
        "--seeds 3,4 vs --seed 4",
    );
    let o = bin()
        .args(["train", "--backend", "cpu", "--seeds", "1,1", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_fails_with(&o, &["--seeds", "seed 1 is given twice"]);
}

#[test]
fn a_member_is_handed_out_once() {
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (model, trains) = configs(&data, InputMode::Concat);
    let states = trains
        .iter()
        .map(|t| TrainState::new(Params::init(&model, t.seed)))
        .collect();
    let pop = Population::new(ctx, vec![model; 3], trains, states, opts(), None).unwrap();
    let first = pop.member(1).unwrap();
    assert!(pop.member(1).is_err(), "a second handle of network 1");
    assert!(pop.member(3).is_err(), "network 3 of 3");
    drop(first);
    assert!(pop.member(1).is_err(), "a network that left does not come back");
}
