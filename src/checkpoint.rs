//! Checkpoints in safetensors: everything needed to evaluate a model or resume its training.
//!
//! Tensors (all `F32`, row-major), for each layer `l`:
//! - `layer{l}.weight` `(N_l, N_{l-1})` and `layer{l}.bias` `(N_l)` for `l = 1..=L`;
//! - `layer{l}.position` `(N_l, 2)` for `l = 0..=L`;
//! - the same names prefixed `adam_m.` and `adam_v.` for Adam's moments.
//!
//! Metadata (strings): `format` = `spatial-gpu`, `format_version`, `model` and `train` (the
//! configurations as JSON), `adam_step`, `epoch` (epochs finished), `batch` (batches finished in the
//! current epoch), `crate_version`.
//!
//! Saving writes a temporary file in the same directory, syncs it, renames it over the old file and
//! syncs the directory, so a crash at any instant leaves either the old or the new checkpoint whole.

use crate::config::{ModelConfig, TrainConfig};
use crate::model::{Layout, Params, TrainState};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "spatial-gpu";
/// Bumped whenever the tensor names, layout or metadata change incompatibly.
pub const FORMAT_VERSION: u32 = 1;
/// The checkpoint's file name inside a run directory.
pub const FILE_NAME: &str = "model.safetensors";

/// Where a run stands: epochs finished, and batches finished in the epoch under way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub epoch: usize,
    pub batch: usize,
}

/// A loaded checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub state: TrainState,
    pub progress: Progress,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{file}: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{file}: not a readable safetensors file ({detail}); it may be truncated or corrupted")]
    Corrupt { file: PathBuf, detail: String },
    #[error("{file}: not a spatial-gpu checkpoint (metadata `format` is {found:?})")]
    NotOurs { file: PathBuf, found: Option<String> },
    #[error("{file}: checkpoint format version {found} is not supported by this build (which reads version {FORMAT_VERSION})")]
    Version { file: PathBuf, found: String },
    #[error("{file}: metadata `{key}` is missing or invalid: {detail}")]
    Metadata { file: PathBuf, key: String, detail: String },
    #[error("{file}: tensor `{name}` {detail}")]
    Tensor { file: PathBuf, name: String, detail: String },
}

fn names(layout: &Layout) -> Vec<(String, std::ops::Range<usize>, Vec<usize>)> {
    let s = &layout.sizes;
    let mut out = Vec::new();
    for l in 1..s.len() {
        out.push((format!("layer{l}.weight"), layout.weights[l - 1].clone(), vec![s[l], s[l - 1]]));
        out.push((format!("layer{l}.bias"), layout.biases[l - 1].clone(), vec![s[l]]));
    }
    for (l, &n) in s.iter().enumerate() {
        out.push((format!("layer{l}.position"), layout.positions[l].clone(), vec![n, 2]));
    }
    out
}

/// Serialises a checkpoint to bytes.
pub fn to_bytes(model: &ModelConfig, train: &TrainConfig, state: &TrainState, progress: Progress) -> Vec<u8> {
    let layout = &state.params.layout;
    let mut owned: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    for (name, range, shape) in names(layout) {
        owned.push((name.clone(), shape.clone(), &state.params.data[range.clone()]));
        owned.push((format!("adam_m.{name}"), shape.clone(), &state.adam_m[range.clone()]));
        owned.push((format!("adam_v.{name}"), shape, &state.adam_v[range]));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(name, shape, data)| {
            let bytes: &[u8] = bytemuck::cast_slice(data);
            (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).expect("shape matches data"))
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    meta.insert("crate_version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    meta.insert("model".to_string(), serde_json::to_string(model).expect("config serialises"));
    meta.insert("train".to_string(), serde_json::to_string(train).expect("config serialises"));
    meta.insert("adam_step".to_string(), state.step.to_string());
    meta.insert("epoch".to_string(), progress.epoch.to_string());
    meta.insert("batch".to_string(), progress.batch.to_string());
    safetensors::serialize(views, Some(meta)).expect("safetensors serialisation of in-memory tensors")
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// On any error the temporary file is removed and the old file at `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let io = |source| CheckpointError::Io { file: path.to_path_buf(), source };
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Saves a checkpoint atomically (see [`write_atomic`]).
pub fn save(
    path: &Path,
    model: &ModelConfig,
    train: &TrainConfig,
    state: &TrainState,
    progress: Progress,
) -> Result<(), CheckpointError> {
    write_atomic(path, &to_bytes(model, train, state, progress))
}

/// Loads and checks a checkpoint file.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io { file: path.to_path_buf(), source })?;
    from_bytes(&bytes, path)
}

/// Parses and checks checkpoint bytes; `file` is only used in error messages. Never panics.
pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<Checkpoint, CheckpointError> {
    let file = file.to_path_buf();
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| CheckpointError::Corrupt { file: file.clone(), detail: e.to_string() })?;
    let tensors =
        SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Corrupt { file: file.clone(), detail: e.to_string() })?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| -> Result<&String, CheckpointError> {
        meta.get(key).ok_or_else(|| CheckpointError::Metadata {
            file: file.clone(),
            key: key.to_string(),
            detail: "missing".into(),
        })
    };
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(CheckpointError::NotOurs { file, found: meta.get("format").cloned() });
    }
    let version = get("format_version")?;
    if version != &FORMAT_VERSION.to_string() {
        return Err(CheckpointError::Version { file, found: version.clone() });
    }
    let bad = |key: &str, detail: String| CheckpointError::Metadata { file: file.clone(), key: key.to_string(), detail };
    let model: ModelConfig = serde_json::from_str(get("model")?).map_err(|e| bad("model", e.to_string()))?;
    let train: TrainConfig = serde_json::from_str(get("train")?).map_err(|e| bad("train", e.to_string()))?;
    model.validate().map_err(|e| bad("model", e.to_string()))?;
    train.validate().map_err(|e| bad("train", e.to_string()))?;
    let int = |key: &str| -> Result<u64, CheckpointError> {
        get(key)?.parse::<u64>().map_err(|e| bad(key, e.to_string()))
    };
    let step = int("adam_step")?;
    let progress = Progress { epoch: int("epoch")? as usize, batch: int("batch")? as usize };

    let layout = Layout::new(&model.sizes);
    let mut params = Params::zeros(&model.sizes);
    let mut adam_m = vec![0.0; layout.len];
    let mut adam_v = vec![0.0; layout.len];
    for (name, range, shape) in names(&layout) {
        for (prefix, dest) in [("", &mut params.data), ("adam_m.", &mut adam_m), ("adam_v.", &mut adam_v)] {
            let full = format!("{prefix}{name}");
            let err = |detail: String| CheckpointError::Tensor { file: file.clone(), name: full.clone(), detail };
            let view = tensors.tensor(&full).map_err(|_| err("is missing".into()))?;
            if view.dtype() != Dtype::F32 {
                return Err(err(format!("has dtype {:?}, expected F32", view.dtype())));
            }
            if view.shape() != shape.as_slice() {
                return Err(err(format!("has shape {:?}, expected {:?} for this model", view.shape(), shape)));
            }
            // Copy byte-wise: the data inside the file need not be 4-byte aligned.
            for (d, chunk) in dest[range.clone()].iter_mut().zip(view.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
    }
    let expected = names(&layout).len() * 3;
    if tensors.len() != expected {
        return Err(CheckpointError::Corrupt {
            file,
            detail: format!("{} tensors, expected {expected} for this model", tensors.len()),
        });
    }
    Ok(Checkpoint { model, train, state: TrainState { params, adam_m, adam_v, step }, progress })
}
