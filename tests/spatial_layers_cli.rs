//! `--spatial-layers` and `--activation` through the command line: a run with spatial layers
//! 2,3,4,5 (one more than the default) and the relu trains, splits and draws on those layers; a
//! resume refuses another activation or other spatial layers, naming both values; `reproduce`
//! passes both to every run.

mod support;

use serde_json::Value;
use std::path::Path;
use support::*;

/// `spatial-gpu train` on `data` with a five-layer network (so that 2,3,4,5 ends at the output)
/// and `args`; unlike `train_cli`, without `CLI_OPTS`' three hidden layers.
fn train_five_layers(data: &Path, args: &[&str]) -> std::process::Output {
    bin()
        .args(["train", "--backend", "cpu", "--no-progress", "--init", "xavier"])
        .args(["--hidden", "16,16,16,16", "--batch-size", "16"])
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_run_on_spatial_layers_2_to_5_splits_and_draws_those_layers() {
    let data = cli_data_dir(21);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train_five_layers(
        data.path(),
        &[
            "--epochs",
            "2",
            "--spatial-layers",
            "2,3,4,5",
            "--activation",
            "relu",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&o, "train --spatial-layers 2,3,4,5 --activation relu");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("relu activation, spatial layers 2,3,4,5"),
        "{stdout}"
    );
    // The epoch lines report T and V of each of the four layers.
    assert!(stdout.contains("L2 ") && stdout.contains("L5 "), "{stdout}");
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["model"]["activation"], "relu");
    assert_eq!(
        summary["model"]["spatial_layers"],
        serde_json::json!([2, 3, 4, 5])
    );
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let last: Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(last["transport"].as_array().map(Vec::len), Some(4), "{last}");

    let o = bin()
        .args(["split", "--backend", "cpu", "--permutations", "10", "--model"])
        .arg(&out)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_success(&o, "split");
    let report = json(&out.join("split.json"));
    assert_eq!(report["split_layers"], serde_json::json!([2, 3, 4, 5]));
    let assignment = report["assignment"]["layers"].clone();
    assert_eq!(assignment, serde_json::json!([2, 3, 4, 5]), "{report}");

    let figs = tmp.path().join("figs");
    let o = bin()
        .args(["figure", "--model"])
        .arg(&out)
        .arg("--out")
        .arg(&figs)
        .output()
        .unwrap();
    assert_success(&o, "figure");
    for f in ["figure1.svg", "figure2.svg"] {
        let svg = std::fs::read_to_string(figs.join(f)).unwrap();
        for l in 2..=5 {
            assert!(svg.contains(&format!("layer {l}")), "{f} lacks layer {l}");
        }
    }
}

#[test]
fn resume_refuses_another_activation_or_other_spatial_layers() {
    let data = cli_data_dir(22);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = train_five_layers(
        data.path(),
        &[
            "--epochs",
            "1",
            "--activation",
            "tanh",
            "--spatial-layers",
            "2,3,4,5",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&o, "train");
    let before = std::fs::read(spatial_gpu::train::checkpoint_path(&out)).unwrap();
    let o = resume_cli(
        &out,
        data.path(),
        &[
            "--epochs",
            "2",
            "--activation",
            "relu",
            "--spatial-layers",
            "3,4,5",
        ],
    );
    assert_fails_with(
        &o,
        &[
            "--activation relu (the run's is tanh)",
            "--spatial-layers 3,4,5 (the run's is 2,3,4,5)",
        ],
    );
    assert_eq!(
        std::fs::read(spatial_gpu::train::checkpoint_path(&out)).unwrap(),
        before
    );
    // The run's own values are accepted, and the run continues with them.
    let o = resume_cli(
        &out,
        data.path(),
        &[
            "--epochs",
            "2",
            "--activation",
            "tanh",
            "--spatial-layers",
            "2,3,4,5",
        ],
    );
    assert_success(&o, "resume with the run's own values");
    let ck = load_run(&out);
    assert_eq!(ck.model.activation.to_string(), "tanh");
    assert_eq!(ck.model.spatial_layers, [2, 3, 4, 5]);
    assert_eq!(ck.progress.epoch, 2);
}

/// `reproduce` passes both options to every run of its grid, and refuses a bad list by name.
#[test]
fn reproduce_trains_every_run_with_the_activation_and_spatial_layers() {
    let data = cli_data_dir(23);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("grid");
    let grid = |extra: &[&str]| {
        bin()
            .args(["reproduce", "--backend", "cpu", "--epochs", "1", "--seeds", "1"])
            .args(["--modes", "concat", "--hidden", "8,8,8,8", "--batch-size", "16"])
            .args(["--permutations", "10", "--data-dir"])
            .arg(data.path())
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = grid(&["--spatial-layers", "3,4"]);
    assert_fails_with(&o, &["--spatial-layers", "3,4", "must end at the output layer 5"]);
    let o = grid(&["--activation", "tanh", "--spatial-layers", "2,3,4,5"]);
    assert_success(&o, "reproduce --activation tanh --spatial-layers 2,3,4,5");
    let results = json(&out.join("results.json"));
    let runs = results.as_array().unwrap();
    assert_eq!(runs.len(), 2, "regular and spatial");
    for r in runs {
        let layers: Vec<u64> = r["split_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["layer"].as_u64().unwrap())
            .collect();
        assert_eq!(layers, [2, 3, 4, 5], "{r}");
    }
    for name in ["concat-regular-seed1", "concat-spatial-seed1"] {
        let summary = json(&out.join(name).join("summary.json"));
        assert_eq!(summary["model"]["activation"], "tanh", "{name}");
        assert_eq!(
            summary["model"]["spatial_layers"],
            serde_json::json!([2, 3, 4, 5]),
            "{name}"
        );
    }
}
