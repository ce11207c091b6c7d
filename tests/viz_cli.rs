//! `train --tensorboard`, `plot`, `animate` and `view` from the command line on a tiny made-up run:
//! the files exist and are not trivial, and bad input is named in the error.

mod support;

use spatial_gpu::tensorboard::masked_crc32c;
use support::*;

/// The payloads of a TFRecord file, with both CRCs checked.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[i + 8..i + 12].try_into().unwrap());
        assert_eq!(
            len_crc,
            masked_crc32c(&bytes[i..i + 8]),
            "length CRC of the record at {i}"
        );
        let data = &bytes[i + 12..i + 12 + len];
        let crc = u32::from_le_bytes(bytes[i + 12 + len..i + 16 + len].try_into().unwrap());
        assert_eq!(crc, masked_crc32c(data), "data CRC of the record at {i}");
        out.push(data.to_vec());
        i += 16 + len;
    }
    out
}

#[test]
fn train_writes_history_tensorboard_and_curves_and_the_viz_commands_draw_them() {
    let data = cli_data_dir(3);
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("run");
    let tb = runs.path().join("tb");
    let o = train_cli(
        data.path(),
        &[
            "--epochs",
            "2",
            "--out",
            run.to_str().unwrap(),
            "--tensorboard",
            tb.to_str().unwrap(),
        ],
    );
    assert_success(&o, "train --tensorboard");
    for f in ["history.safetensors", "curves.png", "curves.svg", "metrics.csv"] {
        assert!(run.join(f).is_file(), "train wrote no {f}");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and one line per epoch:\n{csv}");

    let events: Vec<_> = std::fs::read_dir(&tb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let recs = records(&std::fs::read(&events[0]).unwrap());
    // The file version, the configuration, then the scalars of two epochs.
    assert!(recs.len() > 4, "{} records", recs.len());
    let all: Vec<u8> = recs.concat();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("brain.Event:2"), "no file version event");
    assert!(text.contains("accuracy"), "no accuracy scalar");

    std::fs::remove_file(run.join("curves.png")).unwrap();
    assert_success(
        &bin().args(["plot", "--model"]).arg(&run).output().unwrap(),
        "plot",
    );
    assert!(std::fs::metadata(run.join("curves.png")).unwrap().len() > 1000);

    let gif = runs.path().join("a.gif");
    let o = bin()
        .args(["animate", "--no-mp4", "--model"])
        .arg(&run)
        .arg("--out")
        .arg(&gif)
        .output()
        .unwrap();
    assert_success(&o, "animate");
    let bytes = std::fs::read(&gif).unwrap();
    assert!(
        bytes.starts_with(b"GIF89a") && bytes.len() > 1000,
        "{} bytes",
        bytes.len()
    );

    let o = bin().args(["view", "--model"]).arg(&run).output().unwrap();
    assert_success(&o, "view");
    let html = std::fs::read_to_string(run.join("viewer.html")).unwrap();
    assert!(
        html.contains("<html") && html.len() > 10_000,
        "{} bytes",
        html.len()
    );
    let drops = |html: &str| -> String {
        let at = html
            .find("\"accuracyDrop\":[")
            .expect("the viewer's data has accuracyDrop");
        let rest = &html[at + "\"accuracyDrop\":[".len()..];
        rest[..rest.find(']').unwrap()].to_string()
    };
    assert!(
        !drops(&html).contains('"'),
        "no drops without --accuracy-drop: {}",
        drops(&html)
    );

    // --accuracy-drop measures each split neuron's drop on the run's own test set.
    let o = bin()
        .args(["view", "--accuracy-drop", "--model"])
        .arg(&run)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_success(&o, "view --accuracy-drop");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("measured the accuracy drop of"), "{stdout}");
    let html = std::fs::read_to_string(run.join("viewer.html")).unwrap();
    assert!(
        drops(&html).contains('"'),
        "base64 drops for the split layers: {}",
        drops(&html)
    );
    // Other data than the run's is refused by name.
    let other = cli_data_dir(4);
    let o = bin()
        .args(["view", "--accuracy-drop", "--model"])
        .arg(&run)
        .arg("--data-dir")
        .arg(other.path())
        .output()
        .unwrap();
    assert_fails_with(&o, &["--data-dir", "not the data"]);
}

#[test]
fn viz_commands_name_the_bad_directory_or_option() {
    let empty = tempfile::tempdir().unwrap();
    for cmd in ["animate", "view"] {
        let o = bin().args([cmd, "--model"]).arg(empty.path()).output().unwrap();
        assert_fails_with(&o, &["--model", "history.safetensors"]);
    }
    let o = bin().args(["plot", "--model", "/no/such/run"]).output().unwrap();
    assert_fails_with(&o, &["--model /no/such/run", "no such directory"]);
    let o = bin()
        .args(["animate", "--fps", "0", "--model"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert_fails_with(&o, &["--fps 0"]);
}
