//! Checkpoint files: what they hold, that saving is atomic (a save that fails or is cut short leaves
//! the previous checkpoint whole), that every damaged, tampered or foreign file is a clear error
//! naming the file and the fault (never a panic), and that a diverging run stops without touching
//! its last good checkpoint.

mod support;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use spatial_gpu::backend::Backend;
use spatial_gpu::checkpoint::{self, CheckpointError, Progress};
use spatial_gpu::config::{Activation, InputMode, TrainConfig};
use spatial_gpu::guard::Diverged;
use spatial_gpu::train::{self, Outcome};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use support::*;

/// A checkpoint of a small model after one epoch, in a temporary directory.
struct Saved {
    dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

fn saved_checkpoint() -> Saved {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 1, 2);
    let dir = tempfile::tempdir().unwrap();
    train_through(&model, &cfg, &data, dir.path());
    let path = train::checkpoint_path(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    Saved { dir, path, bytes }
}

/// The error `from_bytes` gives, after checking its message starts with the file's path.
fn load_err(bytes: &[u8], file: &Path) -> (CheckpointError, String) {
    let result = std::panic::catch_unwind(|| checkpoint::from_bytes(bytes, file));
    let err = match result {
        Ok(Ok(_)) => panic!("{} bytes loaded without error", bytes.len()),
        Ok(Err(e)) => e,
        Err(_) => panic!("from_bytes panicked on {} bytes", bytes.len()),
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", file.display())),
        "the message does not start with the file: {msg}"
    );
    (err, msg)
}

type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

/// Rewrites a checkpoint's tensors and metadata with `edit` and serialises it again (a tampered file
/// that is still well-formed safetensors). The checksum is left as it was unless `edit` changes it.
fn rewrite(bytes: &[u8], edit: impl FnOnce(&mut Tensors, &mut HashMap<String, String>)) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let mut tensors: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut tensors, &mut meta);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

#[test]
fn saves_every_tensor_and_key_and_loads_back_exactly() {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Mixed, &data, 2, 3);
    let dir = tempfile::tempdir().unwrap();
    let mut b = new_backend(&model, &cfg);
    let outcome = train::train(&mut b, &data, &quiet_options(dir.path()), Progress::default()).unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)));
    let ck = load_run(dir.path());
    assert_eq!(
        (ck.model, ck.train, ck.progress),
        (model.clone(), cfg, Progress { epoch: 2, batch: 0 })
    );
    assert_bits_eq(&ck.state, &b.state().unwrap(), "loaded vs trained");

    // The names and shapes docs/CHECKPOINTS.md lists, three times each.
    let bytes = std::fs::read(train::checkpoint_path(dir.path())).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut found: Vec<(String, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    found.sort();
    let s = &model.sizes; // [32, 12, 10, 10, 8, 20]
    let mut expected = Vec::new();
    for prefix in ["", "adam_m.", "adam_v."] {
        for l in 1..s.len() {
            expected.push((format!("{prefix}layer{l}.weight"), vec![s[l], s[l - 1]]));
            expected.push((format!("{prefix}layer{l}.bias"), vec![s[l]]));
        }
        for (l, &n) in s.iter().enumerate() {
            expected.push((format!("{prefix}layer{l}.position"), vec![n, 2]));
        }
    }
    expected.sort();
    assert_eq!(found, expected);
    assert!(st.tensors().iter().all(|(_, v)| v.dtype() == Dtype::F32));
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut keys: Vec<String> = header.metadata().clone().unwrap().into_keys().collect();
    keys.sort();
    let documented = [
        "adam_step",
        "batch",
        "checksum",
        "crate_version",
        "data",
        "epoch",
        "epoch_metrics",
        "format",
        "format_version",
        "model",
        "provenance",
        "train",
    ];
    assert_eq!(keys, documented);
    // The epoch's metrics line, as in metrics.jsonl (a resume restores it from here if needed).
    let metrics = std::fs::read_to_string(train::metrics_path(dir.path())).unwrap();
    assert_eq!(
        load_run(dir.path()).epoch_metrics.as_deref(),
        metrics.lines().last()
    );
}

/// The model metadata records the activation and the spatial layers; a checkpoint written before
/// either field existed (a file without them) loads as the sigmoid and layers 3,4,5.
#[test]
fn activation_and_spatial_layers_are_recorded_and_default_for_older_files() {
    let data = small_data();
    let (mut model, cfg) = small_configs(InputMode::Concat, &data, 1, 2);
    model.activation = Activation::Tanh;
    model.spatial_layers = vec![2, 3, 4, 5];
    let dir = tempfile::tempdir().unwrap();
    train_through(&model, &cfg, &data, dir.path());
    let path = train::checkpoint_path(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let recorded: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["model"]).unwrap();
    assert_eq!(recorded["activation"], "tanh");
    assert_eq!(recorded["spatial_layers"], serde_json::json!([2, 3, 4, 5]));
    assert_eq!(load_run(dir.path()).model, model);

    // The same file as an older version wrote it: neither field (and, edited, no checksum).
    let old = rewrite(&bytes, |_, m| {
        let mut model: serde_json::Value = serde_json::from_str(&m["model"]).unwrap();
        let fields = model.as_object_mut().unwrap();
        fields.remove("activation");
        fields.remove("spatial_layers");
        m.insert("model".into(), model.to_string());
        m.remove("checksum");
    });
    let ck = checkpoint::from_bytes(&old, &path).unwrap();
    assert_eq!(ck.model.activation, Activation::Sigmoid);
    assert_eq!(ck.model.spatial_layers, [3, 4, 5]);
    assert_eq!(ck.model.sizes, model.sizes);
}

// ---------------------------------------------------------------------------------------------
// Damaged and tampered files

#[test]
fn truncated_at_every_length_is_a_truncation_error() {
    let s = saved_checkpoint();
    let header_end = 8 + u64::from_le_bytes(s.bytes[..8].try_into().unwrap()) as usize;
    for cut in 0..s.bytes.len() {
        let (err, msg) = load_err(&s.bytes[..cut], &s.path);
        assert!(
            matches!(err, CheckpointError::Truncated { .. }) && msg.contains("truncated"),
            "cut at {cut} of {} (header ends at {header_end}): {msg}",
            s.bytes.len()
        );
    }
    let (_, msg) = load_err(&s.bytes[..header_end + 100], &s.path);
    assert!(
        msg.contains("the tensors need") && msg.contains("the file has 100"),
        "{msg}"
    );
    let (_, msg) = load_err(&s.bytes[..header_end - 1], &s.path);
    assert!(msg.contains("the header needs"), "{msg}");
    let (_, msg) = load_err(&[], &s.path);
    assert!(msg.contains("empty"), "{msg}");

    // Bytes appended are a fault too.
    let mut longer = s.bytes.clone();
    longer.extend_from_slice(b"junk");
    let (_, msg) = load_err(&longer, &s.path);
    assert!(msg.contains("4 unexpected bytes after the last tensor"), "{msg}");
}

#[test]
fn a_flipped_bit_anywhere_is_detected() {
    let s = saved_checkpoint();
    let header_end = 8 + u64::from_le_bytes(s.bytes[..8].try_into().unwrap()) as usize;
    let original = checkpoint::from_bytes(&s.bytes, &s.path).unwrap();
    let mut harmless = Vec::new();
    // Every byte of the length and the header, flipped two ways; every 7th byte of the tensor data.
    let positions = (0..header_end).chain((header_end..s.bytes.len()).step_by(7));
    for pos in positions {
        for mask in [0x01u8, 0x80] {
            let mut b = s.bytes.clone();
            b[pos] ^= mask;
            match std::panic::catch_unwind(|| checkpoint::from_bytes(&b, &s.path)) {
                Err(_) => panic!("panic with byte {pos} ^ {mask:#x}"),
                Ok(Err(e)) => assert!(e.to_string().starts_with(&s.path.display().to_string()), "{e}"),
                // Only a byte that changes nothing may pass: the checkpoint must be the same.
                Ok(Ok(ck)) => {
                    assert_eq!(
                        ck, original,
                        "byte {pos} ^ {mask:#x} changed the checkpoint silently"
                    );
                    harmless.push(pos);
                }
            }
        }
    }
    // The only harmless flips: a letter of the `checksum` key (the file then has no checksum, and its
    // content is intact) and the padding spaces turned into other JSON whitespace.
    let text = String::from_utf8_lossy(&s.bytes[8..header_end]).into_owned();
    for pos in harmless {
        let c = s.bytes[pos];
        let in_key = text
            .find("\"checksum\"")
            .is_some_and(|k| (8 + k + 1..8 + k + 9).contains(&pos));
        assert!(in_key || c == b' ', "a harmless flip at {pos} ({:?})", c as char);
    }
    // In the tensor data, a flip is a checksum error.
    let mut b = s.bytes.clone();
    b[header_end + 40] ^= 0x10;
    let (err, msg) = load_err(&b, &s.path);
    assert!(
        matches!(err, CheckpointError::Checksum { .. }) && msg.contains("altered or damaged"),
        "{msg}"
    );
}

#[test]
fn tampered_metadata_and_tensors_are_named() {
    let s = saved_checkpoint();
    let p = &s.path;
    // Another format version, and a file of another program.
    let b = rewrite(&s.bytes, |_, m| {
        drop(m.insert("format_version".into(), "2".into()))
    });
    let (err, msg) = load_err(&b, p);
    assert!(matches!(err, CheckpointError::Version { .. }), "{msg}");
    assert!(
        msg.contains("format version \"2\"") && msg.contains("reads version 1"),
        "{msg}"
    );
    let b = rewrite(&s.bytes, |_, m| drop(m.remove("format")));
    let (_, msg) = load_err(&b, p);
    assert!(
        msg.contains("not a spatial-gpu checkpoint") && msg.contains("missing"),
        "{msg}"
    );
    let b = rewrite(&s.bytes, |_, m| m.clear());
    let (err, _) = load_err(&b, p);
    assert!(matches!(err, CheckpointError::NotOurs { found: None, .. }));

    // Metadata that does not parse or is out of range.
    for (key, value, needle) in [
        ("adam_step", "-3", "`adam_step`"),
        ("epoch", "one", "`epoch`"),
        ("epoch", "99", "more than the run's 1"),
        ("model", "{\"sizes\": [3]}", "`model`"),
        ("train", "{}", "`train`"),
    ] {
        let b = rewrite(&s.bytes, |_, m| drop(m.insert(key.into(), value.into())));
        let (err, msg) = load_err(&b, p);
        assert!(
            matches!(err, CheckpointError::Metadata { .. }) && msg.contains(needle),
            "{key}={value}: {msg}"
        );
    }
    let b = rewrite(&s.bytes, |_, m| drop(m.remove("adam_step")));
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("`adam_step` is missing"), "{msg}");
    // A model config that fails validation (a spatial layer that does not exist).
    let b = rewrite(&s.bytes, |_, m| {
        let mut model: serde_json::Value = serde_json::from_str(&m["model"]).unwrap();
        model["spatial_layers"] = serde_json::json!([7]);
        m.insert("model".into(), model.to_string());
    });
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("`model`") && msg.contains("layer 7"), "{msg}");

    // A tensor of another shape, a missing one, one of another dtype, an extra one.
    let b = rewrite(&s.bytes, |t, _| {
        let w = t.iter_mut().find(|x| x.0 == "layer2.weight").unwrap();
        w.2 = vec![w.2[1], w.2[0]];
    });
    let (_, msg) = load_err(&b, p);
    assert!(
        msg.contains("`layer2.weight` has shape [12, 10], expected [10, 12]"),
        "{msg}"
    );
    let b = rewrite(&s.bytes, |t, _| t.retain(|x| x.0 != "adam_v.layer0.position"));
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("`adam_v.layer0.position` is missing"), "{msg}");
    let b = rewrite(&s.bytes, |t, _| {
        let x = t.iter_mut().find(|x| x.0 == "layer3.bias").unwrap();
        x.1 = Dtype::I32;
    });
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("`layer3.bias` has dtype I32"), "{msg}");
    let b = rewrite(&s.bytes, |t, _| {
        t.push(("layer9.weight".into(), Dtype::F32, vec![1], vec![0; 4]))
    });
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("unexpected: layer9.weight"), "{msg}");

    // Metadata that claims another model size than the tensors hold.
    let b = rewrite(&s.bytes, |_, m| {
        let mut model: serde_json::Value = serde_json::from_str(&m["model"]).unwrap();
        model["sizes"][1] = serde_json::json!(13);
        m.insert("model".into(), model.to_string());
    });
    let (_, msg) = load_err(&b, p);
    assert!(
        msg.contains("`layer1.weight` has shape [12, 32], expected [13, 32]"),
        "{msg}"
    );
    // A huge model claimed by the metadata: refused before anything of that size is allocated,
    // by the size limit or, under it (200 M weights, 2.4 GB with the moments), by the tensors.
    let huge = |sizes: serde_json::Value| {
        rewrite(&s.bytes, |_, m| {
            let mut model: serde_json::Value = serde_json::from_str(&m["model"]).unwrap();
            model["sizes"] = sizes;
            model["spatial_layers"] = serde_json::json!([2]);
            m.insert("model".into(), model.to_string());
        })
    };
    let (_, msg) = load_err(
        &huge(serde_json::json!([4_000_000_000u64, 4_000_000_000u64, 20])),
        p,
    );
    assert!(
        msg.contains("layer 0 has 4000000000 neurons, more than the 1048576 this program accepts"),
        "{msg}"
    );
    let (_, msg) = load_err(&huge(serde_json::json!([1_000_000, 1_000, 20])), p);
    assert!(msg.contains("more than 268435456 weights"), "{msg}");
    let (_, msg) = load_err(&huge(serde_json::json!([20_000, 10_000, 20])), p);
    assert!(
        msg.contains("`layer1.weight` has shape [12, 32], expected [10000, 20000]"),
        "{msg}"
    );

    // Values changed in a well-formed file: only the checksum tells.
    let b = rewrite(&s.bytes, |t, _| {
        let x = t.iter_mut().find(|x| x.0 == "layer1.bias").unwrap();
        x.3[0] ^= 1;
    });
    let (err, _) = load_err(&b, p);
    assert!(matches!(err, CheckpointError::Checksum { .. }));
    let b = rewrite(&s.bytes, |_, m| drop(m.insert("batch".into(), "3".into())));
    let (err, _) = load_err(&b, p);
    assert!(matches!(err, CheckpointError::Checksum { .. }));
    // Without a checksum (a file written by other tools) the same values load.
    let b = rewrite(&s.bytes, |_, m| drop(m.remove("checksum")));
    assert_eq!(
        checkpoint::from_bytes(&b, p).unwrap(),
        checkpoint::from_bytes(&s.bytes, p).unwrap()
    );
}

#[test]
fn files_that_are_not_checkpoints_are_named_as_such() {
    let p = Path::new("/some/where/model.safetensors");
    let idx = [0u8, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28];
    for (what, bytes) in [
        ("text", b"hello, this is not a checkpoint\n".to_vec()),
        ("IDX images", idx.to_vec()),
        ("PNG", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        ("JSON", b"{\"format\": \"spatial-gpu\"}".to_vec()),
    ] {
        let (err, msg) = load_err(&bytes, p);
        assert!(
            matches!(err, CheckpointError::NotSafetensors { .. }),
            "{what}: {msg}"
        );
        assert!(msg.contains("not a safetensors file"), "{what}: {msg}");
    }
    // A header length past the 100 MB safetensors allows.
    let mut b = (200_000_000u64).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("header length of 200000000"), "{msg}");
    // Well-formed safetensors of another program.
    let data = [0u8; 8];
    let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
    let b = safetensors::serialize([("weight", view)], None).unwrap();
    let (_, msg) = load_err(&b, p);
    assert!(msg.contains("not a spatial-gpu checkpoint"), "{msg}");
    // Valid JSON header that safetensors rejects.
    let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0; 4]);
    let (err, msg) = load_err(&b, p);
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{msg}");
    // And a file that is not there.
    let err = checkpoint::load(Path::new("/nonexistent/model.safetensors")).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/model.safetensors: "),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Atomic saving

#[test]
fn a_save_that_fails_part_way_leaves_the_previous_checkpoint() {
    let s = saved_checkpoint();
    let old = s.bytes.clone();
    let new = checkpoint::to_bytes(
        &load_run(s.dir.path()).model,
        &load_run(s.dir.path()).train,
        &load_run(s.dir.path()).state,
        Progress { epoch: 1, batch: 0 },
    );
    // The disk fills after half of the new file was written.
    let err = checkpoint::write_atomic_with(&s.path, |f| {
        std::io::Write::write_all(f, &new[..new.len() / 2])?;
        Err(std::io::Error::from_raw_os_error(28))
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&s.path.display().to_string()) && msg.contains("No space left on device"),
        "{msg}"
    );
    assert!(
        msg.contains("previous version of the file, if any, is left as it was"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&s.path).unwrap(), old, "the checkpoint changed");
    assert_eq!(
        file_names(s.dir.path()),
        ["metrics.jsonl", "model.safetensors", "summary.json"],
        "a temp file remains"
    );

    // The temporary file's name is taken by a directory: it cannot be created.
    let tmp = checkpoint::temp_path(&s.path);
    std::fs::create_dir(&tmp).unwrap();
    let err = checkpoint::write_atomic(&s.path, &new).unwrap_err();
    assert!(
        err.to_string().starts_with(&s.path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&s.path).unwrap(), old);
    std::fs::remove_dir(&tmp).unwrap();
    checkpoint::load(&s.path).unwrap();
}

/// A process killed during a save leaves a partial temporary file next to the checkpoint: the
/// checkpoint itself is the previous one, whole; the next save and a resume are not disturbed, and
/// the resume removes the leftover.
#[test]
fn a_save_cut_short_by_a_crash_leaves_the_previous_checkpoint() {
    let s = saved_checkpoint();
    let stale = s.dir.path().join(".model.safetensors.tmp-4000000");
    std::fs::write(&stale, &s.bytes[..s.bytes.len() / 3]).unwrap();
    let before = checkpoint::load(&s.path).unwrap();
    assert_eq!(std::fs::read(&s.path).unwrap(), s.bytes);
    // Continue training one more epoch from it, which saves over it.
    let (mut b, start) = resumed_backend(s.dir.path(), Some(2));
    train::train(&mut b, &small_data(), &quiet_options(s.dir.path()), start).unwrap();
    let after = checkpoint::load(&s.path).unwrap();
    assert_eq!(after.progress, Progress { epoch: 2, batch: 0 });
    assert_ne!(after.state.step, before.state.step);
    assert_eq!(checkpoint::remove_stale_temps(&s.path), 1);
    assert!(!stale.exists());
}

/// Writing into a directory that became read-only (a remounted file system): the save fails with the
/// file and the reason, the previous checkpoint stays; `--resume` into it is refused before training.
#[test]
fn read_only_directory() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let data = cli_data_dir(4);
    let run = fs.path().join("run");
    assert_success(
        &train_cli(data.path(), &["--epochs", "1", "--out", run.to_str().unwrap()]),
        "1 epoch",
    );
    let ckpt = train::checkpoint_path(&run);
    let old = std::fs::read(&ckpt).unwrap();
    fs.set_read_only(true);
    let ck = checkpoint::load(&ckpt).unwrap();
    let err = checkpoint::save(
        &ckpt,
        &ck.model,
        &ck.train,
        &ck.state,
        Progress { epoch: 1, batch: 0 },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("Read-only file system") && err.to_string().contains("model.safetensors"),
        "{err}"
    );
    assert_fails_with(
        &resume_cli(&run, data.path(), &["--epochs", "2"]),
        &[
            "--resume",
            "cannot create a file in the directory",
            "Read-only file system",
        ],
    );
    let out = train_cli(
        data.path(),
        &["--epochs", "1", "--out", fs.path().join("new").to_str().unwrap()],
    );
    assert_fails_with(&out, &["--out", "new", "Read-only file system"]);
    fs.set_read_only(false);
    assert_eq!(std::fs::read(&ckpt).unwrap(), old);
}

/// A full disk while saving: the run stops with an error naming the file and the fault, the
/// previous checkpoint is untouched, and once there is space again the run resumes and ends exactly
/// where a run that never hit the full disk ends.
#[test]
fn full_disk_keeps_the_previous_checkpoint() {
    let fs = match Tmpfs::mount("2m") {
        Ok(fs) => fs,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let data = cli_data_dir(5);
    let run = fs.path().join("run");
    assert_success(
        &train_cli(
            data.path(),
            &["--epochs", "1", "--seed", "3", "--out", run.to_str().unwrap()],
        ),
        "1 epoch",
    );
    let ckpt = train::checkpoint_path(&run);
    let old = std::fs::read(&ckpt).unwrap();
    // Fill the file system to the last byte: a resume is refused before any work.
    let filler = fs.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    {
        use std::io::Write;
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..1]).is_ok() {}
    }
    let out = resume_cli(&run, data.path(), &["--epochs", "2"]);
    assert_fails_with(
        &out,
        &[
            "--resume",
            "cannot create a file in the directory",
            "No space left on device",
        ],
    );
    // Leave 64 KiB: room for the metrics, not for a checkpoint. The run fails at its first save.
    f.set_len(f.metadata().unwrap().len() - 65536).unwrap();
    drop(f);
    let out = resume_cli(&run, data.path(), &["--epochs", "2"]);
    // The history is saved just before the checkpoint, so the full disk may stop either save.
    let msg = assert_fails_with(&out, &["No space left on device", "left as it was"]);
    assert!(
        msg.contains("history.safetensors")
            || (msg.contains("model.safetensors") && msg.contains("end of epoch 2")),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        old,
        "the previous checkpoint changed"
    );
    // No temporary file is left behind: only the run's own files.
    assert_eq!(
        file_names(&run),
        [
            "curves.png",
            "curves.svg",
            "history.safetensors",
            "metrics.csv",
            "metrics.jsonl",
            "model.safetensors",
            "summary.json"
        ]
    );
    assert_eq!(load_run(&run).progress, Progress { epoch: 1, batch: 0 });

    std::fs::remove_file(&filler).unwrap();
    assert_success(
        &resume_cli(&run, data.path(), &["--epochs", "2"]),
        "resume with space again",
    );
    let straight = tempfile::tempdir().unwrap();
    let o = train_cli(
        data.path(),
        &[
            "--epochs",
            "2",
            "--seed",
            "3",
            "--out",
            straight.path().join("r").to_str().unwrap(),
        ],
    );
    assert_success(&o, "straight");
    assert_bits_eq(
        &load_run(&run).state,
        &load_run(&straight.path().join("r")).state,
        "after a full disk",
    );
    assert_eq!(
        metrics_without_timing(&run),
        metrics_without_timing(&straight.path().join("r"))
    );
}

// ---------------------------------------------------------------------------------------------
// Divergence

/// A learning rate that blows up, on the command line: the run stops at the step where a loss or
/// gradient first stops being finite, names it, exits 1, and the checkpoint of the step before is
/// intact.
#[test]
fn exploding_learning_rate_stops_with_the_step_layer_and_quantity() {
    let data = cli_data_dir(6);
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = train_cli(
        data.path(),
        &[
            "--epochs",
            "3",
            "--lr",
            "1e20",
            "--checkpoint-every",
            "1",
            "--out",
            run.to_str().unwrap(),
        ],
    );
    let msg = assert_fails_with(
        &out,
        &["training diverged at step", "is not finite", "try a smaller --lr"],
    );
    let step: u64 = msg
        .split("diverged at step ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(msg.contains(&format!("(epoch 1, batch {step} of 6)")), "{msg}");
    assert!(msg.contains("layer "), "the message names a layer: {msg}");
    let ck = load_run(&run);
    assert_eq!(
        ck.state.step,
        step - 1,
        "the last good checkpoint is that of the step before: {msg}"
    );
    assert!(
        msg.contains(&format!(
            "The last good checkpoint, {}",
            train::checkpoint_path(&run).display()
        )),
        "{msg}"
    );
    for v in ck
        .state
        .params
        .data
        .iter()
        .chain(&ck.state.adam_m)
        .chain(&ck.state.adam_v)
    {
        assert!(v.is_finite());
    }
}

/// The same through the library, with a run whose first epoch went well: the CPU backend reports the
/// exact step, and the checkpoint file is byte for byte the one of the good epoch.
#[test]
fn cpu_guard_reports_the_exact_step_and_keeps_the_checkpoint() {
    let s = saved_checkpoint();
    let ck = load_run(s.dir.path());
    let data = small_data();
    // A learning rate that blows the positions up; a transport weight whose gradient's square
    // overflows at once.
    for (lr, alpha, needle) in [
        (1e20f32, None, "the transport cost T("),
        (
            0.01,
            Some(1e37f32),
            "weight gradient's square (Adam's second moment)",
        ),
    ] {
        let cfg = TrainConfig {
            lr,
            epochs: 3,
            ..ck.train.clone()
        };
        let mut model = ck.model.clone();
        if let Some(a) = alpha {
            model.alpha = a;
        }
        let mut b = spatial_gpu::cpu::CpuBackend::new(model, cfg, ck.state.clone()).unwrap();
        let mut opts = quiet_options(s.dir.path());
        opts.checkpoint_every = 1000;
        let err = train::train(&mut b, &data, &opts, ck.progress).unwrap_err();
        let d = err
            .downcast_ref::<Diverged>()
            .unwrap_or_else(|| panic!("not a Diverged error: {err:#}"));
        assert!(d.step > ck.state.step && d.since.is_none(), "{d}");
        // A bad loss or gradient is never applied; a bad update (found after it) was.
        assert!(
            b.steps() == d.step - 1 || msg_of(d).contains("after the Adam update"),
            "{d}"
        );
        let msg = d.to_string();
        assert!(
            msg.contains("layer")
                && msg.contains("(epoch 2, batch")
                && msg.contains("saved at the end of epoch 1), is left as it was"),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg}");
        eprintln!("lr {lr}, alpha {alpha:?}: {msg}");
        assert_eq!(std::fs::read(&s.path).unwrap(), s.bytes, "the checkpoint changed");
    }
}

fn msg_of(d: &Diverged) -> String {
    d.to_string()
}

/// A backend without a per-step guard (the GPU's) that goes bad: the state is checked before every
/// save and at every epoch's end, so no bad state is ever saved and the error says between which
/// steps it happened.
#[test]
fn unguarded_backend_is_caught_before_saving_and_at_epoch_end() {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 3, 4);
    // Poisoned at a step where a periodic save follows at once (every 2 steps).
    let dir = tempfile::tempdir().unwrap();
    let mut b = Wrapped::new(new_backend(&model, &cfg));
    b.poison_at = Some(12);
    let mut opts = quiet_options(dir.path());
    opts.checkpoint_every = 2;
    let err = train::train(&mut b, &data, &opts, Progress::default()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("training diverged between steps 11 and 12 (found when saving the checkpoint, epoch 2, batch 4 of 8): layer 2 weight is not finite."), "{msg}");
    assert!(msg.contains("(saved in epoch 2 after batch 2)"), "{msg}");
    assert_eq!(load_run(dir.path()).state.step, 10);

    // Poisoned at an epoch's last step, no periodic saves: caught at the epoch's end.
    let dir = tempfile::tempdir().unwrap();
    let mut b = Wrapped::new(new_backend(&model, &cfg));
    b.poison_at = Some(16);
    let err = train::train(&mut b, &data, &quiet_options(dir.path()), Progress::default()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.starts_with("training diverged between steps 9 and 16 (found at the end of epoch 2): layer 2 weight is not finite"), "{msg}");
    let ck = load_run(dir.path());
    assert_eq!((ck.progress, ck.state.step), (Progress { epoch: 1, batch: 0 }, 8));
    assert_eq!(
        metrics_without_timing(dir.path()).len(),
        1,
        "no metrics line for the bad epoch"
    );
}
