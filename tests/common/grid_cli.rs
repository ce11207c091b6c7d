//! The command-line helpers of the grid tests (`tests/reproduce.rs`, `tests/shard.rs`): tiny IDX
//! data, the binary, its success or a failure naming the option, `reproduce`'s tiny grid.
#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Writes both tiny sets into `dir` (64 training and 32 test images of 4x4 each).
pub fn tiny_data(dir: &Path) {
    crate::common::write_set(dir, "mnist", &crate::common::set_files(64, 32, 4, 4, 1), false);
    crate::common::write_set(
        dir,
        "fashion-mnist",
        &crate::common::set_files(64, 32, 4, 4, 50),
        true,
    );
}

pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spatial-gpu"))
        .args(args)
        .env("SPATIAL_GPU_NO_FETCH", "1")
        .output()
        .expect("the binary runs")
}

pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "`{}` failed:\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn fails_naming(args: &[&str], needles: &[&str]) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "`{}` should fail", args.join(" "));
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

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn reproduce_args<'a>(data: &'a str, out: &'a str, jobs: &'a str) -> Vec<&'a str> {
    vec![
        "reproduce",
        "--epochs",
        "1",
        "--seeds",
        "1,2",
        "--backend",
        "cpu",
        "--data-dir",
        data,
        "--out",
        out,
        "--hidden",
        "8,8,8,8",
        "--batch-size",
        "16",
        "--permutations",
        "20",
        "--init",
        "xavier",
        "--alpha",
        "0.01",
        "--jobs",
        jobs,
    ]
}

/// `sweep`'s tiny grid of 4 cells (concat; regular, paper alpha 0.01 and 1, mean alpha 1), seed 3,
/// no figures.
pub fn sweep_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
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
        "paper,mean",
        "--weight-norms",
        "l1",
        "--paper-alphas",
        "0.01,1",
        "--mean-alphas",
        "1",
        "--backend",
        "cpu",
        "--data-dir",
        data,
        "--out",
        out,
        "--hidden",
        "8,8,8,8",
        "--batch-size",
        "16",
        "--permutations",
        "10",
        "--no-figures",
    ]
}

/// results.json without the wall times, which are the only thing allowed to differ between runs.
pub fn results_without_times(path: &Path) -> Vec<Value> {
    let v: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            o.retain(|k, _| !k.contains("seconds"));
            if let Some(sel) = o.get_mut("modularity").and_then(|m| m.get_mut("selectivity")) {
                sel.as_object_mut().unwrap().remove("seconds");
            }
            r
        })
        .collect()
}

pub fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}
