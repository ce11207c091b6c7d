//! The data directory's faults and messages: what stands where a folder or file should be (a file, a
//! FIFO, a symbolic link loop, a dangling link), missing data explained in a few actionable lines,
//! OS errors said once; and the digests that tie a checkpoint to its run's data.

mod support;

use spatial_gpu::checkpoint::{self, Extras, Progress};
use spatial_gpu::config::InputMode;
use spatial_gpu::data::{self, fetch::sha256_hex, DataError, Datasets, SET_FILES};
use spatial_gpu::model::{Params, TrainState};
use std::path::Path;
use support::*;

fn load_err(dir: &Path) -> String {
    let err = data::load(dir).unwrap_err();
    assert!(
        !matches!(err, DataError::MissingData { .. }),
        "reported as missing: {err}"
    );
    format!("{:#}", anyhow::Error::from(err))
}

#[cfg(unix)]
#[test]
fn what_stands_in_the_way_is_named_not_called_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();

    // The data directory is a file.
    let file = t.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let msg = load_err(&file);
    assert!(
        msg.starts_with(&format!("{}: is a regular file, not a directory", file.display())),
        "{msg}"
    );

    // The data directory is a FIFO (reading it would block forever).
    let fifo = t.join("a-fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let msg = load_err(&fifo);
    assert!(
        msg.contains("a-fifo: is a FIFO (named pipe), not a directory"),
        "{msg}"
    );

    // A symbolic link loop.
    let loop_a = t.join("loop-a");
    std::os::unix::fs::symlink(t.join("loop-b"), &loop_a).unwrap();
    std::os::unix::fs::symlink(&loop_a, t.join("loop-b")).unwrap();
    let msg = load_err(&loop_a);
    assert!(
        msg.contains("loop-a: cannot be read (") && msg.contains("os error 40"),
        "{msg}"
    );
    assert_eq!(msg.matches("os error").count(), 1, "{msg}");

    // A dangling link as the data directory.
    let dangling = t.join("dangling");
    std::os::unix::fs::symlink(t.join("nothing-here"), &dangling).unwrap();
    let msg = load_err(&dangling);
    assert!(
        msg.contains("dangling: a symbolic link to") && msg.contains("nothing-here, which does not exist"),
        "{msg}"
    );

    // A good directory whose set folder is a file, and one whose data file is a FIFO.
    let good = cli_data_dir_sized(4, 2, 1);
    let mnist = good.path().join("mnist");
    std::fs::remove_dir_all(&mnist).unwrap();
    std::fs::write(&mnist, "x").unwrap();
    let msg = load_err(good.path());
    assert!(msg.contains("mnist: is a regular file, not a directory"), "{msg}");
    let good = cli_data_dir_sized(4, 2, 1);
    let labels = good.path().join("fashion-mnist").join(SET_FILES[1]);
    std::fs::remove_file(&labels).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&labels)
        .status()
        .unwrap();
    assert!(made.success());
    let msg = load_err(good.path());
    assert!(
        msg.contains("train-labels-idx1-ubyte: is a FIFO (named pipe), not a regular file"),
        "{msg}"
    );
}

#[test]
fn an_unreadable_file_says_why_once() {
    let good = cli_data_dir_sized(4, 2, 1);
    let images = good.path().join("mnist").join(SET_FILES[0]);
    std::fs::remove_file(&images).unwrap();
    std::fs::create_dir(&images).unwrap();
    let msg = load_err(good.path());
    assert!(
        msg.contains("train-images-idx3-ubyte: is a directory, not a regular file"),
        "{msg}"
    );
    // An I/O error while reading: the OS text appears once in anyhow's full chain.
    let err = data::read_images(&good.path().join("nothing")).unwrap_err();
    let msg = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(msg.matches("os error 2").count(), 1, "{msg}");
}

#[test]
fn missing_data_is_a_short_actionable_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nowhere");
    let msg = data::load(&dir).unwrap_err().to_string();
    let lines: Vec<&str> = msg.lines().collect();
    assert!(lines.len() <= 12 && lines.iter().all(|l| l.len() <= 160), "{msg}");
    assert!(lines[0].starts_with(&format!("{}: ", dir.display())), "{msg}");
    // Each missing folder once, its files listed by name on the same line.
    let mnist_line = lines
        .iter()
        .find(|l| {
            l.trim_start()
                .starts_with(&format!("{}/", dir.join("mnist").display()))
        })
        .unwrap_or_else(|| panic!("no line for the mnist folder:\n{msg}"));
    for name in SET_FILES {
        assert!(mnist_line.contains(name), "{mnist_line}");
    }
    for needle in [
        format!("spatial-gpu data fetch --data-dir {}", dir.display()),
        "By hand: download NAME.gz for NAME in train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte from".to_string(),
        data::MIRRORS.mnist[0].to_string(),
        data::MIRRORS.fashion[0].to_string(),
        format!("into {}/ and {}/", dir.join("mnist").display(), dir.join("fashion-mnist").display()),
        "SPATIAL_GPU_DATA".to_string(),
    ] {
        assert!(msg.contains(&needle), "no {needle:?} in:\n{msg}");
    }
}

#[test]
fn a_failed_download_says_it_was_tried_and_how_to_do_it_by_hand() {
    // A port nobody listens on (bound, then released) refuses the connection at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let mirrors = data::Mirrors {
        mnist: &[&closed],
        fashion: &[&closed],
        kmnist: &[],
    };
    let tmp = tempfile::tempdir().unwrap();
    let err = data::fetch(tmp.path(), &mirrors, false).unwrap_err();
    let msg = format!("{:#}", anyhow::Error::from(err));
    for needle in [
        "a download of mnist/train-images-idx3-ubyte.gz was tried from every mirror, and failed",
        &format!("{closed}train-images-idx3-ubyte.gz: "),
        "By hand: download NAME.gz for NAME in train-images-idx3-ubyte,",
        &format!("into {}/mnist/ and", tmp.path().display()),
    ] {
        assert!(msg.contains(needle), "no {needle:?} in:\n{msg}");
    }
    assert!(msg.lines().count() <= 10, "{msg}");
}

#[test]
fn digests_are_the_sha256_of_the_files() {
    let dir = cli_data_dir_sized(6, 3, 5);
    let d = data::load(dir.path()).unwrap();
    let digests = d.digests();
    assert_eq!(digests.len(), 8);
    for (i, set) in ["mnist", "fashion-mnist"].into_iter().enumerate() {
        for (j, name) in SET_FILES.iter().enumerate() {
            let (file, hex) = &digests[4 * i + j];
            assert_eq!(file, &format!("{set}/{name}"));
            let bytes = std::fs::read(dir.path().join(set).join(name)).unwrap();
            assert_eq!(hex, &sha256_hex(&bytes), "{file}");
        }
    }
}

#[test]
fn check_data_refuses_other_data_naming_the_file() {
    let data_a = Datasets::synthetic(20, 8, 4, 4, 1);
    let (model, cfg) = small_configs(InputMode::Concat, &data_a, 1, 1);
    let state = TrainState::new(Params::init(&model, 1));
    let digests = data_a.digests();
    let bytes = checkpoint::to_bytes_with_data(
        &model,
        &cfg,
        &state,
        Progress::default(),
        Extras::default(),
        Some(&digests),
    );
    let ck = checkpoint::from_bytes(&bytes, Path::new("x")).unwrap();
    let mut recorded = ck.data.clone().unwrap();
    recorded.sort();
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(recorded, sorted);
    checkpoint::check_data(&ck, &data_a).unwrap();

    // The two sets swapped: same shapes and counts, each head's data is the other's.
    let swapped = Datasets {
        tasks: vec![
            data::TaskData {
                name: "mnist".into(),
                ..data_a.tasks[1].clone()
            },
            data::TaskData {
                name: "fashion-mnist".into(),
                ..data_a.tasks[0].clone()
            },
        ],
    };
    let err = checkpoint::check_data(&ck, &swapped).unwrap_err();
    let msg = err.to_string();
    // Files are checked in the order of their names: fashion-mnist's test images come first.
    assert!(msg.starts_with("fashion-mnist/t10k-images-idx3-ubyte: "), "{msg}");
    assert_eq!(err.file, "fashion-mnist/t10k-images-idx3-ubyte");
    assert_eq!(err.expected, digests[6].1);
    assert_eq!(err.actual, digests[2].1);
    assert!(msg.contains(&err.expected) && msg.contains(&err.actual), "{msg}");
    assert!(
        msg.contains("it is the run's mnist/t10k-images-idx3-ubyte: are the two data sets swapped?"),
        "{msg}"
    );

    // Other data of the same shape: named, without the swap hint.
    let other = Datasets::synthetic(20, 8, 4, 4, 2);
    let err = checkpoint::check_data(&ck, &other).unwrap_err();
    assert!(!err.to_string().contains("swapped"), "{err}");
    assert!(err.to_string().contains("--data-dir"), "{err}");

    // A checkpoint without the record (older, or written by another tool) accepts any data.
    let old = checkpoint::to_bytes(&model, &cfg, &state, Progress::default());
    let ck = checkpoint::from_bytes(&old, Path::new("x")).unwrap();
    assert_eq!(ck.data, None);
    checkpoint::check_data(&ck, &other).unwrap();
}

#[test]
fn a_malformed_data_record_is_refused() {
    let data_a = Datasets::synthetic(20, 8, 4, 4, 1);
    let (model, cfg) = small_configs(InputMode::Concat, &data_a, 1, 1);
    let state = TrainState::new(Params::init(&model, 1));
    let bad = [("mnist/train-images-idx3-ubyte".to_string(), "xyz".to_string())];
    let bytes = checkpoint::to_bytes_with_data(
        &model,
        &cfg,
        &state,
        Progress::default(),
        Extras::default(),
        Some(&bad),
    );
    let err = checkpoint::from_bytes(&bytes, Path::new("run/model.safetensors")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("metadata `data`") && msg.contains("\"xyz\""),
        "{msg}"
    );
}
