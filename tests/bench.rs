//! `spatial-gpu bench` and the performance work behind it:
//! - the reference file of the PyTorch check holds exactly the tensors the baseline reads (always);
//! - the baseline reproduces our loss and gradients from it: `#[ignore]`d because it needs python3
//!   with torch (a 3 GB install CI does not make), so it is reported as ignored, never as passed;
//!   run it with `cargo test --test bench -- --ignored` (it fails if torch is missing);
//! - a CPU training step allocates nothing, and gives the same bits at every SIMD level;
//! - the command runs end to end on a tiny data set and writes its JSON; the sweep's outputs.

mod common;

use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use spatial_gpu::backend::Backend;
use spatial_gpu::bench::{self, SweepPoint, PAPER_HIDDEN};
use spatial_gpu::config::{InputMode, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::{self, CpuBackend, Workspace};
use spatial_gpu::data::batches::{epoch_order, Batch};
use spatial_gpu::data::Datasets;
use spatial_gpu::model::{Params, TrainState};
use spatial_gpu::simd;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------------
// An allocator that counts the allocations of the threads that ask it to
// ---------------------------------------------------------------------------------------------

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT_HERE.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT_HERE.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNT_HERE.with(|c| c.set(true));
    f();
    COUNT_HERE.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Made-up 28x28 data: the concat input has the real network's 1568 values.
fn data() -> Datasets {
    Datasets::synthetic(300, 20, 28, 28, 6)
}

fn spatial_model() -> ModelConfig {
    bench::bench_model(1568, &PAPER_HIDDEN, true, 0.01, 3.0)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join("pytorch_baseline.py")
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The reference file and the PyTorch check
// ---------------------------------------------------------------------------------------------

#[test]
fn reference_file_holds_the_tensors_the_baseline_reads() {
    let data = data();
    let model = spatial_model();
    let train = bench::bench_train(32);
    let params = Params::init(&model, train.seed);
    let batch = bench::reference_batch(&data, &train);
    assert_eq!((batch.size, batch.input_dim), (32, 1568));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("reference.safetensors");
    let losses = bench::write_reference(&path, &model, &params, &batch).unwrap();

    // What the file must say, computed here independently of `write_reference`.
    let mut grads = vec![f32::NAN; params.data.len()];
    let mut ws = Workspace::new(&model.sizes, 32);
    let want = cpu::forward_backward(
        &model,
        &params,
        &mut ws,
        &mut grads,
        &batch.inputs,
        &batch.labels,
        32,
    );
    assert_eq!(losses, want);

    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().expect("metadata");
    let read_model: ModelConfig = serde_json::from_str(&meta["model"]).unwrap();
    assert_eq!(read_model, model);
    assert_eq!(meta["loss_total"].parse::<f64>().unwrap(), want.total);
    assert_eq!(meta["loss_task"].parse::<f64>().unwrap(), want.task);
    // JSON lists (serde_json parses floats to within an ulp, not always exactly).
    for (key, values) in [("transport", &want.transport), ("density", &want.density)] {
        let read: Vec<f64> = serde_json::from_str(&meta[key]).unwrap();
        assert_eq!(read.len(), values.len());
        assert!(
            read.iter()
                .zip(values)
                .all(|(a, b)| (a - b).abs() <= 1e-14 * b.abs()),
            "{key}: {read:?}"
        );
    }

    let layout = &params.layout;
    let mut expected: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (prefix, buf) in [("", &params.data), ("grad.", &grads)] {
        for l in 1..model.sizes.len() {
            let (c, oc) = (model.sizes[l - 1], model.sizes[l]);
            expected.push((
                format!("{prefix}layer{l}.weight"),
                vec![oc, c],
                buf[layout.weights[l - 1].clone()].to_vec(),
            ));
            expected.push((
                format!("{prefix}layer{l}.bias"),
                vec![oc],
                buf[layout.biases[l - 1].clone()].to_vec(),
            ));
        }
        for l in 0..model.sizes.len() {
            let p = buf[layout.positions[l].clone()].to_vec();
            expected.push((format!("{prefix}layer{l}.position"), vec![model.sizes[l], 2], p));
        }
    }
    expected.push(("batch.inputs".into(), vec![32, 1568], batch.inputs.clone()));
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut want_names: Vec<String> = expected
        .iter()
        .map(|e| e.0.clone())
        .chain(["batch.labels".into()])
        .collect();
    want_names.sort();
    assert_eq!(names, want_names);
    for (name, shape, values) in &expected {
        let t = st.tensor(name).unwrap();
        assert_eq!((t.dtype(), t.shape()), (Dtype::F32, shape.as_slice()), "{name}");
        let got = f32s(t.data());
        assert!(
            got.iter().zip(values).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name} differs"
        );
    }
    let labels = st.tensor("batch.labels").unwrap();
    assert_eq!((labels.dtype(), labels.shape()), (Dtype::I32, &[32usize, 2][..]));
    let got: Vec<i32> = labels
        .data()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(got, batch.labels);
    // The spatial costs reach the positions of layers 2..=5 only, and something reaches them.
    let g = |name: &str| expected.iter().find(|e| e.0 == name).unwrap().2.clone();
    assert!(g("grad.layer1.position").iter().all(|&v| v == 0.0));
    assert!(g("grad.layer2.position").iter().any(|&v| v != 0.0));
}

#[test]
#[ignore = "needs python3 with torch, numpy and safetensors: cargo test --test bench -- --ignored"]
fn pytorch_baseline_agrees_with_the_cpu_backend() {
    let python = Path::new("python3");
    if let Err(why) = bench::probe_pytorch(python) {
        panic!("{why} (the check needs python3 with torch, numpy and safetensors)");
    }
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    // The bench's spatial network, the regular one, and the other options of the spatial costs.
    let mut mean_l2 = spatial_model();
    (mean_l2.alpha, mean_l2.transport_norm, mean_l2.weight_norm) = (1.0, TransportNorm::Mean, WeightNorm::L2);
    let cases = [
        ("spatial", spatial_model()),
        (
            "regular",
            bench::bench_model(1568, &PAPER_HIDDEN, false, 0.0, 0.0),
        ),
        ("mean-l2", mean_l2),
    ];
    for (name, model) in cases {
        let train = bench::bench_train(64);
        let path = dir.path().join(format!("{name}.safetensors"));
        let params = Params::init(&model, 3);
        bench::write_reference(&path, &model, &params, &bench::reference_batch(&data, &train)).unwrap();
        let (passed, output) = bench::run_check(python, &script(), &path, Some(1), "cpu").unwrap();
        eprintln!("{name}:\n{output}");
        assert!(
            passed,
            "{name}: the baseline disagrees with the CPU backend:\n{output}"
        );
        assert!(output.contains("baseline agrees"), "{output}");
    }
}

#[test]
#[ignore = "needs python3 with torch: cargo test --test bench -- --ignored"]
fn pytorch_graph_variant_step_equals_eager_and_cuda_is_checked() {
    // The graph variant's static-tensor step (uncaptured on the CPU) trains exactly as eager steps.
    let out = Command::new("python3")
        .arg(script())
        .arg("--self-test-graph")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("max |diff| 0.000e+00"), "{text}");
    // Without CUDA, --device cuda is refused by name, before anything runs.
    let cuda = Command::new("python3")
        .args(["-c", "import torch; print(torch.cuda.is_available())"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&cuda.stdout).trim() == "False" {
        let out = Command::new("python3")
            .arg(script())
            .args(["--device", "cuda", "--check", "none.safetensors"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--device cuda") && err.contains("is_available"),
            "{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The CPU step: no allocation, the same bits at every SIMD level
// ---------------------------------------------------------------------------------------------

/// What `matrixmultiply` allocates for the GEMMs of one step: it takes a packing buffer from the
/// allocator inside every `sgemm` call (its API has no way to pass one in).
fn gemm_library_allocations(sizes: &[usize], b: usize) -> usize {
    let calls = bench::step_gemms(sizes, b);
    let bufs: Vec<_> = calls
        .iter()
        .map(|g| {
            (
                vec![0.5f32; g.m * g.k],
                vec![0.5f32; g.k * g.n],
                vec![0.0f32; g.m * g.n],
            )
        })
        .collect();
    let mut bufs = bufs;
    allocations_of(|| {
        for (g, (a, bb, c)) in calls.iter().zip(bufs.iter_mut()) {
            cpu::linear::gemm(g.m, g.k, g.n, 1.0, a, g.a_strides, bb, g.b_strides, 1.0, c);
        }
    })
}

#[test]
fn a_training_step_allocates_nothing() {
    let data = data();
    for spatial in [true, false] {
        let model = bench::bench_model(1568, &PAPER_HIDDEN, spatial, 0.01, 3.0);
        let gemm = gemm_library_allocations(&model.sizes, 64);
        let train = bench::bench_train(64);
        let state = TrainState::new(Params::init(&model, 1));
        let mut backend = CpuBackend::new(model, train.clone(), state).unwrap();
        let order = epoch_order(InputMode::Concat, &data, 1, 0);
        let mut batch = Batch::with_capacity(64, 1568);
        // The first steps may size what is reused afterwards (the loss vectors, caches).
        for b in 0..2 {
            order.fill_batch(&data, InputMode::Concat, b, 64, &mut batch);
            backend.train_step(&batch).unwrap();
        }
        let n = allocations_of(|| {
            for b in 2..4 {
                order.fill_batch(&data, InputMode::Concat, b, 64, &mut batch);
                backend.train_step(&batch).unwrap();
            }
        });
        // Nothing of ours: only the GEMM library's own packing buffers.
        assert_eq!(
            n,
            2 * gemm,
            "{n} allocations in two steps, {gemm} per step by the GEMMs (spatial: {spatial})"
        );
    }
}

#[test]
fn every_simd_level_trains_the_same_bits() {
    let data = data();
    let model = spatial_model();
    let train = bench::bench_train(48);
    let order = epoch_order(InputMode::Concat, &data, 2, 0);
    let run = |level: simd::Level| {
        simd::set_max_level(level);
        let mut backend = CpuBackend::new(
            model.clone(),
            train.clone(),
            TrainState::new(Params::init(&model, 2)),
        )
        .unwrap();
        let mut batch = Batch::with_capacity(48, 1568);
        for b in 0..3 {
            order.fill_batch(&data, InputMode::Concat, b, 48, &mut batch);
            backend.train_step(&batch).unwrap();
        }
        let losses = backend.take_losses().unwrap().unwrap();
        let state = backend.state().unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        (
            bits(&state.params.data),
            bits(&state.adam_m),
            bits(&state.adam_v),
            bits(&batch.inputs),
            losses.total.to_bits(),
        )
    };
    let best = run(simd::Level::Avx512);
    let avx2 = run(simd::Level::Avx2);
    let base = run(simd::Level::Baseline);
    simd::set_max_level(simd::Level::Avx512);
    assert!(best == avx2, "AVX2 differs from the best level");
    assert!(best == base, "the baseline differs from the best level");
    // And the same level twice: deterministic.
    assert!(best == run(simd::Level::Avx512));
}

// ---------------------------------------------------------------------------------------------
// The command, end to end, and the sweep's outputs
// ---------------------------------------------------------------------------------------------

/// A data directory with 28x28 sets of `train` training images.
fn tiny_data_dir(dir: &Path, train: u32) {
    for (set, seed) in [("mnist", 1u8), ("fashion-mnist", 2)] {
        common::write_set(dir, set, &common::set_files(train, 10, 28, 28, seed), seed == 2);
    }
}

#[test]
fn bench_command_writes_reference_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    tiny_data_dir(&data_dir, 300);
    let json = tmp.path().join("out").join("bench.json");
    let reference = tmp.path().join("ref.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args([
            "bench",
            "--no-pytorch",
            "--backends",
            "cpu,gpu",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--json")
        .arg(&json)
        .arg("--reference")
        .arg(&reference)
        .env("SPATIAL_GPU_NO_FETCH", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    assert!(reference.exists(), "no reference file:\n{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    for net in ["spatial", "regular"] {
        let r = results
            .iter()
            .find(|r| r["program"] == "cpu" && r["network"] == net)
            .expect("a cpu result");
        assert_eq!(r["rounds"].as_array().unwrap().len(), 2);
        assert!(r["median_samples_per_second"].as_f64().unwrap() > 0.0);
    }
    // The GPU either ran or is reported unavailable, with a reason; the run goes on either way.
    let gpu_ran = results.iter().any(|r| r["program"] == "gpu");
    assert!(gpu_ran || stdout.contains("gpu: unavailable ("), "{stdout}");
    assert!(report["gemm"]["peak_gflops"].as_f64().unwrap() > 0.0);
    assert_eq!(report["breakdown"].as_array().unwrap().len(), 2);
    assert!(report["statistic"].as_str().unwrap().contains("median"));
}

#[test]
fn bench_races_each_thread_count_and_writes_the_raw_log() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    tiny_data_dir(&data_dir, 300);
    let (json, out_dir) = (tmp.path().join("bench.json"), tmp.path().join("out"));
    let out = Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args(["bench", "--no-pytorch", "--backends", "cpu", "--threads", "1,2,1"])
        .args([
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--batch-size",
            "37",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--json")
        .arg(&json)
        .arg("--out")
        .arg(&out_dir)
        .env("SPATIAL_GPU_NO_FETCH", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["machine"]["threads"], serde_json::json!([1, 2]));
    let results = report["results"].as_array().unwrap();
    for net in ["spatial", "regular"] {
        for t in [1, 2] {
            assert!(
                results
                    .iter()
                    .any(|r| r["program"] == "cpu" && r["threads"] == t && r["network"] == net),
                "no cpu result on {t} threads for {net}"
            );
        }
    }
    // The raw log: a line per program, network and round (2 programs x 2 networks x 2 rounds).
    let log = std::fs::read_to_string(out_dir.join("race-cpu.log")).unwrap();
    let rows: Vec<&str> = log.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 8, "{log}");
    assert!(rows.iter().any(|r| r.starts_with("2 regular cpu-2t ")), "{log}");
}

#[test]
fn bench_refuses_bad_thread_counts_and_cuda_without_cuda() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
            .arg("bench")
            .args(args)
            .env("SPATIAL_GPU_NO_FETCH", "1")
            .output()
            .unwrap()
    };
    let out = run(&["--threads", "1,0", "--no-pytorch"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--threads 0"), "{err}");
    // A Python whose torch has no CUDA (a stand-in, so the test means the same on any machine).
    let python = tmp.path().join("python-without-cuda");
    std::fs::write(&python, "#!/bin/sh\necho '2.15.0+cpu False'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(&["--torch-device", "cuda", "--python", python.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--torch-device cuda") && err.contains("torch.cuda.is_available() is false"),
        "{err}"
    );
    let out = run(&["--torch-device", "gpu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--torch-device"));
}

#[test]
fn sweep_outputs_table_csv_and_plots() {
    let mut points = Vec::new();
    for (program, factor) in [("cpu", 1.0), ("pytorch", 2.5)] {
        for &width in &bench::SWEEP_WIDTHS {
            for &b in &bench::SWEEP_BATCHES {
                let step_ms = factor * (0.2 + b as f64 * 0.008) * (width * width) as f64;
                let samples_per_second = b as f64 / step_ms * 1e3;
                points.push(SweepPoint {
                    program: program.into(),
                    width,
                    batch_size: b,
                    step_ms,
                    samples_per_second,
                });
            }
        }
    }
    let md = bench::sweep_markdown(&points);
    // Header, alignment row, one row per batch size.
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        2 + bench::SWEEP_BATCHES.len()
    );
    assert!(md.contains("cpu x4") && md.contains("pytorch x1"), "{md}");
    let dir = tempfile::tempdir().unwrap();
    bench::write_sweep(dir.path(), &points).unwrap();
    for f in ["sweep.md", "sweep.csv", "sweep.png", "sweep.svg"] {
        let len = std::fs::metadata(dir.path().join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 100, "{f} missing or empty");
    }
    let csv = std::fs::read_to_string(dir.path().join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + points.len());
    assert_eq!(
        &std::fs::read(dir.path().join("sweep.png")).unwrap()[1..4],
        b"PNG"
    );
}

#[test]
fn matmul_flops_count_skips_layer_one_input_gradient() {
    let sizes = [1568, 128, 128, 128, 256, 20];
    // forward + weight gradient of every layer, input gradient of layers 2..=5.
    let fwd: usize = sizes.windows(2).map(|w| w[0] * w[1]).sum();
    let dx: usize = sizes[1..].windows(2).map(|w| w[0] * w[1]).sum();
    assert_eq!(
        bench::matmul_flops_per_example(&sizes),
        2.0 * (2 * fwd + dx) as f64
    );
    // About 74 GFLOP per 60000-example epoch (the matrix work of forward, weight and input gradients).
    let per_epoch = 60000.0 * bench::matmul_flops_per_example(&sizes) * 1e-9;
    assert!((per_epoch - 73.6).abs() < 0.1, "{per_epoch}");
}
