//! python/spatial_gpu_torch.py, the loader for Python users: its numpy forward pass, run on a model
//! trained here and the test sets of IDX files written here, gives the test accuracies of the run's
//! summary.json (spatial-gpu's own evaluation), in every input mode and with each activation. Runs
//! when python3 with safetensors and numpy is present; skips (saying why) otherwise, unless
//! SPATIAL_GPU_REQUIRE_PYTHON=1 (set by .ci/run, which installs them), where it fails instead.

mod support;

use std::path::Path;
use std::process::Command;
use support::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/spatial_gpu_torch.py");

/// Why Python cannot run the script here, if it cannot.
fn python_missing() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
    {
        Err(e) => Some(format!("python3 cannot be run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "python3 lacks safetensors or numpy: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// `true` if the test may run; panics under SPATIAL_GPU_REQUIRE_PYTHON=1 when it cannot.
fn python_ready() -> bool {
    match python_missing() {
        None => true,
        Some(reason) => {
            if std::env::var("SPATIAL_GPU_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
                panic!("SPATIAL_GPU_REQUIRE_PYTHON=1 but {reason}");
            }
            eprintln!("skipped: {reason}");
            false
        }
    }
}

/// The script's per-task `(correct, total)`, from lines `NAME test accuracy: ACC (C/N)`.
fn script_counts(run: &Path, data: &Path, extra: &[&str]) -> Vec<(String, u64, u64, f64)> {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(run)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the script failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let (name, rest) = l
                .split_once(" test accuracy: ")
                .unwrap_or_else(|| panic!("{l:?}"));
            let (acc, counts) = rest.split_once(" (").unwrap();
            let (c, n) = counts.trim_end_matches(')').split_once('/').unwrap();
            (
                name.to_string(),
                c.parse().unwrap(),
                n.parse().unwrap(),
                acc.parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_numpy_forward_pass_reproduces_the_runs_test_accuracy() {
    if !python_ready() {
        return;
    }
    // 200 test examples per set: an accuracy is a count out of 200 (400 in sequential mode's sum).
    let data = cli_data_dir_sized(96, 200, 3);
    let tmp = tempfile::tempdir().unwrap();
    // Every mode with the default sigmoid, and the other activations.
    for (mode, act) in [
        ("concat", "sigmoid"),
        ("mixed", "sigmoid"),
        ("sequential", "sigmoid"),
        ("concat", "relu"),
        ("mixed", "tanh"),
    ] {
        let run = tmp.path().join(format!("{mode}-{act}"));
        let o = train_cli(
            data.path(),
            &[
                "--mode",
                mode,
                "--activation",
                act,
                "--epochs",
                "2",
                "--out",
                run.to_str().unwrap(),
            ],
        );
        assert_success(&o, &format!("{mode} {act}"));
        let mode = format!("{mode} {act}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
        let rust: Vec<f64> = summary["task_accuracy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let python = script_counts(&run, data.path(), &[]);
        assert_eq!(python.len(), 2, "{mode}: {python:?}");
        for ((name, correct, total, acc), (want_name, want)) in
            python.iter().zip(["mnist", "fashion-mnist"].iter().zip(&rust))
        {
            assert_eq!(name, want_name);
            assert_eq!(*total, 200, "{mode} {name}");
            assert_eq!(*acc, *correct as f64 / *total as f64, "{mode} {name}");
            // Exactly: the script computes in float64, spatial-gpu in float32, so only two logits
            // within float32 rounding of each other could make an argmax differ.
            assert_eq!(acc, want, "{mode} {name}: python vs spatial-gpu");
        }
        // The torch module too, where torch is installed (it is not in CI: then only numpy's path
        // is checked, and this says so).
        if torch_present() {
            let with_torch = script_counts(&run, data.path(), &["--torch"]);
            assert_eq!(with_torch, python, "{mode}: torch vs numpy");
        } else {
            eprintln!("{mode}: torch is not installed: the --torch path was not checked");
        }
    }
}

fn torch_present() -> bool {
    Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_script_refuses_a_foreign_file() {
    if !python_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.safetensors");
    // A valid safetensors file without spatial-gpu's metadata.
    let data = [0u8; 4];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    std::fs::write(&file, safetensors::serialize([("x", view)], None).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(&file)
        .arg("--data-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a spatial-gpu checkpoint"), "{err}");
}

/// Tasks of different image sizes, class counts and test counts (`--task` directories): the script
/// reads the checkpoint's tasks, scores each task's own test examples once, and agrees exactly.
#[test]
fn the_script_follows_the_runs_tasks() {
    if !python_ready() {
        return;
    }
    use spatial_gpu::data::{Datasets, SyntheticTask};
    let tmp = tempfile::tempdir().unwrap();
    let spec = |name, classes, rows, test| SyntheticTask {
        name,
        classes,
        rows,
        cols: rows,
        train: 64,
        test,
    };
    let data = Datasets::synthetic_tasks(&[spec("dots", 3, 8, 50), spec("digits", 10, 28, 120)], 9);
    let mut opts = Vec::new();
    for t in &data.tasks {
        write_task_dir(&tmp.path().join(&t.name), t);
        opts.push(format!("{}={}", t.name, tmp.path().join(&t.name).display()));
    }
    let run = tmp.path().join("run");
    let o = train_cli(
        &tmp.path().join("none"),
        &[
            "--task",
            &opts[0],
            "--task",
            &opts[1],
            "--epochs",
            "2",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    assert_success(&o, "train on --task tasks");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let python = script_counts(
        &run,
        &tmp.path().join("none"),
        &["--task", &opts[0], "--task", &opts[1]],
    );
    let totals: Vec<(&str, u64)> = python.iter().map(|p| (p.0.as_str(), p.2)).collect();
    assert_eq!(totals, [("dots", 50), ("digits", 120)]);
    for (p, want) in python.iter().zip(summary["task_accuracy"].as_array().unwrap()) {
        assert_eq!(p.3, want.as_f64().unwrap(), "{}: python vs spatial-gpu", p.0);
    }
}
