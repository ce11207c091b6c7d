//! Checkpoints in safetensors: everything needed to evaluate a model or resume its training.
//! `docs/CHECKPOINTS.md` documents the format for users; this is the reference.
//!
//! Tensors (all `F32`, little-endian, row-major), for each layer `l`:
//! - `layer{l}.weight` `(N_l, N_{l-1})` and `layer{l}.bias` `(N_l)` for `l = 1..=L`;
//! - `layer{l}.position` `(N_l, 2)` for `l = 0..=L`;
//! - the same names prefixed `adam_m.` and `adam_v.` for Adam's moments.
//!
//! Metadata (strings): `format` = `spatial-gpu`, `format_version`, `model` and `train` (the
//! configurations as JSON), `adam_step`, `epoch` (epochs finished), `batch` (batches finished in the
//! current epoch), `crate_version`. The data order of every epoch is a function of the seed (in
//! `train`) and the epoch number alone, so `epoch` and `batch` are the whole random state of a run.
//! A checkpoint saved mid-epoch also has `epoch_losses`: the loss terms summed over the epoch's
//! steps so far (JSON), so that the epoch's metrics cover all its steps after a resume; one saved at
//! an epoch's end has `epoch_metrics`, that epoch's `metrics.jsonl` line.
//! A checkpoint written with the data's digests has `data`: for each of the eight data files, its
//! name under the data directory and the SHA-256 of its content (JSON object), checked by
//! [`check_data`] so that a run is not resumed or evaluated on other data of the same shape.
//! `provenance` (JSON, written by `train`) lists the invocations that trained the run so far
//! (`crate::provenance::Segments`); it is read back, not checked, by a resume.
//! `checksum` is a SHA-256 of all the rest (metadata and tensors), verified on loading when present.
//!
//! Saving writes a temporary file in the same directory, syncs it, renames it over the old file and
//! syncs the directory, so a crash at any instant leaves either the old or the new checkpoint whole.
//!
//! Loading treats the file as untrusted (it is what the `checkpoint` fuzz target calls): every
//! fault is a [`CheckpointError`] naming the file and the fault, and nothing is allocated from a
//! size the file claims before the tensors of that size were found in it.

mod data_check;
pub use data_check::{check_data, check_data_digests, check_tasks, DataMismatch, TaskMismatch};

use crate::backend::Losses;
use crate::config::{ModelConfig, TrainConfig};
use crate::model::{Layout, Params, TrainState};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "spatial-gpu";
/// Bumped whenever the tensor names, layout or metadata change incompatibly.
pub const FORMAT_VERSION: u32 = 1;
/// The checkpoint's file name inside a run directory.
pub const FILE_NAME: &str = "model.safetensors";
/// The prefixes of the three kinds of tensor: parameters, Adam's first and second moments.
pub const PREFIXES: [&str; 3] = ["", "adam_m.", "adam_v."];
/// The optional metadata key of the losses of the epoch under way (see [`EpochLosses`]).
pub const EPOCH_LOSSES_KEY: &str = "epoch_losses";
/// The optional metadata key of the metrics line of the epoch a checkpoint ends (see [`Extras`]).
pub const EPOCH_METRICS_KEY: &str = "epoch_metrics";
/// The optional metadata key of the digests of the run's data files (see [`check_data`]).
pub const DATA_KEY: &str = "data";
/// The optional metadata key of the run's invocations so far (see [`Extras`]).
pub const PROVENANCE_KEY: &str = "provenance";
/// The metadata key of the content checksum (see `content_checksum`).
pub const CHECKSUM_KEY: &str = "checksum";
/// safetensors refuses headers larger than this (100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// Where a run stands: epochs finished, and batches finished in the epoch under way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub epoch: usize,
    pub batch: usize,
}

/// The loss terms summed over the steps of the epoch under way, saved with a mid-epoch checkpoint
/// so that the epoch's metrics line, after a resume, still averages over all its steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochLosses {
    /// Steps summed.
    pub steps: u64,
    /// The sums (each field of [`Losses`] summed over the steps).
    pub sums: Losses,
    /// Wall seconds of the epoch's steps so far, so that a resumed epoch's time counts them all.
    #[serde(default)]
    pub seconds: f64,
}

impl EpochLosses {
    /// Adds `mean`, the mean over `steps` steps.
    pub fn add_mean(&mut self, mean: &Losses, steps: u64) {
        let n = steps as f64;
        if self.steps == 0 {
            self.sums = Losses {
                transport: vec![0.0; mean.transport.len()],
                density: vec![0.0; mean.density.len()],
                ..Losses::default()
            };
        }
        self.sums.task += mean.task * n;
        self.sums.total += mean.total * n;
        for (s, m) in self.sums.transport.iter_mut().zip(&mean.transport) {
            *s += m * n;
        }
        for (s, m) in self.sums.density.iter_mut().zip(&mean.density) {
            *s += m * n;
        }
        self.steps += steps;
    }

    /// The mean over all steps summed (`None` if there were none).
    pub fn mean(&self) -> Option<Losses> {
        if self.steps == 0 {
            return None;
        }
        let n = self.steps as f64;
        let s = &self.sums;
        Some(Losses {
            task: s.task / n,
            transport: s.transport.iter().map(|v| v / n).collect(),
            density: s.density.iter().map(|v| v / n).collect(),
            total: s.total / n,
        })
    }
}

/// A loaded checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub state: TrainState,
    pub progress: Progress,
    /// The losses of the steps of the epoch under way (metadata `epoch_losses`; only in a
    /// checkpoint saved mid-epoch by a build that writes them).
    pub epoch_losses: Option<EpochLosses>,
    /// The metrics line of the epoch this checkpoint ends (metadata `epoch_metrics`; only in a
    /// checkpoint saved at an epoch's end by a build that writes it). Not parsed here.
    pub epoch_metrics: Option<String>,
    /// The run's data files and their SHA-256 (metadata `data`, sorted by file; only in a
    /// checkpoint whose writer passed them, see [`save_with_data`]).
    pub data: Option<Vec<(String, String)>>,
    /// The invocations that trained the run so far (metadata `provenance`, JSON). Not parsed here.
    pub provenance: Option<String>,
}

/// Every way loading or saving a checkpoint can fail. Each message starts with the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    // The OS error is part of the message and deliberately not the error's `source`: anyhow's
    // `{:#}` prints the chain of sources, which would repeat its text.
    #[error("{}: {error}", file.display())]
    Io { file: PathBuf, error: io::Error },
    #[error(
        "{}: could not save ({error}); the previous version of the file, if any, is left as it was",
        file.display()
    )]
    Write { file: PathBuf, error: io::Error },
    #[error("{}: truncated: {detail} (the file was cut short)", file.display())]
    Truncated { file: PathBuf, detail: String },
    #[error("{}: not a safetensors file ({detail})", file.display())]
    NotSafetensors { file: PathBuf, detail: String },
    #[error("{}: not a readable safetensors file ({detail}); it may be corrupted", file.display())]
    Corrupt { file: PathBuf, detail: String },
    #[error(
        "{}: a safetensors file but not a spatial-gpu checkpoint (metadata `format` is {}, expected {FORMAT:?})",
        file.display(),
        found.as_deref().map_or("missing".to_string(), |f| format!("{f:?}"))
    )]
    NotOurs { file: PathBuf, found: Option<String> },
    #[error(
        "{}: checkpoint format version {found:?} is not supported by this build (spatial-gpu {}, which reads version {FORMAT_VERSION})",
        file.display(),
        env!("CARGO_PKG_VERSION")
    )]
    Version { file: PathBuf, found: String },
    #[error("{}: metadata `{key}` is missing or invalid: {detail}", file.display())]
    Metadata {
        file: PathBuf,
        key: String,
        detail: String,
    },
    #[error(
        "{}: the content does not match its checksum (metadata `checksum`): the file was altered or damaged after it was written",
        file.display()
    )]
    Checksum { file: PathBuf },
    #[error("{}: tensor `{name}` {detail}", file.display())]
    Tensor {
        file: PathBuf,
        name: String,
        detail: String,
    },
}

/// The parameter tensors of a model with layer sizes `sizes`: name and shape, in the order of
/// [`Layout`] (`W_1, b_1, ..., W_L, b_L, p_0, ..., p_L`). Each is stored three times, once per
/// prefix of [`PREFIXES`].
pub fn tensor_shapes(sizes: &[usize]) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for l in 1..sizes.len() {
        out.push((format!("layer{l}.weight"), vec![sizes[l], sizes[l - 1]]));
        out.push((format!("layer{l}.bias"), vec![sizes[l]]));
    }
    for (l, &n) in sizes.iter().enumerate() {
        out.push((format!("layer{l}.position"), vec![n, 2]));
    }
    out
}

/// The ranges of the tensors of [`tensor_shapes`] in the flat buffer, in the same order.
fn ranges(layout: &Layout) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for l in 0..layout.num_layers() {
        out.push(layout.weights[l].clone());
        out.push(layout.biases[l].clone());
    }
    out.extend(layout.positions.iter().cloned());
    out
}

/// What a checkpoint may hold besides the state, for the metrics of a resumed run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras<'a> {
    /// Saved mid-epoch: the losses of the epoch's steps so far (metadata `epoch_losses`).
    pub epoch_losses: Option<&'a EpochLosses>,
    /// Saved at an epoch's end: that epoch's `metrics.jsonl` line (metadata `epoch_metrics`), which
    /// a resume appends if a crash came between the save and the line.
    pub epoch_metrics: Option<&'a str>,
    /// The invocations that trained the run so far, as JSON (metadata `provenance`).
    pub provenance: Option<&'a str>,
}

/// The data files a checkpoint's run trained on, as [`crate::data::Datasets::digests`] gives them:
/// `(file under the data directory, hex SHA-256)`.
pub type DataDigests = [(String, String)];

/// Serialises a checkpoint to bytes.
pub fn to_bytes(model: &ModelConfig, train: &TrainConfig, state: &TrainState, progress: Progress) -> Vec<u8> {
    to_bytes_with(model, train, state, progress, Extras::default())
}

/// [`to_bytes`], with [`Extras`].
pub fn to_bytes_with(
    model: &ModelConfig,
    train: &TrainConfig,
    state: &TrainState,
    progress: Progress,
    extras: Extras<'_>,
) -> Vec<u8> {
    to_bytes_with_data(model, train, state, progress, extras, None)
}

/// [`to_bytes_with`], recording the digests of the run's data (metadata `data`) when given.
pub fn to_bytes_with_data(
    model: &ModelConfig,
    train: &TrainConfig,
    state: &TrainState,
    progress: Progress,
    extras: Extras<'_>,
    data: Option<&DataDigests>,
) -> Vec<u8> {
    let layout = &state.params.layout;
    let mut owned: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    for ((name, shape), range) in tensor_shapes(&layout.sizes).into_iter().zip(ranges(layout)) {
        for (prefix, buf) in PREFIXES
            .iter()
            .zip([&state.params.data, &state.adam_m, &state.adam_v])
        {
            owned.push((format!("{prefix}{name}"), shape.clone(), &buf[range.clone()]));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(name, shape, data)| {
            let bytes: &[u8] = bytemuck::cast_slice(data);
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).expect("shape matches data"),
            )
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    meta.insert("crate_version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    meta.insert(
        "model".to_string(),
        serde_json::to_string(model).expect("config serialises"),
    );
    meta.insert(
        "train".to_string(),
        serde_json::to_string(train).expect("config serialises"),
    );
    meta.insert("adam_step".to_string(), state.step.to_string());
    meta.insert("epoch".to_string(), progress.epoch.to_string());
    meta.insert("batch".to_string(), progress.batch.to_string());
    if let Some(l) = extras.epoch_losses {
        meta.insert(
            EPOCH_LOSSES_KEY.to_string(),
            serde_json::to_string(l).expect("losses serialise"),
        );
    }
    if let Some(m) = extras.epoch_metrics {
        meta.insert(EPOCH_METRICS_KEY.to_string(), m.to_string());
    }
    if let Some(p) = extras.provenance {
        meta.insert(PROVENANCE_KEY.to_string(), p.to_string());
    }
    if let Some(d) = data {
        let map: serde_json::Map<String, serde_json::Value> = d
            .iter()
            .map(|(file, hex)| (file.clone(), serde_json::Value::String(hex.clone())))
            .collect();
        meta.insert(DATA_KEY.to_string(), serde_json::Value::Object(map).to_string());
    }
    let checksum = content_checksum(
        &meta,
        owned
            .iter()
            .map(|(n, s, d)| (n.as_str(), s.as_slice(), bytemuck::cast_slice(d))),
    );
    meta.insert(CHECKSUM_KEY.to_string(), checksum);
    safetensors::serialize(views, Some(meta)).expect("safetensors serialisation of in-memory tensors")
}

/// The checksum stored in the metadata key `checksum`: `sha256:` and the hex SHA-256 of the
/// content, independent of how the file lays it out: every metadata entry but `checksum` (sorted by
/// key), then every tensor (in the canonical order of [`tensor_shapes`] and [`PREFIXES`]) as its name,
/// shape and little-endian bytes, each field length-prefixed.
fn content_checksum<'a>(
    meta: &HashMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, &'a [usize], &'a [u8])>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut keys: Vec<&String> = meta.keys().filter(|k| k.as_str() != CHECKSUM_KEY).collect();
    keys.sort();
    for k in keys {
        field(k.as_bytes());
        field(meta[k].as_bytes());
    }
    for (name, shape, data) in tensors {
        field(name.as_bytes());
        let dims: Vec<u8> = shape.iter().flat_map(|&d| (d as u64).to_le_bytes()).collect();
        field(&dims);
        field(data);
    }
    let digest = h.finalize();
    format!(
        "sha256:{}",
        digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The temporary file [`write_atomic`] writes before renaming it to `path`:
/// `.<name>.tmp-<pid>` in the same directory (a rename is only atomic within one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{file_name}.tmp-{}", std::process::id()))
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// On any error the temporary file is removed and the old file at `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary file: the same
/// guarantees for any writer, and the seam where tests inject a failing write (a full disk
/// part-way through, say).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), CheckpointError> {
    let dir = parent_dir(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = crate::fsio::create_new_file(&tmp)?;
        write(&mut f)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable (some file systems cannot sync a directory: not an error).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|error| CheckpointError::Write {
        file: path.to_path_buf(),
        error,
    })
}

/// Removes the temporary files of [`write_atomic`] for `path` that a killed process left behind
/// (any pid). Only call this when no other process may be saving to `path`. Returns how many were
/// removed.
pub fn remove_stale_temps(path: &Path) -> usize {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return 0;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
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

/// [`save`], with [`Extras`].
pub fn save_with(
    path: &Path,
    model: &ModelConfig,
    train: &TrainConfig,
    state: &TrainState,
    progress: Progress,
    extras: Extras<'_>,
) -> Result<(), CheckpointError> {
    write_atomic(path, &to_bytes_with(model, train, state, progress, extras))
}

/// [`save_with`], recording the digests of the run's data (see [`check_data`]).
#[allow(clippy::too_many_arguments)] // save_with's, and the data
pub fn save_with_data(
    path: &Path,
    model: &ModelConfig,
    train: &TrainConfig,
    state: &TrainState,
    progress: Progress,
    extras: Extras<'_>,
    data: &DataDigests,
) -> Result<(), CheckpointError> {
    write_atomic(
        path,
        &to_bytes_with_data(model, train, state, progress, extras, Some(data)),
    )
}

/// Loads and checks a checkpoint file.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = fs::read(path).map_err(|error| CheckpointError::Io {
        file: path.to_path_buf(),
        error,
    })?;
    from_bytes(&bytes, path)
}

/// Checks the framing of a safetensors file (8-byte header length, JSON header, tensor data that
/// ends exactly at the end of the file) and names the fault in words: safetensors' own errors do not
/// say that a file is truncated.
fn check_framing(bytes: &[u8], file: &Path) -> Result<(), CheckpointError> {
    let truncated = |detail: String| CheckpointError::Truncated {
        file: file.to_path_buf(),
        detail,
    };
    let not_st = |detail: String| CheckpointError::NotSafetensors {
        file: file.to_path_buf(),
        detail,
    };
    let len = bytes.len() as u64;
    if len == 0 {
        return Err(truncated("the file is empty".into()));
    }
    if len > 8 && bytes[8] != b'{' {
        return Err(not_st(
            "it does not start with an 8-byte header length and a JSON header".into(),
        ));
    }
    let Some(head) = bytes.get(..8) else {
        return Err(truncated(format!(
            "{len} bytes, less than the 8-byte header length"
        )));
    };
    let n = u64::from_le_bytes(head.try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(not_st(format!(
            "its first 8 bytes give a header length of {n} bytes"
        )));
    }
    if n > len - 8 {
        return Err(truncated(format!(
            "the header needs {n} bytes after the 8-byte length, the file has {} more",
            len - 8
        )));
    }
    // Where the tensor data must end, from the header (serde_json cannot panic on any input).
    // A header that does not parse is left to safetensors to describe.
    let header = &bytes[8..8 + n as usize];
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice::<serde_json::Value>(header) else {
        return Ok(());
    };
    let end = entries
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let data = len - 8 - n;
    if end > data {
        return Err(truncated(format!(
            "the tensors need {end} bytes after the header, the file has {data}"
        )));
    }
    if end < data {
        return Err(CheckpointError::Corrupt {
            file: file.to_path_buf(),
            detail: format!("{} unexpected bytes after the last tensor", data - end),
        });
    }
    Ok(())
}

/// Parses and checks checkpoint bytes; `file` is only used in error messages. Never panics, and
/// allocates nothing larger than a small multiple of `bytes.len()`.
pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<Checkpoint, CheckpointError> {
    check_framing(bytes, file)?;
    let file = file.to_path_buf();
    let corrupt = |e: safetensors::SafeTensorError| CheckpointError::Corrupt {
        file: file.clone(),
        detail: e.to_string(),
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(corrupt)?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| -> Result<&String, CheckpointError> {
        meta.get(key).ok_or_else(|| CheckpointError::Metadata {
            file: file.clone(),
            key: key.to_string(),
            detail: "missing".into(),
        })
    };
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(CheckpointError::NotOurs {
            file,
            found: meta.get("format").cloned(),
        });
    }
    let version = get("format_version")?;
    if version != &FORMAT_VERSION.to_string() {
        return Err(CheckpointError::Version {
            file,
            found: version.clone(),
        });
    }
    let bad = |key: &str, detail: String| CheckpointError::Metadata {
        file: file.clone(),
        key: key.to_string(),
        detail,
    };
    let mut model: ModelConfig =
        serde_json::from_str(get("model")?).map_err(|e| bad("model", e.to_string()))?;
    let train: TrainConfig = serde_json::from_str(get("train")?).map_err(|e| bad("train", e.to_string()))?;
    model.validate().map_err(|e| bad("model", e.to_string()))?;
    // A checkpoint written before tasks could be chosen names none: its tasks are made explicit
    // (two heads: mnist and fashion-mnist).
    model.fill_tasks();
    train.validate().map_err(|e| bad("train", e.to_string()))?;
    let int = |key: &str| -> Result<u64, CheckpointError> {
        get(key)?
            .parse::<u64>()
            .map_err(|e| bad(key, format!("{:?} is not a count ({e})", meta[key])))
    };
    let step = int("adam_step")?;
    let epoch = usize::try_from(int("epoch")?).map_err(|e| bad("epoch", e.to_string()))?;
    let batch = usize::try_from(int("batch")?).map_err(|e| bad("batch", e.to_string()))?;
    if epoch > train.epochs {
        return Err(bad(
            "epoch",
            format!("{epoch} epochs finished, more than the run's {}", train.epochs),
        ));
    }
    let epoch_losses = match meta.get(EPOCH_LOSSES_KEY) {
        None => None,
        Some(text) => {
            let l: EpochLosses =
                serde_json::from_str(text).map_err(|e| bad(EPOCH_LOSSES_KEY, e.to_string()))?;
            let n = model.spatial_layers.len();
            if l.sums.transport.len() != n || l.sums.density.len() != n {
                return Err(bad(
                    EPOCH_LOSSES_KEY,
                    format!("needs {n} transport and {n} density sums"),
                ));
            }
            Some(l)
        }
    };

    let data = match meta.get(DATA_KEY) {
        None => None,
        Some(text) => {
            let map: std::collections::BTreeMap<String, String> =
                serde_json::from_str(text).map_err(|e| bad(DATA_KEY, e.to_string()))?;
            let sha = |h: &String| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
            if let Some((file, hex)) = map.iter().find(|(_, h)| !sha(h)) {
                return Err(bad(
                    DATA_KEY,
                    format!("the digest of {file}, {hex:?}, is not a hex SHA-256"),
                ));
            }
            Some(map.into_iter().collect())
        }
    };

    // Check every tensor before allocating anything: only then are the sizes the metadata claims
    // backed by bytes that are really in the file.
    let shapes = tensor_shapes(&model.sizes);
    let mut views = Vec::with_capacity(shapes.len() * PREFIXES.len());
    let mut names = Vec::with_capacity(shapes.len() * PREFIXES.len());
    for (name, shape) in &shapes {
        for prefix in PREFIXES {
            let full = format!("{prefix}{name}");
            let err = |detail: String| CheckpointError::Tensor {
                file: file.clone(),
                name: full.clone(),
                detail,
            };
            let view = tensors
                .tensor(&full)
                .map_err(|_| err(format!("is missing (a model of sizes {:?} has it)", model.sizes)))?;
            if view.dtype() != Dtype::F32 {
                return Err(err(format!("has dtype {:?}, expected F32", view.dtype())));
            }
            if view.shape() != shape.as_slice() {
                return Err(err(format!(
                    "has shape {:?}, expected {:?} for a model of sizes {:?} (metadata `model`)",
                    view.shape(),
                    shape,
                    model.sizes
                )));
            }
            views.push(view);
            names.push((full, shape));
        }
    }
    if tensors.len() != views.len() {
        let mut extra: Vec<String> = tensors
            .names()
            .into_iter()
            .filter(|n| !views_named(&shapes, n))
            .map(str::to_string)
            .collect();
        extra.sort();
        return Err(CheckpointError::Corrupt {
            file,
            detail: format!(
                "{} tensors, expected {} for a model of sizes {:?}; unexpected: {}",
                tensors.len(),
                views.len(),
                model.sizes,
                extra.join(", ")
            ),
        });
    }

    // Files written before checksums existed, or by other tools, have none: nothing to verify.
    if let Some(expected) = meta.get(CHECKSUM_KEY) {
        let content = names
            .iter()
            .zip(&views)
            .map(|((n, s), v)| (n.as_str(), s.as_slice(), v.data()));
        if &content_checksum(&meta, content) != expected {
            return Err(CheckpointError::Checksum { file });
        }
    }

    let layout = Layout::new(&model.sizes);
    let mut params = Params::zeros(&model.sizes);
    let mut adam_m = vec![0.0; layout.len];
    let mut adam_v = vec![0.0; layout.len];
    let mut views = views.into_iter().zip(&names);
    for range in ranges(&layout) {
        for dest in [&mut params.data, &mut adam_m, &mut adam_v] {
            let (view, (name, _)) = views.next().expect("one view per tensor and prefix");
            // Copy byte-wise: the data inside the file need not be 4-byte aligned.
            for (d, chunk) in dest[range.clone()].iter_mut().zip(view.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            // Training never saves a NaN or an infinity (the divergence guard), but a file made by
            // another tool, or edited, may hold one, checksum or not: every command would then
            // compute garbage (a figure's scale, a split's accuracies) instead of failing.
            if let Some(i) = dest[range.clone()].iter().position(|v| !v.is_finite()) {
                return Err(CheckpointError::Tensor {
                    file,
                    name: name.clone(),
                    detail: format!(
                        "holds a value that is not finite ({} at flat index {i}); a checkpoint's parameters and Adam moments must all be finite numbers",
                        dest[range.start + i]
                    ),
                });
            }
        }
    }
    Ok(Checkpoint {
        model,
        train,
        state: TrainState {
            params,
            adam_m,
            adam_v,
            step,
        },
        progress: Progress { epoch, batch },
        epoch_losses,
        epoch_metrics: meta.get(EPOCH_METRICS_KEY).cloned(),
        data,
        provenance: meta.get(PROVENANCE_KEY).cloned(),
    })
}

/// Whether `name` is one of the tensors of `shapes` under one of the [`PREFIXES`].
fn views_named(shapes: &[(String, Vec<usize>)], name: &str) -> bool {
    shapes
        .iter()
        .any(|(n, _)| PREFIXES.iter().any(|p| name.strip_prefix(p) == Some(n.as_str())))
}
