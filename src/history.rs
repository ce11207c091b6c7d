//! The training history of a run: snapshots of what it takes to draw the network (neuron positions,
//! per-neuron weight sums, the task of each neuron, its strongest connections), taken at every epoch
//! and optionally every few steps, in one file per run (`history.safetensors` next to the model).
//!
//! Checkpoints keep only the latest state; the paper's claim (neurons drift into one region per task)
//! is about how a network gets there, which only a history shows. `animate` and `view` draw it.
//!
//! What one [`HistoryPoint`] holds, for a model with layers `0..=L`:
//! - `positions[l]`: `p_l`, `(N_l, 2)`, for every layer;
//! - `incoming[l - 1]`: `sum_i |W_l[j, i]|` per neuron `j` of layer `l = 1..=L` (the figures' neuron
//!   filter: a neuron is drawn when this exceeds 0.1);
//! - `outgoing[l]`: `sum_j |W_{l+1}[j, i]|` per neuron `i` of layer `l = 0..L-1`;
//! - `tasks[k]`: the task of each neuron of split layer `k` (`split::assign` at that instant);
//! - `connections[k]`: for the weights `W_l` between consecutive split layers (`l` = the split layers
//!   but the first), the connections a figure draws: every `|w| >= min(0.01, 0.01 max|w|)` (the
//!   paper's threshold, lowered for a layer whose weights are all small), at most
//!   [`HistoryOptions::max_connections`] of them (the strongest), in row-major order of `W_l`;
//! - `weights`: every `W_l` in full, only when [`HistoryOptions::weights`] is set (`--history-weights`).
//!
//! The file is safetensors with a time axis `T` (points in order of progress). Tensors: `progress`
//! `(T, 2)` I64 (epochs finished, batches finished in the epoch under way, as in a checkpoint);
//! `layer{l}.position` `(T, N_l, 2)`; `layer{l}.incoming` `(T, N_l)`; `layer{l}.outgoing` `(T, N_l)`;
//! `layer{l}.task` `(T, N_l)` U8 for split layers; for the connections into split layer `l`,
//! concatenated over time: `layer{l}.conn_offsets` `(T + 1)` I64, `layer{l}.conn_from`,
//! `layer{l}.conn_to` `(C)` U32, `layer{l}.conn_weight` `(C)` F32 (signed); with weights,
//! `layer{l}.weight` `(T, N_l, N_{l-1})`. Metadata: `format` = `spatial-gpu-history`,
//! `format_version`, `model` (JSON), `options` (JSON), `crate_version`.
//!
//! Saving rewrites the whole file atomically (the checkpoint's temporary file, fsync and rename), so
//! a crash leaves the previous history whole. A resumed run calls [`History::truncate_after`] with the
//! checkpoint's progress: the points recorded after the checkpoint, which the resumed run records
//! again, are dropped, and the history ends up equal to that of an uninterrupted run.

use crate::checkpoint::{self, Progress};
use crate::config::ModelConfig;
use crate::model::Params;
use crate::split;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "spatial-gpu-history";
/// Bumped whenever tensor names, layout or metadata change incompatibly.
pub const FORMAT_VERSION: u32 = 1;
/// The history's file name inside a run directory.
pub const FILE_NAME: &str = "history.safetensors";
/// The paper's connection threshold (its footnote 4): connections with `|w|` at or above it are kept.
pub const PAPER_CONNECTION_THRESHOLD: f32 = 0.01;
/// Default cap on the connections kept per layer pair and point: about the paper's figures at
/// their threshold (layer 4 to 5 has 32768 weights), small enough for a browser to draw smoothly.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// A history file may not hold more points than this (a guard against a hostile header).
pub const MAX_POINTS: usize = 1_000_000;

/// What each point records beyond positions and summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryOptions {
    /// Store every weight matrix in full at every point (large: the model's size per point).
    pub weights: bool,
    /// Keep at most this many connections per layer pair and point, the strongest.
    pub max_connections: usize,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            weights: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The drawn connections of one weight matrix `W_l` at one point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connections {
    /// Neuron index in layer `l - 1`.
    pub from: Vec<u32>,
    /// Neuron index in layer `l`.
    pub to: Vec<u32>,
    /// The signed weight `W_l[to, from]`.
    pub weight: Vec<f32>,
}

impl Connections {
    pub fn len(&self) -> usize {
        self.weight.len()
    }
    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }
}

/// One snapshot of a network during training (see the module docs for each field).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPoint {
    pub progress: Progress,
    /// `positions[l]`, `(N_l, 2)` row-major, `l = 0..=L`.
    pub positions: Vec<Vec<f32>>,
    /// `incoming[l - 1][j]` for `l = 1..=L`.
    pub incoming: Vec<Vec<f32>>,
    /// `outgoing[l][i]` for `l = 0..L`.
    pub outgoing: Vec<Vec<f32>>,
    /// `tasks[k][i]`: the task of neuron `i` of split layer `History::split_layers()[k]`.
    pub tasks: Vec<Vec<u8>>,
    /// `connections[k]`: into split layer `History::connection_layers()[k]`.
    pub connections: Vec<Connections>,
    /// `weights[l - 1]` = `W_l`, only with [`HistoryOptions::weights`].
    pub weights: Option<Vec<Vec<f32>>>,
}

impl HistoryPoint {
    /// Epochs as a number for display: `epoch + batch / batches_per_epoch`.
    pub fn epoch_fraction(&self, batches_per_epoch: usize) -> f64 {
        self.progress.epoch as f64 + self.progress.batch as f64 / batches_per_epoch.max(1) as f64
    }
}

/// A run's history: its model and its points, in increasing order of progress.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub model: ModelConfig,
    pub options: HistoryOptions,
    pub points: Vec<HistoryPoint>,
}

/// Every way recording, loading or saving a history can fail. Each message names the file or value.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Write(#[from] checkpoint::CheckpointError),
    #[error("{}: not a readable history file ({detail})", file.display())]
    Corrupt { file: PathBuf, detail: String },
    #[error(
        "{}: not a spatial-gpu history (metadata `format` is {}, expected {FORMAT:?})",
        file.display(),
        found.as_deref().map_or("missing".to_string(), |f| format!("{f:?}"))
    )]
    NotOurs { file: PathBuf, found: Option<String> },
    #[error("{}: history format version {found:?} is not supported (this build reads version {FORMAT_VERSION})", file.display())]
    Version { file: PathBuf, found: String },
    #[error("{}: metadata `{key}` is missing or invalid: {detail}", file.display())]
    Metadata {
        file: PathBuf,
        key: String,
        detail: String,
    },
    #[error("{}: tensor `{name}` {detail}", file.display())]
    Tensor {
        file: PathBuf,
        name: String,
        detail: String,
    },
    #[error("cannot record this point: {0}")]
    Record(String),
}

fn key(p: Progress) -> (usize, usize) {
    (p.epoch, p.batch)
}

impl History {
    pub fn new(model: ModelConfig, options: HistoryOptions) -> History {
        History {
            model,
            options,
            points: Vec::new(),
        }
    }

    /// The split layers (`split::split_layers`), whose neurons get a task.
    pub fn split_layers(&self) -> Vec<usize> {
        split::split_layers(&self.model)
    }

    /// The layers `l` whose incoming weights `W_l` have their connections recorded: the split layers
    /// but the first (the connections between consecutive split layers, those Figure 1 draws).
    pub fn connection_layers(&self) -> Vec<usize> {
        self.split_layers().into_iter().skip(1).collect()
    }

    /// Records the network `params` at `progress`. Points must come in increasing order of progress;
    /// recording again at the last point's progress replaces it (the same parameters give the same
    /// point). Errors if `model` is not the history's or `params` has another shape.
    pub fn record(
        &mut self,
        progress: Progress,
        model: &ModelConfig,
        params: &Params,
    ) -> Result<(), HistoryError> {
        if !model.same_model(&self.model) {
            return Err(HistoryError::Record(format!(
                "the model {:?} is not this history's model {:?}",
                model.sizes, self.model.sizes
            )));
        }
        if params.layout.sizes != model.sizes {
            return Err(HistoryError::Record(format!(
                "parameters of layer sizes {:?} for a model of sizes {:?}",
                params.layout.sizes, model.sizes
            )));
        }
        if let Some(last) = self.points.last() {
            if key(progress) < key(last.progress) {
                return Err(HistoryError::Record(format!(
                    "progress epoch {} batch {} comes before the last point's (epoch {} batch {}); \
                     a resumed run must call truncate_after first",
                    progress.epoch, progress.batch, last.progress.epoch, last.progress.batch
                )));
            }
            if key(progress) == key(last.progress) {
                self.points.pop();
            }
        }
        let point = self.snapshot(progress, params);
        self.points.push(point);
        Ok(())
    }

    fn snapshot(&self, progress: Progress, params: &Params) -> HistoryPoint {
        let sizes = &self.model.sizes;
        let last = sizes.len() - 1;
        let positions = (0..=last).map(|l| params.position(l).to_vec()).collect();
        let mut incoming = Vec::with_capacity(last);
        let mut outgoing: Vec<Vec<f32>> = sizes[..last].iter().map(|&n| vec![0.0; n]).collect();
        for l in 1..=last {
            let n_in = sizes[l - 1];
            let w = params.weight(l);
            // Sums in f64: the same values whatever the order the rows are visited in.
            let mut out = vec![0.0f64; n_in];
            let inc = w
                .chunks_exact(n_in)
                .map(|row| {
                    let mut s = 0.0f64;
                    for (o, v) in out.iter_mut().zip(row) {
                        s += v.abs() as f64;
                        *o += v.abs() as f64;
                    }
                    s as f32
                })
                .collect();
            incoming.push(inc);
            outgoing[l - 1] = out.into_iter().map(|s| s as f32).collect();
        }
        let assignment = split::assign(&self.model, params);
        let tasks = assignment
            .groups
            .iter()
            .map(|g| g.iter().map(|&t| t.min(u8::MAX as usize) as u8).collect())
            .collect();
        let connections = self
            .connection_layers()
            .into_iter()
            .map(|l| strongest(params.weight(l), sizes[l - 1], self.options.max_connections))
            .collect();
        let weights = self
            .options
            .weights
            .then(|| (1..=last).map(|l| params.weight(l).to_vec()).collect());
        HistoryPoint {
            progress,
            positions,
            incoming,
            outgoing,
            tasks,
            connections,
            weights,
        }
    }

    /// Drops every point recorded after `progress` (a resumed run's checkpoint), so that recording
    /// on from there gives the history of an uninterrupted run.
    pub fn truncate_after(&mut self, progress: Progress) {
        self.points.retain(|p| key(p.progress) <= key(progress));
    }

    /// Saves atomically (temporary file, fsync, rename): a crash leaves the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<(), HistoryError> {
        checkpoint::write_atomic(path, &self.to_bytes())?;
        Ok(())
    }

    /// Loads and checks a history file.
    pub fn load(path: &Path) -> Result<History, HistoryError> {
        let bytes = std::fs::read(path).map_err(|source| HistoryError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        History::from_bytes(&bytes, path)
    }

    /// Serialises to safetensors bytes (layout in the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let sizes = &self.model.sizes;
        let t = self.points.len();
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let f32s = |it: &mut dyn Iterator<Item = f32>| it.flat_map(f32::to_le_bytes).collect::<Vec<u8>>();
        let progress: Vec<u8> = self
            .points
            .iter()
            .flat_map(|p| [p.progress.epoch as i64, p.progress.batch as i64])
            .flat_map(i64::to_le_bytes)
            .collect();
        tensors.push(("progress".into(), Dtype::I64, vec![t, 2], progress));
        for (l, &n) in sizes.iter().enumerate() {
            let data = f32s(&mut self.points.iter().flat_map(|p| p.positions[l].iter().copied()));
            tensors.push((format!("layer{l}.position"), Dtype::F32, vec![t, n, 2], data));
            if l >= 1 {
                let data = f32s(&mut self.points.iter().flat_map(|p| p.incoming[l - 1].iter().copied()));
                tensors.push((format!("layer{l}.incoming"), Dtype::F32, vec![t, n], data));
            }
            if l < sizes.len() - 1 {
                let data = f32s(&mut self.points.iter().flat_map(|p| p.outgoing[l].iter().copied()));
                tensors.push((format!("layer{l}.outgoing"), Dtype::F32, vec![t, n], data));
            }
        }
        for (k, l) in self.split_layers().into_iter().enumerate() {
            let data: Vec<u8> = self
                .points
                .iter()
                .flat_map(|p| p.tasks[k].iter().copied())
                .collect();
            tensors.push((format!("layer{l}.task"), Dtype::U8, vec![t, sizes[l]], data));
        }
        for (k, l) in self.connection_layers().into_iter().enumerate() {
            let mut offsets = vec![0i64];
            for p in &self.points {
                offsets.push(offsets.last().unwrap() + p.connections[k].len() as i64);
            }
            let c = *offsets.last().unwrap() as usize;
            let offsets = offsets.into_iter().flat_map(i64::to_le_bytes).collect();
            tensors.push((format!("layer{l}.conn_offsets"), Dtype::I64, vec![t + 1], offsets));
            let u32s = |f: fn(&Connections) -> &Vec<u32>| -> Vec<u8> {
                self.points
                    .iter()
                    .flat_map(|p| f(&p.connections[k]).iter().flat_map(|v| v.to_le_bytes()))
                    .collect()
            };
            tensors.push((
                format!("layer{l}.conn_from"),
                Dtype::U32,
                vec![c],
                u32s(|c| &c.from),
            ));
            tensors.push((format!("layer{l}.conn_to"), Dtype::U32, vec![c], u32s(|c| &c.to)));
            let data = f32s(
                &mut self
                    .points
                    .iter()
                    .flat_map(|p| p.connections[k].weight.iter().copied()),
            );
            tensors.push((format!("layer{l}.conn_weight"), Dtype::F32, vec![c], data));
        }
        if self.options.weights {
            for l in 1..sizes.len() {
                let data = f32s(&mut self.points.iter().flat_map(|p| {
                    p.weights
                        .as_ref()
                        .expect("a history with weights has them at every point")[l - 1]
                        .iter()
                        .copied()
                }));
                tensors.push((
                    format!("layer{l}.weight"),
                    Dtype::F32,
                    vec![t, sizes[l], sizes[l - 1]],
                    data,
                ));
            }
        }
        let mut meta = BTreeMap::new();
        meta.insert("format", FORMAT.to_string());
        meta.insert("format_version", FORMAT_VERSION.to_string());
        meta.insert("crate_version", env!("CARGO_PKG_VERSION").to_string());
        meta.insert(
            "model",
            serde_json::to_string(&self.model).expect("config serialises"),
        );
        meta.insert(
            "options",
            serde_json::to_string(&self.options).expect("options serialise"),
        );
        serialize(&tensors, &meta)
    }

    /// Parses and checks history bytes; `file` is only named in errors. Never panics; every size is
    /// checked against tensors present in `bytes` before anything of that size is allocated.
    pub fn from_bytes(bytes: &[u8], file: &Path) -> Result<History, HistoryError> {
        let file_buf = file.to_path_buf();
        let corrupt = |detail: String| HistoryError::Corrupt {
            file: file_buf.clone(),
            detail,
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(HistoryError::NotOurs {
                file: file_buf,
                found: meta.get("format").cloned(),
            });
        }
        let bad = |key: &str, detail: String| HistoryError::Metadata {
            file: file_buf.clone(),
            key: key.to_string(),
            detail,
        };
        let get = |key: &str| meta.get(key).ok_or_else(|| bad(key, "missing".into()));
        let version = get("format_version")?;
        if version != &FORMAT_VERSION.to_string() {
            return Err(HistoryError::Version {
                file: file_buf,
                found: version.clone(),
            });
        }
        let model: ModelConfig =
            serde_json::from_str(get("model")?).map_err(|e| bad("model", e.to_string()))?;
        model.validate().map_err(|e| bad("model", e.to_string()))?;
        if model.heads > u8::MAX as usize + 1 {
            return Err(bad(
                "model",
                format!("{} heads, a history stores at most 256", model.heads),
            ));
        }
        let options: HistoryOptions =
            serde_json::from_str(get("options")?).map_err(|e| bad("options", e.to_string()))?;

        let reader = Reader { st: &st, file };
        let progress = reader.tensor("progress", Dtype::I64, None)?;
        let t = match progress.shape() {
            [t, 2] if *t <= MAX_POINTS => *t,
            s => {
                return Err(reader.err(
                    "progress",
                    format!("has shape {s:?}, expected (T, 2), T <= {MAX_POINTS}"),
                ))
            }
        };
        let progress: Vec<i64> = le_chunks(progress.data()).map(i64::from_le_bytes).collect();
        let mut history = History::new(model, options);
        let sizes = history.model.sizes.clone();
        let mut points: Vec<HistoryPoint> = Vec::with_capacity(t);
        for k in 0..t {
            let (e, b) = (progress[2 * k], progress[2 * k + 1]);
            if e < 0 || b < 0 {
                return Err(reader.err("progress", format!("point {k} has a negative count ({e}, {b})")));
            }
            let p = Progress {
                epoch: e as usize,
                batch: b as usize,
            };
            if let Some(prev) = points.last() {
                if key(p) <= key(prev.progress) {
                    return Err(reader.err(
                        "progress",
                        format!("point {k} ({e}, {b}) does not come after point {}", k - 1),
                    ));
                }
            }
            points.push(HistoryPoint {
                progress: p,
                positions: Vec::new(),
                incoming: Vec::new(),
                outgoing: Vec::new(),
                tasks: Vec::new(),
                connections: Vec::new(),
                weights: options.weights.then(Vec::new),
            });
        }
        for (l, &n) in sizes.iter().enumerate() {
            let pos = reader.f32s(&format!("layer{l}.position"), &[t, n, 2])?;
            for (p, chunk) in points.iter_mut().zip(pos.chunks_exact((2 * n).max(1))) {
                p.positions.push(chunk.to_vec());
            }
            if l >= 1 {
                let inc = reader.f32s(&format!("layer{l}.incoming"), &[t, n])?;
                for (p, chunk) in points.iter_mut().zip(inc.chunks_exact(n)) {
                    p.incoming.push(chunk.to_vec());
                }
            }
            if l + 1 < sizes.len() {
                let out = reader.f32s(&format!("layer{l}.outgoing"), &[t, n])?;
                for (p, chunk) in points.iter_mut().zip(out.chunks_exact(n)) {
                    p.outgoing.push(chunk.to_vec());
                }
            }
        }
        for l in history.split_layers() {
            let name = format!("layer{l}.task");
            let view = reader.tensor(&name, Dtype::U8, Some(&[t, sizes[l]]))?;
            if let Some(&bad_task) = view.data().iter().find(|&&v| v as usize >= history.model.heads) {
                return Err(reader.err(
                    &name,
                    format!(
                        "holds task {bad_task}, the model has {} heads",
                        history.model.heads
                    ),
                ));
            }
            for (p, chunk) in points.iter_mut().zip(view.data().chunks_exact(sizes[l])) {
                p.tasks.push(chunk.to_vec());
            }
        }
        for l in history.connection_layers() {
            let name = format!("layer{l}.conn_offsets");
            let offsets = reader.tensor(&name, Dtype::I64, Some(&[t + 1]))?;
            let offsets: Vec<i64> = le_chunks(offsets.data()).map(i64::from_le_bytes).collect();
            let from = reader.tensor(&format!("layer{l}.conn_from"), Dtype::U32, None)?;
            let c = from.shape().iter().product::<usize>();
            let from: Vec<u32> = le_chunks(from.data()).map(u32::from_le_bytes).collect();
            let to: Vec<u32> = le_chunks(
                reader
                    .tensor(&format!("layer{l}.conn_to"), Dtype::U32, Some(&[c]))?
                    .data(),
            )
            .map(u32::from_le_bytes)
            .collect();
            let weight = reader.f32s(&format!("layer{l}.conn_weight"), &[c])?;
            if from.len() != c || offsets.first() != Some(&0) || offsets.last() != Some(&(c as i64)) {
                return Err(reader.err(&name, format!("must run from 0 to the {c} connections stored")));
            }
            if let Some(k) = from.iter().position(|&i| i as usize >= sizes[l - 1]) {
                return Err(reader.err(
                    &format!("layer{l}.conn_from"),
                    format!(
                        "entry {k} is {}, layer {} has {} neurons",
                        from[k],
                        l - 1,
                        sizes[l - 1]
                    ),
                ));
            }
            if let Some(k) = to.iter().position(|&j| j as usize >= sizes[l]) {
                return Err(reader.err(
                    &format!("layer{l}.conn_to"),
                    format!("entry {k} is {}, layer {l} has {} neurons", to[k], sizes[l]),
                ));
            }
            for (k, p) in points.iter_mut().enumerate() {
                let (a, b) = (offsets[k], offsets[k + 1]);
                if a > b || b as usize > c {
                    return Err(reader.err(
                        &name,
                        format!("entries {k} and {} ({a}, {b}) are out of order", k + 1),
                    ));
                }
                let r = a as usize..b as usize;
                p.connections.push(Connections {
                    from: from[r.clone()].to_vec(),
                    to: to[r.clone()].to_vec(),
                    weight: weight[r].to_vec(),
                });
            }
        }
        if options.weights {
            for l in 1..sizes.len() {
                let w = reader.f32s(&format!("layer{l}.weight"), &[t, sizes[l], sizes[l - 1]])?;
                for (p, chunk) in points.iter_mut().zip(w.chunks_exact(sizes[l] * sizes[l - 1])) {
                    p.weights.as_mut().expect("set above").push(chunk.to_vec());
                }
            }
        }
        let expected = expected_tensor_count(&history);
        if st.len() != expected {
            return Err(corrupt(format!("{} tensors, expected {expected}", st.len())));
        }
        history.points = points;
        Ok(history)
    }
}

fn expected_tensor_count(h: &History) -> usize {
    let n = h.model.sizes.len();
    let weights = if h.options.weights { n - 1 } else { 0 };
    1 + n + 2 * (n - 1) + h.split_layers().len() + 4 * h.connection_layers().len() + weights
}

fn le_chunks<const N: usize>(bytes: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    bytes
        .chunks_exact(N)
        .map(|c| c.try_into().expect("chunks of N bytes"))
}

/// Reads named tensors of a history file, each checked for dtype and shape.
struct Reader<'a> {
    st: &'a SafeTensors<'a>,
    file: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, name: &str, detail: String) -> HistoryError {
        HistoryError::Tensor {
            file: self.file.to_path_buf(),
            name: name.to_string(),
            detail,
        }
    }
    fn tensor(
        &self,
        name: &str,
        dtype: Dtype,
        shape: Option<&[usize]>,
    ) -> Result<TensorView<'a>, HistoryError> {
        let view = self
            .st
            .tensor(name)
            .map_err(|_| self.err(name, "is missing".into()))?;
        if view.dtype() != dtype {
            return Err(self.err(name, format!("has dtype {:?}, expected {dtype:?}", view.dtype())));
        }
        if let Some(shape) = shape {
            if view.shape() != shape {
                return Err(self.err(name, format!("has shape {:?}, expected {shape:?}", view.shape())));
            }
        }
        let elements = view.shape().iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if elements.and_then(|e| e.checked_mul(dtype.bitsize() / 8)) != Some(view.data().len()) {
            return Err(self.err(
                name,
                format!(
                    "holds {} bytes, not its shape {:?}",
                    view.data().len(),
                    view.shape()
                ),
            ));
        }
        Ok(view)
    }
    /// An F32 tensor of `shape` as numbers (copied byte-wise: the file's data need not be aligned).
    fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, HistoryError> {
        let view = self.tensor(name, Dtype::F32, Some(shape))?;
        Ok(le_chunks(view.data()).map(f32::from_le_bytes).collect())
    }
}

/// The connections of `w` (`(N_out, n_in)` row-major) a figure draws (module docs), in row-major
/// order; when more than `cap` qualify, the strongest (ties to the earlier), a function of `w` alone.
fn strongest(w: &[f32], n_in: usize, cap: usize) -> Connections {
    let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let floor = PAPER_CONNECTION_THRESHOLD.min(PAPER_CONNECTION_THRESHOLD * max);
    let mut kept: Vec<(usize, f32)> = w
        .iter()
        .enumerate()
        .filter(|(_, v)| v.abs() >= floor && v.abs() > 0.0)
        .map(|(k, &v)| (k, v))
        .collect();
    if kept.len() > cap {
        kept.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        kept.truncate(cap);
        kept.sort_by_key(|&(k, _)| k);
    }
    Connections {
        from: kept.iter().map(|&(k, _)| (k % n_in) as u32).collect(),
        to: kept.iter().map(|&(k, _)| (k / n_in) as u32).collect(),
        weight: kept.iter().map(|&(_, v)| v).collect(),
    }
}

/// A safetensors file of `tensors` (in this order) with metadata `meta`, written here rather than
/// by `safetensors::serialize`, whose metadata map comes out in a different order from one process
/// to the next: the same history must give the same bytes (resume is tested byte for byte).
fn serialize(tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)], meta: &BTreeMap<&str, String>) -> Vec<u8> {
    let json = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut header = String::from("{\"__metadata__\":{");
    let entries: Vec<String> = meta
        .iter()
        .map(|(k, v)| format!("{}:{}", json(k), json(v)))
        .collect();
    header.push_str(&entries.join(","));
    header.push('}');
    let mut at = 0usize;
    for (name, dtype, shape, data) in tensors {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"{dtype:?}\",\"shape\":[{}],\"data_offsets\":[{at},{}]}}",
            json(name),
            dims.join(","),
            at + data.len()
        ));
        at += data.len();
    }
    header.push('}');
    // The tensor data starts at a multiple of 8 bytes, as safetensors writes it.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + at);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
    }
    out
}
