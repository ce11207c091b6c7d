//! Helpers shared by the checkpoint, resume and Python-snippet tests: small made-up datasets written
//! as IDX files, the `spatial-gpu` binary, small models trained through the library, and bit-exact
//! comparisons of training states.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use spatial_gpu::backend::Backend;
use spatial_gpu::checkpoint::{self, Checkpoint};
use spatial_gpu::config::{InputMode, ModelConfig, TrainConfig};
use spatial_gpu::cpu::CpuBackend;
use spatial_gpu::data::batches::Batch;
use spatial_gpu::data::{Datasets, IdxImages, TaskData, SET_FILES};
use spatial_gpu::model::{NeuronMask, Params, TrainState};
use spatial_gpu::train::{self, Outcome, RunOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Training examples per set in the command-line tests: 6 batches of 16 per epoch.
pub const CLI_TRAIN: usize = 96;
/// Test examples per set in the command-line tests.
pub const CLI_TEST: usize = 32;
/// Options every command-line training run of the tests shares: a small model, small batches.
pub const CLI_OPTS: &[&str] = &[
    "--backend",
    "cpu",
    "--hidden",
    "16,16,16",
    "--batch-size",
    "16",
    "--init",
    "xavier",
    "--no-progress",
];

fn idx_images(images: &IdxImages) -> Vec<u8> {
    let mut b = 0x0803u32.to_be_bytes().to_vec();
    for d in [images.count, images.rows, images.cols] {
        b.extend_from_slice(&(d as u32).to_be_bytes());
    }
    b.extend_from_slice(&images.pixels);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = 0x0801u32.to_be_bytes().to_vec();
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

/// Writes `data` as a data directory (a folder per task, named as the task: `mnist/` and
/// `fashion-mnist/` for [`Datasets::synthetic`]; raw IDX files).
pub fn write_data_dir(dir: &Path, data: &Datasets) {
    for t in &data.tasks {
        write_task_dir(&dir.join(&t.name), t);
    }
}

/// Writes one task's four IDX files (raw) into `set_dir`, created if need be.
pub fn write_task_dir(set_dir: &Path, t: &TaskData) {
    std::fs::create_dir_all(set_dir).unwrap();
    let files = [
        idx_images(&t.train_images),
        idx_labels(&t.train_labels),
        idx_images(&t.test_images),
        idx_labels(&t.test_labels),
    ];
    for (name, bytes) in SET_FILES.iter().zip(files) {
        std::fs::write(set_dir.join(name), bytes).unwrap();
    }
}

/// A temporary data directory of 28x28 made-up images (the command line's image size).
pub fn cli_data_dir(seed: u64) -> tempfile::TempDir {
    cli_data_dir_sized(CLI_TRAIN, CLI_TEST, seed)
}

/// [`cli_data_dir`] with `train` training and `test` test examples per set.
pub fn cli_data_dir_sized(train: usize, test: usize, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_data_dir(dir.path(), &Datasets::synthetic(train, test, 28, 28, seed));
    dir
}

/// The `spatial-gpu` binary, kept off the network.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spatial-gpu"));
    c.env("SPATIAL_GPU_NO_FETCH", "1").env_remove("SPATIAL_GPU_DATA");
    c
}

/// Runs `spatial-gpu train` with [`CLI_OPTS`], `--data-dir data` and `args`.
pub fn train_cli(data: &Path, args: &[&str]) -> Output {
    bin()
        .arg("train")
        .args(CLI_OPTS)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `spatial-gpu train --resume dir --data-dir data` with `args` (no run-defining options).
pub fn resume_cli(dir: &Path, data: &Path, args: &[&str]) -> Output {
    bin()
        .args(["train", "--backend", "cpu", "--no-progress", "--resume"])
        .arg(dir)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with the command's output unless it exited with status 0.
pub fn assert_success(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// Asserts that a command failed (exit code 1, no panic) with a message containing every needle;
/// returns the message.
pub fn assert_fails_with(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "expected exit code 1; stderr:\n{err}");
    assert!(!err.contains("panicked"), "the program panicked:\n{err}");
    for n in needles {
        assert!(err.contains(n), "the message does not mention {n:?}:\n{err}");
    }
    err
}

/// A small model and run on `data` (any image size): 4 hidden layers as in the paper, the spatial
/// costs on the last three layers, batches of 8.
pub fn small_configs(
    mode: InputMode,
    data: &Datasets,
    epochs: usize,
    seed: u64,
) -> (ModelConfig, TrainConfig) {
    let mut model = ModelConfig::paper(data.input_dim(mode));
    model.sizes = vec![model.sizes[0], 12, 10, 10, 8, 20];
    // Large spatial costs, so positions move and every term matters.
    model.alpha = 0.5;
    model.beta = 2.0;
    let train = TrainConfig {
        mode,
        epochs,
        batch_size: 8,
        lr: 0.01,
        seed,
        ..TrainConfig::default()
    };
    (model, train)
}

/// A made-up dataset of 4x4 images: 60 training examples per set (8 batches of 8 per epoch, the
/// last one of 4), 20 test examples.
pub fn small_data() -> Datasets {
    Datasets::synthetic(60, 20, 4, 4, 11)
}

pub fn quiet_options(out: &Path) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        progress: false,
        verbose: false,
        checkpoint_every: 0,
        stop: None,
        invocation: spatial_gpu::provenance::Invocation::from_env(None, None),
    }
}

/// The CPU backend for a new run of these configurations.
pub fn new_backend(model: &ModelConfig, train: &TrainConfig) -> CpuBackend {
    let state = TrainState::new(Params::init(model, train.seed));
    CpuBackend::new(model.clone(), train.clone(), state).unwrap()
}

/// The CPU backend that continues the checkpoint in `dir`, with `epochs` if given.
pub fn resumed_backend(dir: &Path, epochs: Option<usize>) -> (CpuBackend, checkpoint::Progress) {
    let ck = checkpoint::load(&train::checkpoint_path(dir)).unwrap();
    let mut cfg = ck.train.clone();
    if let Some(e) = epochs {
        cfg.epochs = e;
    }
    (CpuBackend::new(ck.model, cfg, ck.state).unwrap(), ck.progress)
}

/// Trains a new run to the end in `out` and returns the final state.
pub fn train_through(model: &ModelConfig, train: &TrainConfig, data: &Datasets, out: &Path) -> TrainState {
    let mut b = new_backend(model, train);
    let outcome = train::train(&mut b, data, &quiet_options(out), Default::default()).unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)), "{outcome:?}");
    b.state().unwrap()
}

/// A backend that sets a stop flag once its step count reaches `stop_at` (as the SIGINT handler
/// would), optionally after poisoning a weight with NaN at step `poison_at` without reporting it (as
/// a backend without a per-step guard, like the GPU's, would).
pub struct Wrapped {
    pub inner: Box<dyn Backend>,
    pub stop: Arc<AtomicBool>,
    pub stop_at: Option<u64>,
    pub poison_at: Option<u64>,
}

impl Wrapped {
    pub fn new(inner: impl Backend + 'static) -> Wrapped {
        Wrapped {
            inner: Box::new(inner),
            stop: Arc::new(AtomicBool::new(false)),
            stop_at: None,
            poison_at: None,
        }
    }
}

impl Backend for Wrapped {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn model_config(&self) -> &ModelConfig {
        self.inner.model_config()
    }
    fn train_config(&self) -> &TrainConfig {
        self.inner.train_config()
    }
    fn steps(&self) -> u64 {
        self.inner.steps()
    }
    fn train_step(&mut self, batch: &Batch) -> anyhow::Result<()> {
        self.inner.train_step(batch)?;
        let step = self.inner.steps();
        if Some(step) == self.poison_at {
            let mut s = self.inner.state()?;
            let r = s.params.layout.weights[1].clone();
            s.params.data[r.start + 3] = f32::NAN;
            self.inner.set_state(&s)?;
        }
        if Some(step) == self.stop_at {
            self.stop.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
    fn take_losses(&mut self) -> anyhow::Result<Option<spatial_gpu::backend::Losses>> {
        self.inner.take_losses()
    }
    fn logits(
        &mut self,
        inputs: &[f32],
        count: usize,
        keep: Option<&NeuronMask>,
    ) -> anyhow::Result<Vec<f32>> {
        self.inner.logits(inputs, count, keep)
    }
    fn state(&mut self) -> anyhow::Result<TrainState> {
        self.inner.state()
    }
    fn set_state(&mut self, state: &TrainState) -> anyhow::Result<()> {
        self.inner.set_state(state)
    }
    fn synchronize(&mut self) -> anyhow::Result<()> {
        self.inner.synchronize()
    }
}

/// Asserts two states are equal bit for bit (parameters, both moments, step), printing the first
/// difference.
pub fn assert_bits_eq(a: &TrainState, b: &TrainState, what: &str) {
    assert_eq!(a.step, b.step, "{what}: step counts differ");
    assert_eq!(a.params.layout, b.params.layout, "{what}: layouts differ");
    for (name, x, y) in [
        ("parameter", &a.params.data, &b.params.data),
        ("adam_m", &a.adam_m, &b.adam_m),
        ("adam_v", &a.adam_v, &b.adam_v),
    ] {
        assert_eq!(x.len(), y.len(), "{what}: {name} lengths differ");
        if let Some(i) = (0..x.len()).find(|&i| x[i].to_bits() != y[i].to_bits()) {
            let n = (0..x.len()).filter(|&i| x[i].to_bits() != y[i].to_bits()).count();
            panic!(
                "{what}: {name} {i} differs: {:e} vs {:e} ({n} of {} values differ)",
                x[i],
                y[i],
                x.len()
            );
        }
    }
}

/// Loads the checkpoint of a run directory.
pub fn load_run(dir: &Path) -> Checkpoint {
    checkpoint::load(&train::checkpoint_path(dir)).unwrap()
}

/// The lines of `metrics.jsonl` as JSON values without the timing fields (which differ between
/// runs), for comparing the metrics of two runs exactly.
pub fn metrics_without_timing(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(train::metrics_path(dir)).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("samples_per_second");
            v
        })
        .collect()
}

/// Asserts two runs' metrics (from [`metrics_without_timing`]) agree: accuracies exactly, losses to
/// a relative 1e-9 (the losses of an epoch interrupted and resumed are summed in two parts).
pub fn assert_metrics_close(a: &[serde_json::Value], b: &[serde_json::Value], what: &str) {
    assert_metrics_within(a, b, 1e-9, what)
}

/// [`assert_metrics_close`] with losses to a relative `rel`.
pub fn assert_metrics_within(a: &[serde_json::Value], b: &[serde_json::Value], rel: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: metrics lines");
    fn walk(x: &serde_json::Value, y: &serde_json::Value, key: &str, rel: f64, what: &str) {
        use serde_json::Value::*;
        match (x, y) {
            (Object(p), Object(q)) => {
                assert_eq!(
                    p.keys().collect::<Vec<_>>(),
                    q.keys().collect::<Vec<_>>(),
                    "{what}"
                );
                for (k, v) in p {
                    walk(v, &q[k], k, rel, what);
                }
            }
            (Array(p), Array(q)) => {
                assert_eq!(p.len(), q.len(), "{what}: {key}");
                for (v, w) in p.iter().zip(q) {
                    walk(v, w, key, rel, what);
                }
            }
            (Number(p), Number(q)) if key.contains("accuracy") || key == "epoch" => {
                assert_eq!(p, q, "{what}: {key}")
            }
            (Number(p), Number(q)) => {
                let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
                assert!(
                    (p - q).abs() <= rel * p.abs().max(q.abs()),
                    "{what}: {key} {p} vs {q}"
                );
            }
            _ => assert_eq!(x, y, "{what}: {key}"),
        }
    }
    for (x, y) in a.iter().zip(b) {
        walk(x, y, "", rel, what);
    }
}

/// A tmpfs of `size` (e.g. `"512k"`) mounted on a new temporary directory, unmounted on drop; `Err`
/// with the reason where mounting is not permitted (not root, no mount, a container without the
/// capability).
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A fresh tmpfs of `size`, or why there is none. With `SPATIAL_GPU_REQUIRE_TMPFS=1` (set by
    /// `.ci/run` when the CI machine can mount one) a failure panics instead, so the full-disk and
    /// read-only tests cannot pass by skipping there.
    pub fn mount(size: &str) -> Result<Tmpfs, String> {
        let result = Self::try_mount(size);
        if let Err(why) = &result {
            if std::env::var("SPATIAL_GPU_REQUIRE_TMPFS").is_ok_and(|v| v == "1") {
                panic!("SPATIAL_GPU_REQUIRE_TMPFS=1 but no tmpfs could be mounted: {why}");
            }
        }
        result
    }

    fn try_mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts read-only (`true`) or read-write.
    pub fn set_read_only(&self, ro: bool) {
        let opt = if ro { "remount,ro" } else { "remount,rw" };
        let out = Command::new("mount")
            .args(["-o", opt])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -o {opt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Every file in `dir` (not recursive), sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `dir/name`.
pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
