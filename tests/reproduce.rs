//! `reproduce`, `sweep`, `split` and `figure` end to end through the binary, on tiny IDX data written
//! to a temporary directory (4x4 images, hidden layers of 8, 1 epoch): the files they write, their
//! fields, that a second invocation redoes nothing, that `--jobs` does not change the results, and
//! that bad options are errors naming the option.

mod common;
#[path = "common/grid_cli.rs"]
mod grid_cli;

use grid_cli::*;
use serde_json::Value;
use std::path::PathBuf;

#[test]
fn reproduce_trains_the_grid_writes_results_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    let out = tmp.path().join("grid");
    let stdout = ok(&reproduce_args(s(&data), s(&out), "2"));
    assert!(stdout.contains("12 runs"), "{stdout}");
    assert_eq!(
        stdout.matches("] ").count(),
        12,
        "one line per finished run with --jobs 2:\n{stdout}"
    );
    assert!(
        !stdout.contains("epoch   1/1"),
        "no per-epoch lines with --jobs 2:\n{stdout}"
    );

    // Every run has its own directory with the standard files and the split report.
    let names: Vec<String> = ["concat", "mixed", "sequential"]
        .iter()
        .flat_map(|m| ["regular", "spatial"].map(move |k| (m, k)))
        .flat_map(|(m, k)| [1, 2].map(move |seed| format!("{m}-{k}-seed{seed}")))
        .collect();
    for n in &names {
        for f in ["model.safetensors", "metrics.jsonl", "summary.json", "split.json"] {
            assert!(out.join(n).join(f).is_file(), "{n}/{f} missing");
        }
        // Figures 1 and 2 of the first seed of each cell, drawn by the grid itself, with the
        // split's caption; none for the other seeds.
        for f in ["figure1.png", "figure1.svg", "figure2.png", "figure2.svg"] {
            assert_eq!(
                out.join(n).join(f).is_file(),
                n.ends_with("seed1"),
                "{n}/{f}: drawn for seed 1 only"
            );
        }
        if n.ends_with("seed1") {
            let svg = std::fs::read_to_string(out.join(n).join("figure1.svg")).unwrap();
            assert!(svg.contains(n.as_str()), "{n}: the title names the run");
            assert!(
                svg.contains("accuracy drop"),
                "{n}: the caption has the split drop"
            );
        }
    }

    // results.json: the runs in grid order with the promised fields.
    let results: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.len(), 12);
    for (r, n) in results.iter().zip(&names) {
        assert_eq!(r["run"], n.as_str());
        for key in [
            "mode",
            "spatial",
            "seed",
            "epochs",
            "full_accuracy",
            "split_accuracy",
            "drop",
            "task_accuracy",
            "task_split_accuracy",
            "split_layers",
            "train_seconds",
            "split_seconds",
        ] {
            assert!(r.get(key).is_some(), "{n}: no {key}");
        }
        assert_eq!(r["epochs"], 1);
        assert_eq!(r["spatial"], n.contains("spatial"));
        assert_eq!(r["init"], "xavier");
        let full = r["full_accuracy"].as_f64().unwrap();
        let split = r["split_accuracy"].as_f64().unwrap();
        assert!((r["drop"].as_f64().unwrap() - (full - split)).abs() < 1e-12);
        assert_eq!(r["task_accuracy"].as_array().unwrap().len(), 2);
        assert_eq!(r["task_split_accuracy"].as_array().unwrap().len(), 2);
        let layers = r["split_layers"].as_array().unwrap();
        assert_eq!(
            layers
                .iter()
                .map(|l| l["layer"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        let counts: u64 = layers[1]["neurons_per_task"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(counts, 8, "every neuron of layer 4 goes to one task");
        assert_eq!(layers[2]["neurons_per_task"], serde_json::json!([10, 10]));
        // The modularity measures of split.json, for the same split layers.
        let m = &r["modularity"];
        assert_eq!(m["layers"], serde_json::json!([3, 4, 5]), "{n}");
        assert!(m["task_modularity"].is_f64(), "{n}: {m}");
        assert!(m["detected_modularity"].is_f64(), "{n}: {m}");
        assert_eq!(m["participation"].as_array().unwrap().len(), 3);
        assert!(m["selectivity"]["layers"].is_array(), "{n}: {m}");
        // Every metrics.jsonl line carries the per-epoch measures, and the last one's Q is the
        // split's (the same parameters, two routes).
        let metrics = std::fs::read_to_string(out.join(n).join("metrics.jsonl")).unwrap();
        let last: Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        let cheap = &last["modularity"];
        assert_eq!(cheap["layers"], serde_json::json!([3, 4, 5]), "{n}: {last}");
        assert_eq!(cheap["cross_share"].as_array().unwrap().len(), 3);
        assert_eq!(
            cheap["cross_share"][2],
            Value::Null,
            "the output layer has no share"
        );
        assert_eq!(cheap["segregation"].as_array().unwrap().len(), 3);
        let (q_epoch, q_split) = (
            cheap["task_modularity"].as_f64().unwrap(),
            m["task_modularity"].as_f64().unwrap(),
        );
        assert!((q_epoch - q_split).abs() < 1e-9, "{n}: {q_epoch} vs {q_split}");
        assert_eq!(
            cheap["cross_share"][0].as_f64(),
            layers[0]["cross_share"].as_f64(),
            "{n}"
        );
        if n.contains("spatial") {
            assert_eq!(r["alpha"].as_f64().unwrap() as f32, 0.01);
            assert_eq!(r["beta"], 3.0);
        } else {
            assert_eq!((r["alpha"].as_f64(), r["beta"].as_f64()), (Some(0.0), Some(0.0)));
        }
    }

    // table.md: laid out like Table 1, with the paper's numbers.
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for needle in [
        "| | concat regular | concat spatial | mixed regular | mixed spatial | sequential regular | sequential spatial |",
        "| full |",
        "| split |",
        "| drop |",
        "0.92 ± 0.04",
        "0.33 ± 0.20",
        "Beside the paper",
        "segregation",
        "concat-spatial-seed2",
        "## Modularity",
        "| Q (tasks) |",
        "| Q (detected) |",
        "| participation > 0.5 |",
        "| selectivity agreement |",
        "| runs measured | 2/2 |",
    ] {
        assert!(table.contains(needle), "table.md lacks {needle:?}:\n{table}");
    }

    // A second invocation trains nothing: every run is read back, files untouched, same results.
    let before = results_without_times(&out.join("results.json"));
    let ck = out.join("concat-spatial-seed1/model.safetensors");
    let (t_model, t_split) = (mtime(&ck), mtime(&out.join("concat-spatial-seed1/split.json")));
    let stdout = ok(&reproduce_args(s(&data), s(&out), "2"));
    assert_eq!(stdout.matches("already finished").count(), 12, "{stdout}");
    assert_eq!(mtime(&ck), t_model, "a finished run was retrained");
    assert_eq!(
        mtime(&out.join("concat-spatial-seed1/split.json")),
        t_split,
        "a finished run was split again"
    );
    assert_eq!(results_without_times(&out.join("results.json")), before);

    // A run whose split report is missing is only split again; one with a checkpoint but no summary
    // (an interrupted run) continues from it.
    std::fs::remove_file(out.join("mixed-regular-seed2/split.json")).unwrap();
    std::fs::remove_file(out.join("mixed-spatial-seed1/summary.json")).unwrap();
    let stdout = ok(&reproduce_args(s(&data), s(&out), "1"));
    assert_eq!(stdout.matches("already finished").count(), 10, "{stdout}");
    assert!(out.join("mixed-regular-seed2/split.json").is_file());
    assert!(out.join("mixed-spatial-seed1/summary.json").is_file());
    assert_eq!(results_without_times(&out.join("results.json")), before);

    // A run split by a binary older than the modularity measures gets them from its checkpoint, and
    // --tabulate-only trains nothing: an unfinished run is left out of the tables.
    let split_json = out.join("concat-regular-seed1/split.json");
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(&split_json).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("modularity");
    std::fs::write(&split_json, serde_json::to_string_pretty(&old).unwrap()).unwrap();
    std::fs::remove_file(out.join("sequential-spatial-seed2/summary.json")).unwrap();
    let mut tabulate = reproduce_args(s(&data), s(&out), "1");
    tabulate.push("--tabulate-only");
    let output = run(&tabulate);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sequential-spatial-seed2: not finished, left untrained"),
        "{stdout}"
    );
    assert!(
        stderr.contains("--tabulate-only: 1 runs not finished"),
        "{stderr}"
    );
    assert!(!out.join("sequential-spatial-seed2/summary.json").exists());
    let tabulated = results_without_times(&out.join("results.json"));
    assert_eq!(tabulated.len(), 11);
    assert_eq!(
        tabulated[0], before[0],
        "the measures computed again are the same"
    );
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("Runs finished: 11 of 12"), "{table}");
    // Trained again without the flag, the grid is whole and unchanged.
    ok(&reproduce_args(s(&data), s(&out), "1"));
    assert_eq!(results_without_times(&out.join("results.json")), before);

    // The same grid with one job gives the same results as with two.
    let out1 = tmp.path().join("grid-one-job");
    let stdout = ok(&reproduce_args(s(&data), s(&out1), "1"));
    assert!(
        stdout.contains("epoch   1/1"),
        "per-epoch lines with one job:\n{stdout}"
    );
    assert_eq!(results_without_times(&out1.join("results.json")), before);

    // A grid with other options refuses to reuse the directory, before training anything.
    let mut other = reproduce_args(s(&data), s(&out), "1");
    let i = other.iter().position(|a| *a == "xavier").unwrap();
    other[i] = "torch";
    fails_naming(&other, &["concat-regular-seed1", "init", "--out"]);
    assert_eq!(mtime(&ck), t_model);

    // split and figure on one of the runs.
    let run_dir = out.join("concat-spatial-seed1");
    let json = tmp.path().join("split-report.json");
    let stdout = ok(&[
        "split",
        "--model",
        s(&run_dir),
        "--data-dir",
        s(&data),
        "--backend",
        "cpu",
        "--json",
        s(&json),
        "--permutations",
        "20",
    ]);
    for needle in [
        "MNIST",
        "Fashion-MNIST",
        "segregation",
        "cross |w|",
        "neurons per task",
        "Q of the task partition (2 tasks)",
        "Q of the Louvain partition",
        "P/(1-1/M)",
        "agreement",
    ] {
        assert!(
            stdout.contains(needle),
            "split output lacks {needle:?}:\n{stdout}"
        );
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["split_layers"], serde_json::json!([3, 4, 5]));
    // The same split as the one reproduce made.
    let made: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("split.json")).unwrap()).unwrap();
    assert_eq!(report["assignment"], made["assignment"]);
    assert_eq!(report["task_split_accuracy"], made["task_split_accuracy"]);
    assert_eq!(
        report["modularity"]["task_modularity"],
        made["modularity"]["task_modularity"]
    );

    let figs = tmp.path().join("figs");
    let stdout = ok(&["figure", "--model", s(&run_dir), "--out", s(&figs)]);
    for f in ["figure1.png", "figure1.svg", "figure2.png", "figure2.svg"] {
        assert!(stdout.contains(f), "{stdout}");
        let bytes = std::fs::read(figs.join(f)).unwrap();
        if f.ends_with("png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f} is not a PNG");
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains("<svg"), "{f} is not an SVG");
            assert!(
                text.contains("MNIST") && text.contains("layer 5"),
                "{f} lacks its legend"
            );
            assert!(text.contains(if f.starts_with("figure1") {
                "y position"
            } else {
                "depth (layer)"
            }));
        }
    }
}

#[test]
fn sweep_writes_one_row_per_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    let out = tmp.path().join("sweep");
    let mut args = sweep_args(s(&data), s(&out));
    args.extend(["--jobs", "2"]);
    let stdout = ok(&args);
    assert!(stdout.contains("4 cells x 1 seeds = 4 runs"), "{stdout}");
    let run = out.join("concat-xavier-paper-l1-a0.01-b3-seed3");
    assert!(!run.join("figure1.png").exists(), "--no-figures draws none");
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let cells = sweep["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    let key = |c: &Value| {
        (
            c["spatial"].as_bool().unwrap(),
            c["transport_norm"].clone(),
            c["alpha"].as_f64().unwrap() as f32,
        )
    };
    assert_eq!(key(&cells[0]), (false, Value::Null, 0.0));
    assert_eq!(key(&cells[1]), (true, Value::from("paper"), 0.01));
    assert_eq!(key(&cells[2]), (true, Value::from("paper"), 1.0));
    assert_eq!(key(&cells[3]), (true, Value::from("mean"), 1.0));
    for c in cells {
        assert_eq!(c["runs"], 1);
        assert!(c["trained_all_heads"].as_u64().unwrap() <= 1);
        assert!(c["full_accuracy"].is_f64() && c["split_accuracy"].is_f64() && c["drop"].is_f64());
        assert_eq!(c["layers"].as_array().unwrap().len(), 3);
        assert!(c["task_modularity"]["mean"].is_f64(), "{c}");
        assert!(c["detected_modularity"]["mean"].is_f64(), "{c}");
        assert_eq!(c["task_modularity"]["runs"], 1);
    }
    assert_eq!(sweep["runs"].as_array().unwrap().len(), 4);
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("| concat | xavier | mean | l1 | 1 | 3 |"), "{md}");
    assert!(md.contains("| concat | xavier | (regular) |"), "{md}");
    assert!(md.contains("| Q tasks | Q det. | part. | agree. |"), "{md}");
    assert!(out
        .join("concat-xavier-paper-l1-a0.01-b3-seed3/split.json")
        .is_file());

    let stdout = ok(&args);
    assert_eq!(stdout.matches("already finished").count(), 4, "{stdout}");
}

#[test]
fn bad_grid_options_are_rejected_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    let out = tmp.path().join("o");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "reproduce",
            "--backend",
            "cpu",
            "--data-dir",
            s(&data),
            "--out",
            s(&out),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let check = |extra: &[&str], needles: &[&str]| {
        let v = base(extra);
        fails_naming(&v.iter().map(String::as_str).collect::<Vec<_>>(), needles);
    };
    check(&["--seeds", "1,x"], &["--seeds", "x"]);
    check(&["--seeds", "2,2"], &["--seeds", "repeated"]);
    check(&["--jobs", "0"], &["--jobs"]);
    check(&["--epochs", "0"], &["--epochs"]);
    check(&["--modes", "concat,diagonal"], &["--modes", "diagonal"]);
    check(&["--alpha", "0", "--beta", "0"], &["--alpha 0 --beta 0"]);
    check(&["--alpha=-1"], &["--alpha", "-1"]);
    fails_naming(
        &[
            "sweep",
            "--paper-alphas",
            "0.01,0.01",
            "--data-dir",
            s(&data),
            "--out",
            s(&out),
        ],
        &["--paper-alphas"],
    );
    fails_naming(
        &["sweep", "--betas=-3", "--data-dir", s(&data), "--out", s(&out)],
        &["--betas", "-3"],
    );

    // --out naming a file.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    fails_naming(
        &["reproduce", "--data-dir", s(&data), "--out", s(&file)],
        &["--out", "not a directory"],
    );
}

#[test]
fn split_and_figure_need_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let empty: PathBuf = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_naming(
        &["split", "--model", s(&empty), "--backend", "cpu"],
        &["--model", "no checkpoint", "model.safetensors"],
    );
    fails_naming(&["figure", "--model", s(&empty)], &["--model", "no checkpoint"]);
    let missing = tmp.path().join("missing");
    fails_naming(
        &["split", "--model", s(&missing)],
        &["--model", "no such directory"],
    );
    fails_naming(
        &["figure", "--model", s(&missing)],
        &["--model", "no such directory"],
    );
    fails_naming(
        &["figure", "--model", s(&empty), "--min-weight=-1"],
        &["--min-weight"],
    );
    // A corrupt checkpoint is named too.
    std::fs::write(empty.join("model.safetensors"), b"not a checkpoint").unwrap();
    fails_naming(
        &["split", "--model", s(&empty), "--backend", "cpu"],
        &["--model", "model.safetensors"],
    );
}

/// `reproduce` and `sweep` on three tasks of different sizes (`--task` directories; concat only):
/// every table has the tasks by name and every run of the JSON its numbers keyed by task name.
#[test]
fn grids_speak_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut small = common::set_files(48, 20, 3, 3, 1);
    small[1] = common::labels(&(0..48).map(|i| (i % 3) as u8).collect::<Vec<_>>());
    small[3] = common::labels(&(0..20).map(|i| (i % 3) as u8).collect::<Vec<_>>());
    common::write_set(dir, "small", &small, false);
    common::write_set(dir, "mid", &common::set_files(64, 32, 4, 4, 5), true);
    common::write_set(dir, "wide", &common::set_files(40, 16, 2, 6, 9), false);
    let defs: Vec<String> = ["small", "mid", "wide"]
        .iter()
        .map(|t| format!("{t}={}", dir.join(t).display()))
        .collect();
    let out = dir.join("grid");
    let mut args = reproduce_args(s(dir), s(&out), "1");
    let seeds = args.iter().position(|a| *a == "1,2").unwrap();
    args[seeds] = "1";
    args.extend(["--modes", "concat", "--tasks", "small,mid,wide"]);
    for d in &defs {
        args.extend(["--task", d.as_str()]);
    }
    let stdout = ok(&args);
    assert!(
        stdout.contains("small 0.") && stdout.contains(" / mid 0.") && stdout.contains(" / wide 0."),
        "{stdout}"
    );
    let results: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r["tasks"], serde_json::json!(["small", "mid", "wide"]));
        for (t, name) in ["small", "mid", "wide"].iter().enumerate() {
            assert_eq!(r["by_task"][name]["full"], r["task_accuracy"][t], "{r}");
            assert_eq!(r["by_task"][name]["split"], r["task_split_accuracy"][t], "{r}");
        }
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for name in ["small", "mid", "wide"] {
        assert!(table.contains(&format!("| {name} full |")), "{table}");
        assert!(table.contains(&format!(" {name} full / split |")), "{table}");
    }
    // The paper's numbers are for MNIST and Fashion-MNIST: not beside three other tasks.
    assert!(
        table.starts_with("# Table 1's grid on 3 tasks: small, mid, wide"),
        "{table}"
    );
    assert!(!table.contains("Beside the paper") && !table.contains("The paper's Table 1"));
    assert!(
        table.contains("the mean of the tasks' test accuracies"),
        "{table}"
    );

    // The default modes include mixed, which needs one image size: refused, naming the tasks.
    let out2 = dir.join("grid2");
    let mut mixed = reproduce_args(s(dir), s(&out2), "1");
    mixed.extend(["--tasks", "small,mid"]);
    for d in &defs[..2] {
        mixed.extend(["--task", d.as_str()]);
    }
    fails_naming(
        &mixed,
        &["--mode", "task small has 3x3 images and task mid has 4x4"],
    );

    let sweep_out = dir.join("sweep");
    let mut sweep = vec![
        "sweep",
        "--epochs",
        "1",
        "--seeds",
        "3",
        "--modes",
        "concat",
        "--inits",
        "xavier",
        "--transport-norms",
        "paper",
        "--weight-norms",
        "l1",
        "--paper-alphas",
        "0.01",
        "--backend",
        "cpu",
        "--data-dir",
        s(dir),
        "--out",
        s(&sweep_out),
        "--hidden",
        "8,8,8,8",
        "--batch-size",
        "16",
        "--permutations",
        "10",
        "--no-regular",
    ];
    for d in &defs {
        sweep.extend(["--task", d.as_str()]);
    }
    ok(&sweep);
    let md = std::fs::read_to_string(sweep_out.join("sweep.md")).unwrap();
    assert!(
        md.contains("## Per task") && md.contains("| small | mid | wide |"),
        "{md}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(sweep_out.join("sweep.json")).unwrap()).unwrap();
    let tasks = json["cells"][0]["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["small", "mid", "wide"]);
}
