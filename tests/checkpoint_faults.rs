//! Faults a checkpoint file can carry past the framing checks of `tests/checkpoint.rs`: non-finite
//! parameters (with or without a checksum), absurd sizes in its configuration, a planted symlink at
//! the temporary file's name; and the numbers docs/CHECKPOINTS.md gives for the paper's network.

mod support;

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;
use spatial_gpu::checkpoint::{self, CheckpointError, Progress};
use spatial_gpu::config::{InputMode, ModelConfig, TrainConfig};
use spatial_gpu::model::{Params, TrainState};
use std::collections::HashMap;
use std::path::Path;
use support::*;

/// A small model's fresh state, its configurations, and the flat index of `layer{l}.position[0]`.
fn small_state() -> (ModelConfig, TrainConfig, TrainState) {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 2, 3);
    let state = TrainState::new(Params::init(&model, cfg.seed));
    (model, cfg, state)
}

/// `bytes` re-serialised without the `checksum` metadata key, as a file written by another tool.
fn without_checksum(bytes: &[u8]) -> Vec<u8> {
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta: HashMap<String, String> = header.metadata().clone().unwrap();
    assert!(meta.remove(checkpoint::CHECKSUM_KEY).is_some());
    let st = SafeTensors::deserialize(bytes).unwrap();
    let views: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                TensorView::new(v.dtype(), v.shape().to_vec(), v.data()).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn load_message(bytes: &[u8]) -> String {
    match checkpoint::from_bytes(bytes, Path::new("run/model.safetensors")) {
        Ok(_) => panic!("loaded without error"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("run/model.safetensors: "), "{msg}");
            msg
        }
    }
}

#[test]
fn non_finite_values_are_refused_naming_the_tensor() {
    let (model, cfg, state) = small_state();
    let layout = state.params.layout.clone();
    let cases: [(&str, usize, f32, &str); 4] = [
        (
            "",
            layout.positions[3].start + 1,
            f32::INFINITY,
            "layer3.position",
        ),
        ("", layout.weights[0].start + 5, f32::NAN, "layer1.weight"),
        (
            "adam_m.",
            layout.biases[4].start,
            f32::NEG_INFINITY,
            "adam_m.layer5.bias",
        ),
        (
            "adam_v.",
            layout.positions[0].start,
            f32::NAN,
            "adam_v.layer0.position",
        ),
    ];
    for (prefix, at, value, name) in cases {
        let mut s = state.clone();
        match prefix {
            "" => s.params.data[at] = value,
            "adam_m." => s.adam_m[at] = value,
            _ => s.adam_v[at] = value,
        }
        let bytes = checkpoint::to_bytes(&model, &cfg, &s, Progress::default());
        for (what, b) in [
            ("with its checksum", bytes.clone()),
            ("without a checksum", without_checksum(&bytes)),
        ] {
            let msg = load_message(&b);
            assert!(msg.contains(&format!("tensor `{name}`")), "{what}: {msg}");
            assert!(
                msg.contains("not finite") && msg.contains(&format!("{value}")),
                "{what}: {msg}"
            );
        }
    }
    // The untouched state still loads, with and without its checksum.
    let bytes = checkpoint::to_bytes(&model, &cfg, &state, Progress::default());
    for b in [bytes.clone(), without_checksum(&bytes)] {
        let ck = checkpoint::from_bytes(&b, Path::new("x")).unwrap();
        assert_eq!(ck.state, state);
    }
}

#[test]
fn huge_sizes_in_the_configuration_are_refused_before_allocating() {
    let (model, cfg, state) = small_state();
    // Each case: a change to the stored configuration, and what the message must name.
    type Change = fn(&mut ModelConfig, &mut TrainConfig);
    let cases: [(Change, &[&str]); 5] = [
        (
            |_, t| t.batch_size = 1_000_000_000,
            &["--batch-size", "1000000000", "65536"],
        ),
        (
            |_, t| t.epochs = usize::MAX,
            &["--epochs", "18446744073709551615", "1000000"],
        ),
        (|m, _| m.sizes[2] = 1 << 21, &["--hidden", "2097152", "1048576"]),
        (
            |m, _| m.sizes = vec![4; 100],
            &["model.sizes", "100 layers", "64"],
        ),
        (|m, _| m.sizes[0] = 0, &["model.sizes", "layer 0 has 0 neurons"]),
    ];
    for (change, needles) in cases {
        let (mut m, mut t) = (model.clone(), cfg.clone());
        change(&mut m, &mut t);
        // The state stays the small model's: only the metadata claims the size.
        let bytes = checkpoint::to_bytes(&m, &t, &state, Progress::default());
        let msg = load_message(&bytes);
        for n in needles {
            assert!(msg.contains(n), "{msg} does not mention {n}");
        }
    }
}

#[test]
fn split_refuses_a_checkpoint_with_a_huge_batch_size() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert_success(
        &train_cli(data.path(), &["--epochs", "1", "--out", run.to_str().unwrap()]),
        "a one-epoch run",
    );
    let path = run.join(checkpoint::FILE_NAME);
    let ck = checkpoint::load(&path).unwrap();
    let mut cfg = ck.train.clone();
    cfg.batch_size = 1_000_000_000;
    std::fs::write(
        &path,
        checkpoint::to_bytes(&ck.model, &cfg, &ck.state, ck.progress),
    )
    .unwrap();
    let o = bin()
        .args(["split", "--backend", "cpu", "--model"])
        .arg(&run)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert_fails_with(&o, &["model.safetensors", "--batch-size", "1000000000"]);
}

#[test]
fn split_refuses_a_checkpoint_with_an_infinite_position() {
    let data = cli_data_dir(1);
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert_success(
        &train_cli(data.path(), &["--epochs", "1", "--out", run.to_str().unwrap()]),
        "a one-epoch run",
    );
    let path = run.join(checkpoint::FILE_NAME);
    let mut ck = checkpoint::load(&path).unwrap();
    let at = ck.state.params.layout.positions[3].start;
    ck.state.params.data[at] = f32::INFINITY;
    let bytes = checkpoint::to_bytes(&ck.model, &ck.train, &ck.state, ck.progress);
    std::fs::write(&path, without_checksum(&bytes)).unwrap();
    for cmd in ["split", "figure"] {
        let mut c = bin();
        c.arg(cmd).arg("--model").arg(&run);
        if cmd == "split" {
            c.args(["--backend", "cpu", "--data-dir"]).arg(data.path());
        } else {
            c.arg("--out").arg(tmp.path().join("figures"));
        }
        let o = c.output().unwrap();
        assert_fails_with(&o, &["model.safetensors", "layer3.position", "not finite"]);
    }
}

#[cfg(unix)]
#[test]
fn save_never_follows_a_symlink_planted_at_the_temporary_name() {
    let (model, cfg, state) = small_state();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(checkpoint::FILE_NAME);
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, checkpoint::temp_path(&path)).unwrap();
    checkpoint::save(&path, &model, &cfg, &state, Progress::default()).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert_eq!(checkpoint::load(&path).unwrap().state, state);
    // The planted link is gone (removed, not followed), and no temporary file is left.
    assert_eq!(file_names(dir.path()), [checkpoint::FILE_NAME, "victim"]);

    // A dangling link too: nothing is created where it points.
    let elsewhere = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, checkpoint::temp_path(&path)).unwrap();
    checkpoint::save(&path, &model, &cfg, &state, Progress::default()).unwrap();
    assert!(!elsewhere.exists());
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none").join(checkpoint::FILE_NAME);
    let err = checkpoint::load(&missing).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }));
    let text = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    assert!(text.starts_with(&missing.display().to_string()), "{text}");

    let (model, cfg, state) = small_state();
    let err = checkpoint::save(&missing, &model, &cfg, &state, Progress::default()).unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    assert!(text.contains("could not save"), "{text}");
}

/// docs/CHECKPOINTS.md: "the same N names under `adam_m.` and under `adam_v.`: M tensors".
#[test]
fn the_docs_count_the_tensors_of_the_papers_network() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CHECKPOINTS.md")).unwrap();
    let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let number_before = |marker: &str| -> usize {
        let at = doc
            .find(marker)
            .unwrap_or_else(|| panic!("docs/CHECKPOINTS.md lacks {marker:?}"));
        let word = doc[..at].split_whitespace().last().unwrap();
        word.trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or_else(|_| panic!("{word:?} before {marker:?} is not a number"))
    };
    let names = number_before("names under `adam_m.` and under `adam_v.`");
    let total = number_before("tensors. Outputs");

    let model = ModelConfig::paper(InputMode::Concat.input_dim(&[784, 784]));
    let state = TrainState::new(Params::init(&model, 1));
    let bytes = checkpoint::to_bytes(&model, &TrainConfig::default(), &state, Progress::default());
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let real = st.names();
    let plain = real.iter().filter(|n| !n.starts_with("adam_")).count();
    assert_eq!(
        (names, total),
        (plain, real.len()),
        "docs/CHECKPOINTS.md vs a real checkpoint"
    );
    assert_eq!(st.tensor("layer1.weight").unwrap().shape(), [128, 1568]);
    assert_eq!(st.tensor("layer5.position").unwrap().shape(), [20, 2]);
}
