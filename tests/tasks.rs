//! Any tasks, any number: made-up tasks of different image sizes and class counts, given as
//! `--task NAME=DIR` directories of IDX files the test writes, train (CPU, and GPU where an adapter
//! is, lavapipe included), split and draw through the command line; bad task data is refused with
//! an error naming the task and the file or sizes.

mod support;

use spatial_gpu::data::{Datasets, SyntheticTask};
use std::path::Path;
use support::*;

/// `dots`: 8x8 images, 3 classes; `digits`: 28x28 images, 10 classes; written under `dir`.
fn write_tasks(dir: &Path) -> (String, String) {
    let spec = |name, classes, rows, train, test| SyntheticTask {
        name,
        classes,
        rows,
        cols: rows,
        train,
        test,
    };
    let data = Datasets::synthetic_tasks(&[spec("dots", 3, 8, 64, 24), spec("digits", 10, 28, 96, 32)], 7);
    for t in &data.tasks {
        write_task_dir(&dir.join(&t.name), t);
    }
    (
        format!("dots={}", dir.join("dots").display()),
        format!("digits={}", dir.join("digits").display()),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn tasks_of_different_sizes_train_split_and_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let (dots, digits) = write_tasks(tmp.path());
    let empty = tmp.path().join("no-built-in-data");
    let run = tmp.path().join("run");
    let out = train_cli(
        &empty,
        &[
            "--task",
            &dots,
            "--task",
            &digits,
            "--epochs",
            "2",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    assert_success(&out, "train on two --task tasks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\ntasks: dots (3 classes), digits (10 classes)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accuracy: dots 0.") && stdout.contains(", digits 0."),
        "{stdout}"
    );
    assert!(
        stdout.contains("done: full accuracy") && stdout.contains("(dots 0."),
        "{stdout}"
    );

    // One head per task with its class count; the concatenated input is 64 + 784 values.
    let ck = load_run(&run);
    assert_eq!(ck.model.task_names(), ["dots", "digits"]);
    assert_eq!(ck.model.head_sizes(), [3, 10]);
    assert_eq!((ck.model.sizes[0], *ck.model.sizes.last().unwrap()), (848, 13));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for line in metrics.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(m["tasks"], serde_json::json!(["dots", "digits"]));
        assert_eq!(m["task_accuracy"].as_array().unwrap().len(), 2);
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",accuracy_dots,accuracy_digits,accuracy_mean"),
        "{header}"
    );
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["tasks"], serde_json::json!(["dots", "digits"]));
    assert_eq!(
        summary["model"]["tasks"][0],
        serde_json::json!({"name": "dots", "classes": 3})
    );

    // The split needs the tasks' directories again; without them it names the missing task.
    let o = bin()
        .args(["split", "--backend", "cpu", "--permutations", "50", "--model"])
        .arg(&run)
        .arg("--data-dir")
        .arg(&empty)
        .output()
        .unwrap();
    assert_fails_with(&o, &["unknown task dots", "--task dots=DIR"]);
    let o = bin()
        .args([
            "split",
            "--backend",
            "cpu",
            "--permutations",
            "50",
            "--task",
            &dots,
            "--task",
            &digits,
        ])
        .arg("--model")
        .arg(&run)
        .arg("--data-dir")
        .arg(&empty)
        .output()
        .unwrap();
    assert_success(&o, "split");
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("into 2 tasks"), "{report}");
    assert!(report.lines().any(|l| l.starts_with("dots ")), "{report}");
    assert!(report.lines().any(|l| l.starts_with("digits ")), "{report}");
    let split = json(&run.join("split.json"));
    assert_eq!(split["task_names"], serde_json::json!(["dots", "digits"]));
    // The output layer's neurons go to their heads: 3 to dots, 10 to digits.
    let layers = split["layers"].as_array().unwrap();
    assert_eq!(
        layers.last().unwrap()["neurons_per_task"],
        serde_json::json!([3, 10])
    );

    let o = bin().args(["figure", "--model"]).arg(&run).output().unwrap();
    assert_success(&o, "figure");
    for name in ["figure1.png", "figure1.svg", "figure2.png"] {
        let path = run.join(name);
        assert!(
            path.is_file() && std::fs::metadata(&path).unwrap().len() > 1000,
            "{name}"
        );
    }
    let svg = std::fs::read_to_string(run.join("figure1.svg")).unwrap();
    assert!(
        svg.contains("task 0: dots") && svg.contains("task 1: digits"),
        "the legend names the tasks"
    );

    // Resuming with other tasks is refused, naming both lists.
    let o = bin()
        .args([
            "train",
            "--backend",
            "cpu",
            "--no-progress",
            "--epochs",
            "3",
            "--tasks",
            "digits,dots",
        ])
        .args(["--task", &dots, "--task", &digits, "--resume"])
        .arg(&run)
        .arg("--data-dir")
        .arg(&empty)
        .output()
        .unwrap();
    assert_fails_with(&o, &["--tasks digits,dots (the run's is dots,digits)"]);
}

#[test]
fn bad_task_options_are_refused_naming_the_task() {
    let tmp = tempfile::tempdir().unwrap();
    let (dots, digits) = write_tasks(tmp.path());
    let empty = tmp.path().join("no-built-in-data");
    let run = tmp.path().join("run");
    let run = run.to_str().unwrap();
    // Mixed and sequential feed one image size: both tasks and sizes are named.
    for mode in ["mixed", "sequential"] {
        let o = train_cli(
            &empty,
            &["--task", &dots, "--task", &digits, "--mode", mode, "--out", run],
        );
        assert_fails_with(
            &o,
            &[
                "--mode",
                "task dots has 8x8 images and task digits has 28x28",
                "--mode concat",
            ],
        );
        assert!(
            !Path::new(run).exists(),
            "a run that cannot start leaves no directory"
        );
    }
    let o = train_cli(&empty, &["--tasks", "dots,cifar", "--task", &dots, "--out", run]);
    assert_fails_with(
        &o,
        &[
            "unknown task cifar",
            "mnist, fashion-mnist, animal-mnist, kmnist, emnist-balanced, dots",
        ],
    );
    let o = train_cli(&empty, &["--tasks", "dots,dots", "--task", &dots, "--out", run]);
    assert_fails_with(&o, &["--tasks: task dots is named twice"]);
    let o = train_cli(
        &empty,
        &[
            "--tasks", "dots", "--task", &dots, "--task", &digits, "--out", run,
        ],
    );
    assert_fails_with(&o, &["the task digits is not in --tasks dots"]);
    let o = train_cli(&empty, &["--task", "no-equals-sign", "--out", run]);
    assert_fails_with(&o, &["--task no-equals-sign: expected NAME=DIR"]);
    // A missing file names the task's folder and the file.
    std::fs::remove_file(tmp.path().join("digits/train-labels-idx1-ubyte")).unwrap();
    let o = train_cli(&empty, &["--task", &dots, "--task", &digits, "--out", run]);
    let digits_dir = format!("{}/", tmp.path().join("digits").display());
    assert_fails_with(
        &o,
        &["digits data not found", &digits_dir, "train-labels-idx1-ubyte"],
    );
    // A built-in task that is not there: its folder under the data directory, and how to fetch it.
    let o = train_cli(&empty, &["--tasks", "kmnist", "--out", run]);
    assert_fails_with(&o, &["KMNIST data not found", "data fetch", "--tasks kmnist"]);
}

/// The same command line on the GPU backend (any adapter; skipped without one unless
/// `SPATIAL_GPU_REQUIRE_ADAPTER=1`): heads of 3 and 10 classes in the WGSL loss.
#[test]
fn tasks_of_different_sizes_train_on_the_gpu() {
    if spatial_gpu::gpu::test_context().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (dots, digits) = write_tasks(tmp.path());
    let run = tmp.path().join("run");
    let o = bin()
        .args([
            "train",
            "--backend",
            "gpu",
            "--no-progress",
            "--hidden",
            "16,16,16",
            "--batch-size",
            "16",
        ])
        .args(["--epochs", "1", "--task", &dots, "--task", &digits, "--out"])
        .arg(&run)
        .arg("--data-dir")
        .arg(tmp.path().join("none"))
        .output()
        .unwrap();
    assert_success(&o, "train on the GPU");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["tasks"], serde_json::json!(["dots", "digits"]));
    let acc = summary["task_accuracy"].as_array().unwrap();
    assert!(
        acc.iter().all(|a| (0.0..=1.0).contains(&a.as_f64().unwrap())),
        "{acc:?}"
    );
}
