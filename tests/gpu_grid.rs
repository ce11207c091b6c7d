//! `reproduce` on the GPU trains the runs of each input width as one population (the regular and
//! the spatial network, each at every seed: they differ only in seed, alpha and beta, which a
//! population's networks may), and its runs end exactly where the same grid trained run by run
//! (`--no-population`) ends: every checkpoint's parameters and moments bit for bit, and the
//! results (`results.json` without its times) equal. Both invocations share one autotune cache, so
//! that they run the same matmul kernels.

mod common;
#[path = "common/grid_cli.rs"]
mod grid_cli;

use grid_cli::*;
use std::path::Path;

/// The tests of this file set `SPATIAL_GPU_CACHE_DIR` for the processes they start (so that the two
/// invocations they compare run the same matmul kernels): one at a time, so that neither changes the
/// variable between the other's two invocations.
static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tensors(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.data().to_vec()))
        .collect();
    out.sort();
    out
}

/// What both tests start with, `None` without an adapter: their turn with the environment, a
/// temporary directory with the tiny data in `data/`, and a private autotune cache in
/// `autotune/` for the processes they start.
fn setup() -> Option<(
    std::sync::MutexGuard<'static, ()>,
    tempfile::TempDir,
    std::path::PathBuf,
)> {
    spatial_gpu::gpu::test_context()?;
    let turn = ENV.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    std::env::set_var("SPATIAL_GPU_CACHE_DIR", tmp.path().join("autotune"));
    Some((turn, tmp, data))
}

/// `reproduce --backend gpu --modes MODES --no-figures` of the tiny grid (seeds 1 and 2) from `data`
/// into `out`, with `extra` options; its stdout (the command must succeed).
fn reproduce_on_gpu(data: &Path, out: &Path, modes: &str, extra: &[&str]) -> String {
    let mut args: Vec<String> = reproduce_args(s(data), s(out), "1")
        .into_iter()
        .map(String::from)
        .collect();
    let at = args.iter().position(|a| a == "cpu").unwrap();
    args[at] = "gpu".into();
    args.extend(["--no-figures", "--modes", modes].map(String::from));
    args.extend(extra.iter().map(|e| e.to_string()));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Every run directory with a checkpoint in `alone` has the same tensors, bit for bit, as the one of
/// its name in `together`; returns how many there are.
fn assert_runs_equal(alone: &Path, together: &Path) -> usize {
    let mut runs = 0;
    for entry in std::fs::read_dir(alone).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("model.safetensors").exists() {
            continue;
        }
        let name = dir.file_name().unwrap();
        assert_eq!(
            tensors(&dir),
            tensors(&together.join(name)),
            "{}: population vs alone",
            name.to_string_lossy()
        );
        runs += 1;
    }
    runs
}

#[test]
fn reproduce_on_the_gpu_trains_populations_equal_to_single_runs() {
    let Some((_turn, tmp, data)) = setup() else {
        return;
    };
    let alone = tmp.path().join("alone");
    let stdout = reproduce_on_gpu(&data, &alone, "concat", &["--no-population"]);
    assert!(!stdout.contains("one population"), "{stdout}");
    let together = tmp.path().join("together");
    let stdout = reproduce_on_gpu(&data, &together, "concat", &[]);
    // Concat's regular and spatial cells at seeds 1 and 2: one population of 4.
    assert_eq!(stdout.matches("as one population").count(), 1, "{stdout}");
    assert!(stdout.contains("training 4 runs as one population"), "{stdout}");
    let runs = assert_runs_equal(&alone, &together);
    assert_eq!(runs, 4, "concat: regular and spatial, seeds 1 and 2");
    assert_eq!(
        results_without_times(&alone.join("results.json")),
        results_without_times(&together.join("results.json"))
    );

    // A grid run again with two runs lost (a regular and a spatial one): the finished runs stay as
    // they are, and the two lost ones, both new, train again as one population of 2, to the same
    // bits.
    let lost = ["concat-regular-seed1", "concat-spatial-seed2"];
    let kept = tensors(&together.join("concat-regular-seed2"));
    for name in lost {
        assert!(together.join(name).join("model.safetensors").exists(), "{name}");
        std::fs::remove_dir_all(together.join(name)).unwrap();
    }
    let stdout = reproduce_on_gpu(&data, &together, "concat", &[]);
    assert!(stdout.contains("training 2 runs as one population"), "{stdout}");
    for name in lost {
        assert_eq!(
            tensors(&together.join(name)),
            tensors(&alone.join(name)),
            "{name}: retrained in a population of the lost runs vs alone"
        );
    }
    assert_eq!(tensors(&together.join("concat-regular-seed2")), kept);
}

/// Removes every key that holds a time from a JSON value, at any depth.
fn without_seconds(mut v: serde_json::Value) -> serde_json::Value {
    match &mut v {
        serde_json::Value::Object(o) => {
            o.retain(|k, _| !k.contains("seconds"));
            for x in o.values_mut() {
                *x = without_seconds(x.take());
            }
        }
        serde_json::Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_seconds(x.take());
            }
        }
        _ => {}
    }
    v
}

/// `sweep` on the GPU: its cells of one input mode differ in initialisation, transport norm, weight
/// norm, alpha and beta (and one is regular), which a population's networks may, so they train as
/// one population, and every run ends where it ends alone (`--no-population`), bit for bit.
#[test]
fn sweep_on_the_gpu_trains_the_cells_of_a_mode_as_one_population() {
    let Some((_turn, tmp, data)) = setup() else {
        return;
    };
    let sweep = |out: &Path, extra: &[&str]| -> String {
        let mut args: Vec<String> = sweep_args(s(&data), s(out))
            .into_iter()
            .map(String::from)
            .collect();
        let set = |args: &mut Vec<String>, opt: &str, value: &str| {
            let at = args.iter().position(|a| a == opt).unwrap();
            args[at + 1] = value.into();
        };
        set(&mut args, "--backend", "gpu");
        set(&mut args, "--inits", "xavier,torch");
        set(&mut args, "--weight-norms", "l1,l2");
        args.extend(extra.iter().map(|e| e.to_string()));
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let alone = tmp.path().join("alone");
    let stdout = sweep(&alone, &["--no-population"]);
    assert!(!stdout.contains("one population"), "{stdout}");
    let together = tmp.path().join("together");
    let stdout = sweep(&together, &[]);
    // Per initialisation: the regular cell, paper alphas 0.01 and 1 and mean alpha 1, each with l1
    // and l2: 7 cells, 14 in all, at one seed.
    assert!(stdout.contains("training 14 runs as one population"), "{stdout}");
    assert_eq!(assert_runs_equal(&alone, &together), 14);
    let json = |dir: &Path| -> serde_json::Value {
        without_seconds(
            serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap(),
        )
    };
    assert_eq!(json(&alone), json(&together), "sweep.json without its times");
}

/// `reproduce --modes mixed,sequential` on the GPU: the mixed and the sequential cells share the
/// input width, so the regular and spatial networks of both, at seeds 1 and 2, train as one
/// population of 8, although a sequential epoch has twice the batches of a mixed one (each network
/// its own batches, the step table), and every run ends where it ends alone, bit for bit, with the
/// same results.
#[test]
fn reproduce_on_the_gpu_trains_mixed_and_sequential_runs_as_one_population() {
    let Some((_turn, tmp, data)) = setup() else {
        return;
    };
    let modes = "mixed,sequential";
    let alone = tmp.path().join("alone");
    let stdout = reproduce_on_gpu(&data, &alone, modes, &["--no-population"]);
    assert!(!stdout.contains("one population"), "{stdout}");
    let together = tmp.path().join("together");
    let stdout = reproduce_on_gpu(&data, &together, modes, &[]);
    assert_eq!(stdout.matches("as one population").count(), 1, "{stdout}");
    assert!(stdout.contains("training 8 runs as one population"), "{stdout}");
    assert_eq!(
        assert_runs_equal(&alone, &together),
        8,
        "mixed and sequential, regular and spatial, seeds 1 and 2"
    );
    assert_eq!(
        results_without_times(&alone.join("results.json")),
        results_without_times(&together.join("results.json"))
    );
}
