//! Resuming is exact: on the CPU backend a run that was stopped (after any step, at any instant, by
//! SIGINT, SIGKILL, or a finished shorter run extended with `--epochs`) and resumed ends with
//! parameters and Adam moments equal bit for bit to those of a run that went straight through.

mod support;

use spatial_gpu::backend::Backend;
use spatial_gpu::checkpoint::{self, Progress};
use spatial_gpu::config::InputMode;
use spatial_gpu::train::{self, Outcome};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Stops a run after `k` steps through its stop flag, resumes it from its checkpoint, and compares
/// the end with `reference` (the state of the uninterrupted run). `every` is `--checkpoint-every`.
fn interrupt_and_resume(mode: InputMode, epochs: usize, stops: &[u64], every: usize, what: &str) {
    let data = small_data();
    let (model, cfg) = small_configs(mode, &data, epochs, 5);
    let straight = tempfile::tempdir().unwrap();
    let reference = train_through(&model, &cfg, &data, straight.path());
    let n_batches =
        spatial_gpu::data::epoch_order(mode, &data, cfg.seed, 0).num_batches(cfg.batch_size) as u64;

    let dir = tempfile::tempdir().unwrap();
    let mut opts = quiet_options(dir.path());
    opts.checkpoint_every = every;
    let mut backend = Wrapped::new(new_backend(&model, &cfg));
    let mut start = Progress::default();
    for &k in stops {
        backend.stop_at = Some(k);
        backend.stop.store(false, std::sync::atomic::Ordering::SeqCst);
        opts.stop = Some(backend.stop.clone());
        let outcome = train::train(&mut backend, &data, &opts, start).unwrap();
        let Outcome::Interrupted(p) = outcome else {
            panic!("{what}: stop after step {k}: {outcome:?}")
        };
        assert_eq!(
            p,
            Progress {
                epoch: (k / n_batches) as usize,
                batch: (k % n_batches) as usize
            },
            "{what}"
        );
        // The checkpoint holds exactly the state at the stop, whatever was saved before.
        let ck = load_run(dir.path());
        assert_eq!(ck.progress, p, "{what}");
        // A mid-epoch checkpoint carries the losses of the epoch's steps so far.
        assert_eq!(
            ck.epoch_losses.as_ref().map(|l| l.steps),
            (p.batch > 0).then_some(p.batch as u64),
            "{what}"
        );
        assert_bits_eq(
            &ck.state,
            &backend.state().unwrap(),
            &format!("{what}: checkpoint at step {k}"),
        );
        // Continue from the file alone, in a new backend, as a new process would.
        let (inner, progress) = resumed_backend(dir.path(), None);
        backend = Wrapped::new(inner);
        start = progress;
    }
    opts.stop = None;
    let outcome = train::train(&mut backend, &data, &opts, start).unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
    assert_bits_eq(
        &backend.state().unwrap(),
        &reference,
        &format!("{what}: final state"),
    );
    assert_bits_eq(
        &load_run(dir.path()).state,
        &reference,
        &format!("{what}: final checkpoint"),
    );
    // One metrics line per epoch, whatever the interruptions.
    let epochs_logged: Vec<u64> = metrics_without_timing(dir.path())
        .iter()
        .map(|m| m["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs_logged, (1..=epochs as u64).collect::<Vec<_>>(), "{what}");
    // With the losses of all their steps, however they were cut.
    assert_metrics_close(
        &metrics_without_timing(dir.path()),
        &metrics_without_timing(straight.path()),
        what,
    );
}

#[test]
fn stop_after_any_step_and_resume_is_bit_exact_concat() {
    // 8 batches per epoch, 3 epochs: stops after the first step, mid-epoch, at an epoch's end, just
    // after one, and before the last step.
    for k in [1, 5, 8, 9, 23] {
        interrupt_and_resume(
            InputMode::Concat,
            3,
            &[k],
            0,
            &format!("concat, stop after step {k}"),
        );
    }
}

#[test]
fn stop_resume_is_bit_exact_in_every_mode_and_repeatedly() {
    interrupt_and_resume(InputMode::Mixed, 3, &[3, 11, 12, 20], 0, "mixed, four stops");
    // Sequential: 120 examples, 15 batches per epoch.
    interrupt_and_resume(
        InputMode::Sequential,
        2,
        &[7, 15, 16, 29],
        0,
        "sequential, four stops",
    );
}

#[test]
fn periodic_checkpoints_do_not_change_the_run() {
    interrupt_and_resume(InputMode::Concat, 3, &[10], 3, "concat, --checkpoint-every 3");
    interrupt_and_resume(
        InputMode::Concat,
        2,
        &[],
        1,
        "concat, --checkpoint-every 1, no stop",
    );
}

/// `--epochs N` on a finished M-epoch run, through the library: ends where an N-epoch run ends, and
/// the metrics of every epoch are those of the N-epoch run.
#[test]
fn extending_a_finished_run_is_bit_exact() {
    let data = small_data();
    for mode in [InputMode::Concat, InputMode::Sequential] {
        let (model, cfg4) = small_configs(mode, &data, 4, 9);
        let straight = tempfile::tempdir().unwrap();
        let reference = train_through(&model, &cfg4, &data, straight.path());

        let dir = tempfile::tempdir().unwrap();
        let cfg2 = spatial_gpu::config::TrainConfig {
            epochs: 2,
            ..cfg4.clone()
        };
        train_through(&model, &cfg2, &data, dir.path());
        for epochs in [3, 4] {
            let (mut b, start) = resumed_backend(dir.path(), Some(epochs));
            assert_eq!(
                start,
                Progress {
                    epoch: epochs - 1,
                    batch: 0
                }
            );
            let outcome = train::train(&mut b, &data, &quiet_options(dir.path()), start).unwrap();
            assert!(matches!(outcome, Outcome::Finished(_)));
        }
        assert_bits_eq(
            &load_run(dir.path()).state,
            &reference,
            &format!("{mode}: 2 epochs, then 3, then 4"),
        );
        assert_eq!(
            metrics_without_timing(dir.path()),
            metrics_without_timing(straight.path()),
            "{mode}"
        );
    }
}

/// The same through the command line: `--resume DIR --epochs 3` after a 2-epoch run.
#[test]
fn cli_resume_with_more_epochs_matches_a_straight_run() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let (short, long) = (tmp.path().join("short"), tmp.path().join("long"));
    assert_success(
        &train_cli(
            data.path(),
            &["--epochs", "2", "--seed", "4", "--out", short.to_str().unwrap()],
        ),
        "2 epochs",
    );
    assert_success(
        &train_cli(
            data.path(),
            &["--epochs", "3", "--seed", "4", "--out", long.to_str().unwrap()],
        ),
        "3 epochs",
    );
    let out = resume_cli(&short, data.path(), &["--epochs", "3"]);
    assert_success(&out, "--resume --epochs 3");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\nepoch 3 on cpu"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (a, b) = (load_run(&short), load_run(&long));
    assert_eq!((a.progress, &a.model, &a.train), (b.progress, &b.model, &b.train));
    assert_bits_eq(
        &a.state,
        &b.state,
        "cli: 2 epochs + --resume --epochs 3 vs 3 epochs",
    );
    assert_eq!(metrics_without_timing(&short), metrics_without_timing(&long));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(train::summary_path(&short)).unwrap()).unwrap();
    assert_eq!(summary["epochs"], 3);

    // Resuming a finished run without --epochs has nothing to do and changes nothing.
    let before = std::fs::read(train::checkpoint_path(&short)).unwrap();
    let out = resume_cli(&short, data.path(), &[]);
    assert_success(&out, "--resume of a finished run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));
    assert_eq!(std::fs::read(train::checkpoint_path(&short)).unwrap(), before);
}

fn spawn_train(data: &Path, args: &[&str]) -> Child {
    bin()
        .arg("train")
        .args(CLI_OPTS)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn spawn_resume(dir: &Path, data: &Path, args: &[&str]) -> Child {
    bin()
        .args(["train", "--backend", "cpu", "--no-progress", "--resume"])
        .arg(dir)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `path` exists or the child exits; true if it exists.
fn wait_for_file(path: &Path, child: &mut Child) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if path.exists() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return path.exists();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{} did not appear within 120 s", path.display());
}

fn kill(signal: &str, child: &Child) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} failed");
}

/// SIGKILL at arbitrary instants of a run that saves after every step (so most kills land during a
/// save): after each kill the checkpoint loads, and resuming from it ends exactly where a run that
/// was never killed ends.
#[test]
fn sigkill_at_any_instant_then_resume_is_bit_exact() {
    let data = cli_data_dir(2);
    let tmp = tempfile::tempdir().unwrap();
    let (killed, straight) = (tmp.path().join("killed"), tmp.path().join("straight"));
    let epochs = ["--epochs", "20", "--seed", "8", "--checkpoint-every", "1"];
    let o = train_cli(
        data.path(),
        &[&epochs[..], &["--out", straight.to_str().unwrap()]].concat(),
    );
    assert_success(&o, "straight run");
    let ckpt = train::checkpoint_path(&killed);

    let mut child = spawn_train(
        data.path(),
        &[&epochs[..], &["--out", killed.to_str().unwrap()]].concat(),
    );
    let mut kills = 0;
    let mut steps_seen = Vec::new();
    for delay_ms in [0u64, 3, 11, 23, 2, 41, 7, 61, 13, 31] {
        if !wait_for_file(&ckpt, &mut child) {
            break;
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill
        }
        kill("-KILL", &child);
        let _ = child.wait();
        kills += 1;
        // Whatever instant the kill hit, the checkpoint is whole and consistent.
        let ck = checkpoint::load(&ckpt).unwrap_or_else(|e| panic!("after kill {kills}: {e}"));
        steps_seen.push(ck.state.step);
        child = spawn_resume(&killed, data.path(), &["--checkpoint-every", "1"]);
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "the last resume failed: {err}");
    eprintln!("killed {kills} times, at checkpoints of steps {steps_seen:?}");
    assert!(
        kills >= 3,
        "the run was too quick to be killed more than {kills} times"
    );
    let (a, b) = (load_run(&killed), load_run(&straight));
    assert_eq!(a.progress, b.progress);
    assert_bits_eq(&a.state, &b.state, &format!("killed {kills} times vs straight"));
    // Temporary files of killed saves are cleaned up on resume: only the run's own files remain.
    assert_eq!(
        file_names(&killed),
        [
            "curves.png",
            "curves.svg",
            "history.safetensors",
            "metrics.csv",
            "metrics.jsonl",
            "model.safetensors",
            "summary.json"
        ]
    );
    assert_eq!(metrics_without_timing(&killed).len(), 20);
}

/// Ctrl-C: the run saves at the next step boundary, exits with 130 and says how to resume; the
/// resume command completes the run, which ends where a straight run ends.
#[test]
fn sigint_saves_exits_130_and_resume_completes() {
    let data = cli_data_dir(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run with space");
    let mut child = spawn_train(
        data.path(),
        &[
            "--epochs",
            "100000",
            "--seed",
            "6",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    assert!(
        wait_for_file(&train::checkpoint_path(&dir), &mut child),
        "the run ended before its first checkpoint"
    );
    kill("-INT", &child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(130),
        "exit status after SIGINT; stderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let resume_line = err
        .lines()
        .find(|l| l.starts_with("Resume with: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        resume_line.contains("spatial-gpu train --resume") && resume_line.contains("--backend cpu"),
        "{err}"
    );
    assert!(
        resume_line.contains(&format!("'{}'", dir.display())),
        "the path is quoted for the shell: {err}"
    );
    assert!(
        resume_line.contains(&data.path().display().to_string()),
        "the data directory is kept: {err}"
    );

    let ck = load_run(&dir);
    let stopped = ck.progress;
    assert!(stopped.epoch >= 1 && stopped.epoch < 100000, "{stopped:?}");
    // Run the printed command (with a shorter target), as a user would.
    let target = (stopped.epoch + 1).to_string();
    let cmd = format!(
        "{} --epochs {target} --no-progress",
        resume_line.trim_start_matches("Resume with: ")
    );
    let cmd = cmd.replacen("spatial-gpu", &shell_quote(env!("CARGO_BIN_EXE_spatial-gpu")), 1);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("SPATIAL_GPU_NO_FETCH", "1")
        .output()
        .unwrap();
    assert_success(&out, &cmd);
    assert!(train::summary_path(&dir).exists());

    let straight = tmp.path().join("straight");
    let o = train_cli(
        data.path(),
        &[
            "--epochs",
            &target,
            "--seed",
            "6",
            "--out",
            straight.to_str().unwrap(),
        ],
    );
    assert_success(&o, "straight run");
    assert_bits_eq(
        &load_run(&dir).state,
        &load_run(&straight).state,
        "SIGINT + resume vs straight",
    );
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// With `SPATIAL_GPU_DATA` set: the real data, a stop mid-epoch and a resume, bit-exact (small
/// hidden layers to stay quick).
#[test]
fn real_data_stop_and_resume_is_bit_exact() {
    let Some(dir) = std::env::var_os("SPATIAL_GPU_DATA").filter(|v| !v.is_empty()) else {
        eprintln!("skipped: SPATIAL_GPU_DATA is not set");
        return;
    };
    let data = match spatial_gpu::data::load(Path::new(&dir)) {
        Ok(d) => d,
        Err(e) if std::env::var("SPATIAL_GPU_REQUIRE_DATA").is_ok_and(|v| v == "1") => panic!("{e}"),
        Err(e) => return eprintln!("skipped: {e}"),
    };
    let (mut model, mut cfg) = small_configs(InputMode::Concat, &data, 1, 3);
    model.sizes = vec![model.sizes[0], 32, 32, 32, 32, 20];
    cfg.batch_size = 256;
    let straight = tempfile::tempdir().unwrap();
    let reference = train_through(&model, &cfg, &data, straight.path());
    let run = tempfile::tempdir().unwrap();
    let mut b = Wrapped::new(new_backend(&model, &cfg));
    b.stop_at = Some(100);
    let mut opts = quiet_options(run.path());
    opts.stop = Some(b.stop.clone());
    let outcome = train::train(&mut b, &data, &opts, Progress::default()).unwrap();
    assert!(
        matches!(outcome, Outcome::Interrupted(Progress { epoch: 0, batch: 100 })),
        "{outcome:?}"
    );
    let (mut b, start) = resumed_backend(run.path(), None);
    train::train(&mut b, &data, &quiet_options(run.path()), start).unwrap();
    assert_bits_eq(
        &b.state().unwrap(),
        &reference,
        "real data, stopped after step 100",
    );
}

/// A metrics file that went further than the checkpoint (lines of later epochs, a line cut short by
/// a crash) is trimmed on resume to one line per finished epoch.
#[test]
fn resume_trims_metrics_to_the_checkpoint() {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 3, 12);
    let straight = tempfile::tempdir().unwrap();
    train_through(&model, &cfg, &data, straight.path());

    let dir = tempfile::tempdir().unwrap();
    let mut b = Wrapped::new(new_backend(&model, &cfg));
    b.stop_at = Some(11);
    let mut opts = quiet_options(dir.path());
    opts.stop = Some(b.stop.clone());
    let outcome = train::train(&mut b, &data, &opts, Progress::default()).unwrap();
    assert!(
        matches!(outcome, Outcome::Interrupted(Progress { epoch: 1, batch: 3 })),
        "{outcome:?}"
    );
    let metrics = train::metrics_path(dir.path());
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    let first = text.lines().next().unwrap().to_string();
    text.push_str(&first.replace("\"epoch\":1", "\"epoch\":2"));
    text.push_str("\n{\"epoch\":3,\"sec");
    std::fs::write(&metrics, text).unwrap();

    let (mut b, start) = resumed_backend(dir.path(), None);
    train::train(&mut b, &data, &quiet_options(dir.path()), start).unwrap();
    let got = metrics_without_timing(dir.path());
    let want = metrics_without_timing(straight.path());
    assert_eq!((&got[0], &got[2]), (&want[0], &want[2]));
    // Epoch 2 was interrupted: its mean losses are summed in two parts, equal but for rounding.
    assert_metrics_close(&got, &want, "trimmed");
}

/// The GPU backend (any adapter, Mesa's lavapipe included; skipped without one unless
/// `SPATIAL_GPU_REQUIRE_ADAPTER=1`): a run stopped mid-epoch and resumed from its checkpoint in a new
/// backend ends where a straight GPU run ends, within the tolerance of the CPU-vs-GPU tests after
/// ten steps (abs 2e-4 + rel 1e-3; `tests/gpu_step.rs`), and the checkpoint is the same format.
#[test]
fn gpu_stop_and_resume_matches_within_tolerance() {
    use spatial_gpu::gpu::GpuBackend;
    use spatial_gpu::model::{Params, TrainState};
    let Some(ctx) = spatial_gpu::gpu::test_context() else {
        return;
    };
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 2, 21);
    let gpu = |state: TrainState, cfg: &spatial_gpu::config::TrainConfig| {
        GpuBackend::new(ctx.clone(), model.clone(), cfg.clone(), state).unwrap()
    };
    let fresh = || TrainState::new(Params::init(&model, cfg.seed));

    let straight = tempfile::tempdir().unwrap();
    let mut b = gpu(fresh(), &cfg);
    train::train(
        &mut b,
        &data,
        &quiet_options(straight.path()),
        Progress::default(),
    )
    .unwrap();
    let reference = b.state().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut w = Wrapped::new(gpu(fresh(), &cfg));
    w.stop_at = Some(5);
    let mut opts = quiet_options(dir.path());
    opts.stop = Some(w.stop.clone());
    let outcome = train::train(&mut w, &data, &opts, Progress::default()).unwrap();
    assert!(
        matches!(outcome, Outcome::Interrupted(Progress { epoch: 0, batch: 5 })),
        "{outcome:?}"
    );
    let ck = load_run(dir.path());
    let mut b = gpu(ck.state, &ck.train);
    train::train(&mut b, &data, &quiet_options(dir.path()), ck.progress).unwrap();
    let got = b.state().unwrap();
    assert_eq!(got.step, reference.step);
    let exact = got
        .params
        .data
        .iter()
        .zip(&reference.params.data)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    eprintln!(
        "GPU resume: parameters {}",
        if exact { "bit-exact" } else { "within tolerance" }
    );
    for (name, x, y) in [
        ("parameter", &got.params.data, &reference.params.data),
        ("adam_m", &got.adam_m, &reference.adam_m),
        ("adam_v", &got.adam_v, &reference.adam_v),
    ] {
        for (i, (&a, &b)) in x.iter().zip(y.iter()).enumerate() {
            assert!(
                (a - b).abs() <= 2e-4 + 1e-3 * b.abs(),
                "{name} {i}: resumed {a:e} vs straight {b:e}"
            );
        }
    }
    // The GPU sums its losses in f32: the interrupted epoch's mean, summed in two parts, to 1e-6.
    assert_metrics_within(
        &metrics_without_timing(dir.path()),
        &metrics_without_timing(straight.path()),
        1e-6,
        "gpu",
    );
}

/// A crash between an epoch's checkpoint and its metrics line: the resume restores the line from the
/// checkpoint, so metrics.jsonl still has one line per epoch.
#[test]
fn resume_restores_a_metrics_line_lost_in_a_crash() {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Mixed, &data, 3, 13);
    let straight = tempfile::tempdir().unwrap();
    train_through(&model, &cfg, &data, straight.path());

    let dir = tempfile::tempdir().unwrap();
    let mut b = Wrapped::new(new_backend(&model, &cfg));
    b.stop_at = Some(16);
    let mut opts = quiet_options(dir.path());
    opts.stop = Some(b.stop.clone());
    let outcome = train::train(&mut b, &data, &opts, Progress::default()).unwrap();
    assert!(
        matches!(outcome, Outcome::Interrupted(Progress { epoch: 2, batch: 0 })),
        "{outcome:?}"
    );
    let metrics = train::metrics_path(dir.path());
    let text = std::fs::read_to_string(&metrics).unwrap();
    let first_line_only = format!("{}\n", text.lines().next().unwrap());
    std::fs::write(&metrics, first_line_only).unwrap();

    let (mut b, start) = resumed_backend(dir.path(), None);
    train::train(&mut b, &data, &quiet_options(dir.path()), start).unwrap();
    assert_eq!(
        metrics_without_timing(dir.path()),
        metrics_without_timing(straight.path())
    );
}
