//! `reproduce --shard I/N`, `sweep --shard I/N` and `--collect DIR...` end to end through the
//! binary on tiny IDX data (see `tests/reproduce.rs`): the shards hold every run once, collecting
//! them gives the unsharded grid's results, and bad values are errors naming the option.

mod common;
#[path = "common/grid_cli.rs"]
mod grid_cli;

use grid_cli::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The run directories (those holding a split.json) of a grid directory.
fn run_dirs(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("split.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `--shard I/N` and `--collect`: shards 1..3 together train every run of the grid exactly once,
/// each tabulating its own; `--collect` of their directories gives the unsharded grid's results.json
/// (wall times aside); a shard missing is listed; a run found twice with different results, or with
/// other options than the grid's, is an error naming the directories.
#[test]
fn shards_cover_the_grid_and_collect_equals_the_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    let grid = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = reproduce_args(s(&data), s(out), "2")
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.push("--no-figures".into());
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let strs = |v: &[String]| v.iter().map(String::clone).collect::<Vec<_>>();
    let call = |v: Vec<String>| run(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let okv = |v: Vec<String>| ok(&v.iter().map(String::as_str).collect::<Vec<_>>());

    let whole = tmp.path().join("whole");
    okv(grid(&whole, &[]));
    let all = run_dirs(&whole);
    assert_eq!(all.len(), 12);

    let shards: Vec<PathBuf> = (1..=3).map(|i| tmp.path().join(format!("shard{i}"))).collect();
    let mut seen: Vec<String> = Vec::new();
    for (i, dir) in shards.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        let stdout = okv(grid(dir, &["--shard", &shard]));
        assert!(
            stdout.contains(&format!("shard {shard}: 4 of 12 runs")),
            "{stdout}"
        );
        let md = std::fs::read_to_string(dir.join("table.md")).unwrap();
        assert!(md.contains(&format!("shard {shard}: 4 of 12 runs")), "{md}");
        let runs = run_dirs(dir);
        assert_eq!(runs.len(), 4, "shard {shard}: {runs:?}");
        assert_eq!(results_without_times(&dir.join("results.json")).len(), 4);
        // The rule: run k (from 1, grid order) belongs to shard ((k - 1) mod 3) + 1; the grid order
        // is concat regular seed 1, seed 2, concat spatial seed 1, ...
        let grid_order: Vec<String> = results_without_times(&whole.join("results.json"))
            .iter()
            .map(|r| r["run"].as_str().unwrap().to_string())
            .collect();
        let mut want: Vec<String> = grid_order
            .iter()
            .enumerate()
            .filter(|(k, _)| k % 3 == i)
            .map(|(_, n)| n.clone())
            .collect();
        want.sort();
        assert_eq!(runs, want, "shard {shard}");
        seen.extend(runs);
    }
    seen.sort();
    assert_eq!(seen, all, "shards 1..3 together hold every run exactly once");

    // Collect: the same results as the whole grid.
    let merged = tmp.path().join("merged");
    let mut args = grid(&merged, &["--collect"]);
    args.extend(shards.iter().map(|d| s(d).to_string()));
    let stdout = okv(args.clone());
    assert!(stdout.contains("collected all 12 runs"), "{stdout}");
    assert_eq!(
        results_without_times(&merged.join("results.json")),
        results_without_times(&whole.join("results.json"))
    );
    let md = std::fs::read_to_string(merged.join("table.md")).unwrap();
    assert!(md.contains("12 of 12 runs"), "{md}");
    assert!(run_dirs(&merged).is_empty(), "--collect trains nothing");

    // A shard missing: its runs are listed, the others tabulated, the exit code is 1.
    let partial = tmp.path().join("partial");
    let mut a = grid(&partial, &["--collect"]);
    a.extend(shards[..2].iter().map(|d| s(d).to_string()));
    let out = call(a);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 of 12 runs are in no given directory"),
        "{stderr}"
    );
    for name in run_dirs(&shards[2]) {
        assert!(stderr.contains(&name), "{name} not listed:\n{stderr}");
    }
    assert_eq!(results_without_times(&partial.join("results.json")).len(), 8);

    // The same run in two directories with different results.
    let name = &run_dirs(&shards[0])[0];
    let copy = shards[1].join(name);
    let status = Command::new("cp")
        .args(["-r", s(&shards[0].join(name)), s(&copy)])
        .status()
        .unwrap();
    assert!(status.success());
    let split_path = copy.join("split.json");
    let mut split: Value = serde_json::from_str(&std::fs::read_to_string(&split_path).unwrap()).unwrap();
    split["full_accuracy"] = Value::from(0.123);
    std::fs::write(&split_path, serde_json::to_string_pretty(&split).unwrap()).unwrap();
    let first = s(&shards[0].join(name)).to_string();
    let second = s(&copy).to_string();
    let conflict = strs(&args);
    let conflict: Vec<&str> = conflict.iter().map(String::as_str).collect();
    fails_naming(&conflict, &["--collect", name, "differs", &first, &second]);
    // The same copy with the same results is fine.
    std::fs::copy(shards[0].join(name).join("split.json"), &split_path).unwrap();
    okv(args.clone());
    std::fs::remove_dir_all(&copy).unwrap();

    // A grid with other options than the runs': an error naming the run's directory.
    let mut other = grid(&merged, &["--lr", "0.001", "--collect"]);
    other.extend(shards.iter().map(|d| s(d).to_string()));
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    fails_naming(&other, &["--collect", "other options", "lr", s(&shards[0])]);
}

#[test]
fn bad_shard_and_collect_options_are_rejected_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    let out = tmp.path().join("o");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = reproduce_args(s(&data), s(&out), "1")
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
    check(&["--shard", "1/0"], &["--shard", "1/0", "N is 0"]);
    check(&["--shard", "0/3"], &["--shard", "0/3", "counts from 1"]);
    check(&["--shard", "4/3"], &["--shard", "4/3", "counts from 1"]);
    check(&["--shard", "2"], &["--shard", "expected I/N"]);
    check(&["--shard", "a/3"], &["--shard", "\"a\""]);
    check(&["--shard", "1/13"], &["--shard 1/13", "12 runs"]);
    check(
        &["--shard", "1/2", "--collect", s(tmp.path())],
        &["--shard 1/2", "--collect"],
    );
    check(
        &["--tabulate-only", "--collect", s(tmp.path())],
        &["--tabulate-only", "--collect"],
    );
    let nowhere = tmp.path().join("nowhere");
    check(
        &["--collect", s(&nowhere)],
        &["--collect", s(&nowhere), "not a directory"],
    );
    assert!(!out.join("results.json").exists(), "nothing was trained");
}

/// `sweep --shard` and `sweep --collect`: the shards' runs make up the sweep, and collecting them
/// gives every cell its runs.
#[test]
fn sweep_shards_and_collect() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    tiny_data(&data);
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = sweep_args(s(&data), s(out))
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let okv = |v: Vec<String>| ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let stdout = okv(args(&a, &["--shard", "1/2"]));
    assert!(stdout.contains("shard 1/2: 2 of 4 runs"), "{stdout}");
    okv(args(&b, &["--shard", "2/2"]));
    let md = std::fs::read_to_string(a.join("sweep.md")).unwrap();
    assert!(md.contains("shard 1/2: 2 of 4 runs"), "{md}");
    assert_eq!(run_dirs(&a).len() + run_dirs(&b).len(), 4);
    let merged = tmp.path().join("m");
    okv(args(&merged, &["--collect", s(&a), s(&b)]));
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(sweep["cells"].as_array().unwrap().len(), 4);
    assert!(sweep["cells"].as_array().unwrap().iter().all(|c| c["runs"] == 1));
    assert_eq!(sweep["runs"].as_array().unwrap().len(), 4);
}
