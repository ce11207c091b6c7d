//! Bad input on the command line, beyond the option checks of `tests/cli.rs`: output directories,
//! `--resume` directories and the checkpoints in them, and sizes that do not fit the data. Each is
//! refused before any training with a message naming the option or file and the fault, exit code 1,
//! never a panic; nothing already on disk is changed. (Read-only and full file systems:
//! `tests/checkpoint.rs`.)

mod support;

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use spatial_gpu::train;
use std::path::Path;
use support::*;

/// A finished one-epoch run (in `mode`) in `tmp/name`.
fn finished_run(data: &Path, tmp: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let dir = tmp.join(name);
    let o = train_cli(
        data,
        &[&["--epochs", "1", "--out", dir.to_str().unwrap()], extra].concat(),
    );
    assert_success(&o, "a one-epoch run");
    dir
}

#[test]
fn out_dir_holding_any_part_of_a_run_is_refused_untouched() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    for file in ["model.safetensors", "metrics.jsonl", "summary.json"] {
        let dir = tmp.path().join(file.replace('.', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), "precious").unwrap();
        let o = train_cli(data.path(), &["--epochs", "1", "--out", dir.to_str().unwrap()]);
        assert_fails_with(&o, &["--out", "already holds a run", file, "--resume"]);
        assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), "precious");
        assert_eq!(file_names(&dir), [file]);
    }
}

#[test]
fn out_that_cannot_be_a_directory_is_refused() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = train_cli(data.path(), &["--out", file.to_str().unwrap()]);
    assert_fails_with(&o, &["--out", "a-file", "exists and is not a directory"]);
    let o = train_cli(data.path(), &["--out", file.join("sub").to_str().unwrap()]);
    assert_fails_with(&o, &["--out", "a-file/sub", "cannot create the directory"]);
    let o = train_cli(data.path(), &["--out", "/proc/spatial-gpu-run"]);
    assert_fails_with(
        &o,
        &["--out /proc/spatial-gpu-run", "cannot create the directory"],
    );
}

#[test]
fn resume_without_a_run_is_refused() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    assert_fails_with(
        &resume_cli(&tmp.path().join("nowhere"), data.path(), &[]),
        &["--resume", "nowhere", "no such directory"],
    );
    let o = resume_cli(tmp.path(), data.path(), &[]);
    assert_fails_with(&o, &["--resume", "no checkpoint", "model.safetensors"]);
    let run = finished_run(data.path(), tmp.path(), "run", &[]);
    let o = resume_cli(&train::checkpoint_path(&run), data.path(), &[]);
    assert_fails_with(
        &o,
        &[
            "give the run's directory, not a file",
            &format!("--resume {}", run.display()),
        ],
    );
}

#[test]
fn resume_with_fewer_epochs_than_done_is_refused() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert_success(
        &train_cli(data.path(), &["--epochs", "2", "--out", run.to_str().unwrap()]),
        "2 epochs",
    );
    let before = std::fs::read(train::checkpoint_path(&run)).unwrap();
    let o = resume_cli(&run, data.path(), &["--epochs", "1"]);
    assert_fails_with(&o, &["--epochs 1", "already finished 2 epochs"]);
    let o = resume_cli(&run, data.path(), &["--epochs", "0"]);
    assert_fails_with(&o, &["--epochs"]);
    let o = resume_cli(&run, data.path(), &["--seed", "3"]);
    assert_fails_with(&o, &["--seed 3 (the run's is 1)"]);
    assert_eq!(std::fs::read(train::checkpoint_path(&run)).unwrap(), before);
}

#[test]
fn resume_from_a_damaged_or_foreign_checkpoint_names_the_file_and_fault() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let run = finished_run(data.path(), tmp.path(), "run", &[]);
    let ckpt = train::checkpoint_path(&run);
    let good = std::fs::read(&ckpt).unwrap();
    let name = ckpt.display().to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut in the header", good[..100].to_vec(), "truncated"),
        ("cut in the data", good[..good.len() - 1000].to_vec(), "truncated"),
        (
            "a flipped data byte",
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 7] ^= 4;
                b
            },
            "does not match its checksum",
        ),
        (
            "a text file",
            b"not a model at all\n".to_vec(),
            "not a safetensors file",
        ),
        ("an empty file", Vec::new(), "empty"),
    ];
    for (what, bytes, fault) in cases {
        std::fs::write(&ckpt, &bytes).unwrap();
        let o = resume_cli(&run, data.path(), &["--epochs", "2"]);
        let msg = assert_fails_with(&o, &[&name, fault]);
        assert!(msg.starts_with(&format!("error: {name}: ")), "{what}: {msg}");
        assert_eq!(
            std::fs::read(&ckpt).unwrap(),
            bytes,
            "{what}: the file was changed"
        );
    }
}

/// A checkpoint whose model does not fit the data (here, a mixed-mode model, 784 inputs, relabelled
/// as concat, 1568, by a tool that wrote no checksum), and a run resumed on other data.
#[test]
fn resume_with_a_checkpoint_that_does_not_fit_the_data() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let run = finished_run(data.path(), tmp.path(), "mixed", &["--mode", "mixed"]);
    let ckpt = train::checkpoint_path(&run);
    let bytes = std::fs::read(&ckpt).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    meta.remove("checksum");
    meta.insert("train".into(), meta["train"].replace("\"mixed\"", "\"concat\""));
    let views: Vec<(String, TensorView<'_>)> = st.tensors();
    std::fs::write(&ckpt, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    let o = resume_cli(&run, data.path(), &["--epochs", "2"]);
    assert_fails_with(
        &o,
        &[
            &format!("the checkpoint {} has 784 inputs", ckpt.display()),
            "concat input",
            "1568",
        ],
    );

    // Trained on 96 examples per set (6 batches per epoch), resumed with 64 (4 batches).
    let run = finished_run(data.path(), tmp.path(), "concat", &[]);
    let other = cli_data_dir_sized(64, 32, 1);
    let o = resume_cli(&run, other.path(), &["--epochs", "2"]);
    assert_fails_with(&o, &["not the data this run was trained on", "--data-dir"]);
}

#[test]
fn sizes_that_do_not_fit_are_refused_before_allocating() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    // More examples per batch than an epoch has (96 pairs).
    let o = bin()
        .args([
            "train",
            "--backend",
            "cpu",
            "--hidden",
            "8",
            "--batch-size",
            "1000",
            "--data-dir",
        ])
        .arg(data.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_fails_with(&o, &["--batch-size", "1000", "96 training examples"]);
    // A batch no data set could fill is refused before the data is even read.
    let o = bin()
        .args(["train", "--backend", "cpu", "--batch-size", "100000000"])
        .output()
        .unwrap();
    assert_fails_with(&o, &["--batch-size", "100000000", "more than the 65536"]);
    // A model far too large to hold.
    let o = bin()
        .args(["train", "--backend", "cpu", "--hidden", "100000,100000,100000"])
        .output()
        .unwrap();
    assert_fails_with(&o, &["--hidden", "more than 268435456 weights"]);
    let o = bin()
        .args(["train", "--backend", "cpu", "--hidden", "2000000"])
        .output()
        .unwrap();
    assert_fails_with(&o, &["--hidden", "layer 1 has 2000000 neurons", "1048576"]);
    let o = bin()
        .args(["train", "--backend", "cpu", "--lr", "inf"])
        .output()
        .unwrap();
    assert_fails_with(&o, &["--lr", "inf"]);
    let o = bin()
        .args(["train", "--backend", "cpu", "--checkpoint-every", "-1"])
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("-1"), "{}", stderr(&o));
}
