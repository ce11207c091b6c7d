//! The command line rejects bad options before any work starts, with a message naming the option.

use std::path::Path;
use std::process::{Command, Output};

fn spatial_gpu(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args(args)
        .env("SPATIAL_GPU_DATA", data_dir)
        .output()
        .expect("the binary runs")
}

fn assert_fails_naming(args: &[&str], needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let out = spatial_gpu(args, &tmp.path().join("no-data-here"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "`{}` should fail, it exited with {:?}",
        args.join(" "),
        out.status
    );
    for n in needles {
        assert!(
            stderr.contains(n),
            "`{}`: stderr does not mention {n:?}:\n{stderr}",
            args.join(" ")
        );
    }
    assert!(
        !stderr.contains("panicked"),
        "`{}` panicked:\n{stderr}",
        args.join(" ")
    );
}

#[test]
fn batch_size_zero_is_rejected() {
    assert_fails_naming(
        &["train", "--batch-size", "0", "--backend", "cpu"],
        &["--batch-size", "0"],
    );
}

#[test]
fn negative_learning_rate_is_rejected() {
    assert_fails_naming(&["train", "--lr=-0.1", "--backend", "cpu"], &["--lr", "-0.1"]);
}

#[test]
fn zero_learning_rate_and_epochs_are_rejected() {
    assert_fails_naming(&["train", "--lr", "0", "--backend", "cpu"], &["--lr"]);
    assert_fails_naming(&["train", "--epochs", "0", "--backend", "cpu"], &["--epochs"]);
}

#[test]
fn negative_alpha_and_nan_beta_are_rejected() {
    assert_fails_naming(&["train", "--alpha=-1", "--backend", "cpu"], &["--alpha", "-1"]);
    assert_fails_naming(
        &["train", "--beta", "NaN", "--backend", "cpu"],
        &["--beta", "NaN"],
    );
}

#[test]
fn zero_width_hidden_layer_is_rejected() {
    assert_fails_naming(
        &["train", "--hidden", "128,0,128", "--backend", "cpu"],
        &["--hidden", "0 neurons"],
    );
}

#[test]
fn unknown_mode_is_rejected_by_name() {
    assert_fails_naming(&["train", "--mode", "diagonal"], &["--mode", "diagonal"]);
}

#[test]
fn bad_spatial_layers_are_rejected_naming_the_option_and_list() {
    // The default network has layers 1..=5 (5 is the output layer).
    for (list, problem) in [
        ("3,4", "must end at the output layer 5"),
        ("4,3,5", "not strictly increasing (3 comes after 4)"),
        ("3,3,5", "not strictly increasing (3 comes after 3)"),
        ("0,5", "layer 0 is not one of the network's layers 1..=5"),
        ("3,4,5,6", "layer 6 is not one of the network's layers 1..=5"),
    ] {
        assert_fails_naming(
            &["train", "--spatial-layers", list, "--backend", "cpu"],
            &["invalid --spatial-layers", &format!("{list}: "), problem],
        );
    }
    // With --hidden the output layer moves: 2 hidden layers, output layer 3.
    assert_fails_naming(
        &[
            "train",
            "--hidden",
            "8,8",
            "--spatial-layers",
            "3,4,5",
            "--backend",
            "cpu",
        ],
        &[
            "--spatial-layers",
            "3,4,5",
            "layer 4 is not one of the network's layers 1..=3",
        ],
    );
    assert_fails_naming(
        &["train", "--spatial-layers", "a,5", "--backend", "cpu"],
        &["--spatial-layers", "a"],
    );
    assert_fails_naming(
        &["train", "--spatial-layers", "", "--backend", "cpu"],
        &["--spatial-layers"],
    );
}

#[test]
fn unknown_activation_is_rejected_by_name() {
    assert_fails_naming(
        &["train", "--activation", "swish"],
        &["--activation", "swish", "sigmoid", "relu", "tanh"],
    );
}

#[test]
fn regular_conflicts_with_alpha() {
    assert_fails_naming(&["train", "--regular", "--alpha", "1"], &["--regular", "--alpha"]);
}

#[test]
fn missing_data_directory_lists_expected_files() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let out_dir = tmp.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args([
            "train",
            "--backend",
            "cpu",
            "--epochs",
            "1",
            "--no-progress",
            "--out",
        ])
        .arg(&out_dir)
        .arg("--data-dir")
        .arg(&missing)
        // Keep the test off the network whatever the machine.
        .env("SPATIAL_GPU_NO_FETCH", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("nowhere"),
        "message names the directory:\n{stderr}"
    );
    assert!(
        stderr.contains("train-images-idx3-ubyte"),
        "message lists the files:\n{stderr}"
    );
    assert!(
        stderr.contains("data fetch"),
        "message says how to get them:\n{stderr}"
    );
}

#[test]
fn out_dir_holding_another_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("summary.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args(["train", "--backend", "cpu", "--out"])
        .arg(&run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("already holds a run") && stderr.contains("--resume"),
        "{stderr}"
    );
}

#[test]
fn resume_of_a_directory_without_a_checkpoint_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args(["train", "--lr", "0.1", "--resume"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--resume") && stderr.contains("no checkpoint"),
        "{stderr}"
    );
}

#[test]
fn task_options_are_checked_before_any_work() {
    // bench measures the paper's two tasks only.
    assert_fails_naming(
        &["bench", "--task", "x=/nowhere"],
        &["--task x=/nowhere", "two tasks"],
    );
    // A malformed --task, an unknown task.
    assert_fails_naming(
        &["train", "--backend", "cpu", "--task", "=dir"],
        &["--task =dir", "the task name is empty"],
    );
    assert_fails_naming(
        &["train", "--backend", "cpu", "--tasks", "mnist,qmnist"],
        &[
            "unknown task qmnist",
            "mnist, fashion-mnist, animal-mnist, kmnist, emnist-balanced",
        ],
    );
}
