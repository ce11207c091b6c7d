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
    // The binary locks the directory itself (flock), as this does.
    let lock = File::open(&out).unwrap();
    lock.try_lock().expect("the test takes the lock first");
    let o = train_cli(data.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &["--out", "another spatial-gpu process", out.to_str().unwrap()],
    );
    assert!(file_names(&out).is_empty(), "nothing written while locked");

    // A run finished earlier, now being written by someone else: --resume waits its turn too.
    drop(lock);
    assert_success(
        &train_cli(data.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]),
        "train",
    );
    let lock = File::open(&out).unwrap();
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
    let out = runs.path().join("runs").join("run");
    let empty = runs.path().join("empty-data");
    std::fs::create_dir(&empty).unwrap();
    let o = train_cli(&empty, &["--out", out.to_str().unwrap()]);
    assert_fails_with(&o, &[empty.to_str().unwrap()]);
    assert!(
        !runs.path().join("runs").exists(),
        "{} was left behind",
        out.display()
    );
}

/// `--resume` with the run's own options repeated is accepted; an option that differs is refused,
/// naming the given value and the run's.
#[test]
fn resume_accepts_the_runs_own_options_and_names_a_changed_one() {
    let data = cli_data_dir(3);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    let first = [
        "--epochs", "1", "--alpha", "0.02", "--seed", "4", "--mode", "concat",
    ];
    let o = train_cli(
        data.path(),
        &[&first[..], &["--out", out.to_str().unwrap()]].concat(),
    );
    assert_success(&o, "train");
    let before = std::fs::read(spatial_gpu::train::checkpoint_path(&out)).unwrap();
    let resume = |extra: &[&str]| {
        bin()
            .arg("train")
            .args(CLI_OPTS)
            .args(["--data-dir", data.path().to_str().unwrap()])
            .args(["--resume", out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = resume(&["--alpha", "0.5", "--seed", "4", "--epochs", "2"]);
    let err = assert_fails_with(&o, &["--alpha 0.5 (the run's is 0.02)"]);
    assert!(
        !err.contains("--seed"),
        "the unchanged --seed is not at fault:\n{err}"
    );
    assert_eq!(
        std::fs::read(spatial_gpu::train::checkpoint_path(&out)).unwrap(),
        before
    );
    let o = resume(&["--hidden", "16,16", "--regular"]);
    assert_fails_with(
        &o,
        &[
            // Given twice, as here (CLI_OPTS has one), clap appends the lists.
            "--hidden 16,16,16,16,16 (the run's is 16,16,16)",
            "--regular (the run's network is spatial)",
        ],
    );
    // The very command line of the run, with more epochs: accepted.
    let o = resume(&[
        "--alpha", "0.02", "--seed", "4", "--mode", "concat", "--epochs", "2",
    ]);
    assert_success(&o, "resume with the run's own options");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
}

/// `--resume` and `split` on data other than the run's, with the same counts (the two tasks'
/// sets swapped), are refused, naming the file and the swap, and change nothing.
#[test]
fn resume_and_split_on_swapped_data_are_refused() {
    let data = cli_data_dir(5);
    let swapped = tempfile::tempdir().unwrap();
    std::fs::rename(data.path().join("mnist"), swapped.path().join("fashion-mnist")).unwrap();
    std::fs::rename(data.path().join("fashion-mnist"), swapped.path().join("mnist")).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    let o = train_cli(swapped.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]);
    assert_success(&o, "train");
    let before = std::fs::read(spatial_gpu::train::checkpoint_path(&out)).unwrap();
    // Put the sets back the right way round: now they are swapped from the run's point of view.
    std::fs::rename(swapped.path().join("mnist"), data.path().join("fashion-mnist")).unwrap();
    std::fs::rename(swapped.path().join("fashion-mnist"), data.path().join("mnist")).unwrap();
    let o = resume_cli(&out, data.path(), &["--epochs", "2"]);
    let file = format!("{}/fashion-mnist/", data.path().display());
    assert_fails_with(
        &o,
        &[
            &file,
            "not the data this run was trained on",
            "swapped",
            "--data-dir",
        ],
    );
    assert_eq!(
        std::fs::read(spatial_gpu::train::checkpoint_path(&out)).unwrap(),
        before
    );
    let o = bin()
        .args(["split", "--backend", "cpu", "--model", out.to_str().unwrap()])
        .args(["--data-dir", data.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_fails_with(&o, &[&file, "swapped"]);
}

/// After a resume, `summary.json` counts the time of every epoch of the run, not only those
/// trained since the resume: its seconds are the sum of the metrics lines' seconds.
#[test]
fn a_resumed_runs_summary_counts_all_its_epochs() {
    let data = cli_data_dir(6);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    let o = train_cli(data.path(), &["--epochs", "2", "--out", out.to_str().unwrap()]);
    assert_success(&o, "train");
    assert_success(&resume_cli(&out, data.path(), &["--epochs", "3"]), "resume");
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let per_epoch: Vec<f64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seconds"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(per_epoch.len(), 3);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let total: f64 = per_epoch.iter().sum();
    let seconds = summary["seconds"].as_f64().unwrap();
    assert!(
        (seconds - total).abs() <= 1e-9 * total,
        "summary {seconds} s, epochs {per_epoch:?}"
    );
    let per = summary["seconds_per_epoch"].as_f64().unwrap();
    assert!(
        (per - total / 3.0).abs() <= 1e-9 * total,
        "{per} s/epoch, epochs {per_epoch:?}"
    );
}

/// What `train` prints fits 100 columns, names the tasks, and gives the run's time left in words.
#[test]
fn the_epoch_lines_fit_100_columns() {
    let data = cli_data_dir(7);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    let o = train_cli(data.path(), &["--epochs", "2", "--out", out.to_str().unwrap()]);
    assert_success(&o, "train");
    let stdout = String::from_utf8_lossy(&o.stdout);
    for line in stdout.lines().filter(|l| !l.contains(out.to_str().unwrap())) {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(stdout.contains("epochs 1 to 2"), "{stdout}");
    let first = stdout
        .lines()
        .find(|l| l.starts_with("epoch   1/2"))
        .expect("an epoch line");
    for word in ["accuracy: mnist 0.", "fashion-mnist 0.", "run done in"] {
        assert!(first.contains(word), "{word:?} missing: {first}");
    }
    assert!(
        stdout.contains("transport L") && stdout.contains("examples/s"),
        "{stdout}"
    );
}

#[test]
fn the_epoch_line_is_at_most_100_columns_with_three_spatial_layers() {
    let m = spatial_gpu::train::EpochMetrics {
        epoch: 100,
        seconds: 12345.678,
        samples_per_second: 1234567.0,
        task_loss: 123.4567,
        total_loss: 1234.5678,
        transport: vec![1234.5678; 3],
        density: vec![1234.5678; 3],
        task_accuracy: vec![0.9999, 0.9999],
        tasks: Vec::new(),
        accuracy: 0.9999,
        modularity: None,
    };
    let text = spatial_gpu::train::format_epoch(&m, 500, &[3, 4, 5], Some(3.0 * 86400.0));
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(text.contains("run done in 72 h 00 min"), "{text}");
}

/// Many tasks with long names: the accuracies wrap onto their own lines, each at most 100 columns,
/// every task still named with its accuracy.
#[test]
fn the_epoch_lines_of_many_tasks_fit_100_columns() {
    let names: Vec<String> = (0..7).map(|t| format!("a-long-task-name-{t}")).collect();
    let m = spatial_gpu::train::EpochMetrics {
        epoch: 100,
        seconds: 12.5,
        samples_per_second: 1234.0,
        task_loss: 1.5,
        total_loss: 2.5,
        transport: vec![1.0; 3],
        density: vec![1.0; 3],
        task_accuracy: (0..7).map(|t| 0.9 + t as f64 / 100.0).collect(),
        tasks: names.clone(),
        accuracy: 0.93,
        modularity: None,
    };
    let text = spatial_gpu::train::format_epoch(&m, 500, &[3, 4, 5], Some(3600.0));
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("mean accuracy 0.9300  run done in"),
        "{text}"
    );
    for (t, name) in names.iter().enumerate() {
        assert!(
            text.contains(&format!("{name} {:.4}", 0.9 + t as f64 / 100.0)),
            "{text}"
        );
    }
}
