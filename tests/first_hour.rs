//! The faults a user meets in the first hour with the command line: two processes on one run
//! directory, a run that failed before its first checkpoint, resuming with the run's own options
//! repeated or with other data, the timing of a resumed run, and the epoch line's width.

mod support;

use std::fs::File;
use support::*;

/// While another process holds a run directory's lock, neither `train --out` nor `--resume` of it
/// starts: both fail at once, naming the directory, and write nothing into it.
#[test]
fn a_locked_run_directory_is_refused() {
    let data = cli_data_dir(1);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    std::fs::create_dir(&out).unwrap();
    let lock = File::create(out.join(".lock")).unwrap();
    lock.try_lock().expect("the test takes the lock first");
    let o = train_cli(data.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &["--out", "another spatial-gpu process", out.to_str().unwrap()],
    );
    assert_eq!(
        file_names(&out),
        vec![".lock".to_string()],
        "nothing written while locked"
    );

    // A run finished earlier, now being written by someone else: --resume waits its turn too.
    drop(lock);
    assert_success(
        &train_cli(data.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]),
        "train",
    );
    let lock = File::open(out.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let o = resume_cli(&out, data.path(), &["--epochs", "2"]);
    assert_fails_with(&o, &["--resume", "another spatial-gpu process"]);
    drop(lock);
    assert_success(
        &resume_cli(&out, data.path(), &["--epochs", "2"]),
        "resume after the lock is gone",
    );
}

/// A run that failed before its first checkpoint leaves an empty `metrics.jsonl`: `train --out`
/// of that directory starts afresh, and `--resume` says to do so.
#[test]
fn a_run_that_saved_nothing_starts_afresh() {
    let data = cli_data_dir(2);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("metrics.jsonl"), b"").unwrap();
    let o = resume_cli(&out, data.path(), &[]);
    assert_fails_with(&o, &["no checkpoint", "train --out"]);
    let o = train_cli(data.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]);
    assert_success(&o, "train --out over a run that saved nothing");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

/// A first run that cannot find its data leaves no run directory behind.
#[test]
fn a_first_run_without_data_leaves_no_directory() {
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    let empty = runs.path().join("empty-data");
    std::fs::create_dir(&empty).unwrap();
    let o = train_cli(&empty, &["--out", out.to_str().unwrap()]);
    assert_fails_with(&o, &[empty.to_str().unwrap()]);
    assert!(!out.exists(), "{} was left behind", out.display());
}
