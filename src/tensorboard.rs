//! TensorBoard event files, written by hand: the format is small and stable, and the crates that
//! write it are unmaintained or pull in a protobuf code generator for four messages.
//!
//! An event file (`events.out.tfevents.<unix secs>.<host>`) is a sequence of TFRecords, each
//!
//! ```text
//! u64 length (little-endian) | u32 masked CRC-32C of the length bytes | data | u32 masked CRC-32C of data
//! ```
//!
//! where `data` is one serialised `tensorflow.Event` protobuf. The first event carries
//! `file_version = "brain.Event:2"`; the others a `Summary` with one value each: a scalar
//! (`simple_value`) or a text (a `DT_STRING` tensor tagged for TensorBoard's text plugin).
//!
//! The protobuf field numbers used here (from tensorflow/core/util/event.proto,
//! tensorflow/core/framework/summary.proto, tensor.proto, tensor_shape.proto):
//!
//! | message | field | number | wire type |
//! | --- | --- | --- | --- |
//! | Event | wall_time (double) | 1 | fixed64 |
//! | Event | step (int64) | 2 | varint |
//! | Event | file_version (string) | 3 | bytes |
//! | Event | summary (Summary) | 5 | bytes |
//! | Summary | value (repeated Value) | 1 | bytes |
//! | Summary.Value | tag (string) | 1 | bytes |
//! | Summary.Value | simple_value (float) | 2 | fixed32 |
//! | Summary.Value | tensor (TensorProto) | 8 | bytes |
//! | Summary.Value | metadata (SummaryMetadata) | 9 | bytes |
//! | SummaryMetadata | plugin_data (PluginData) | 1 | bytes |
//! | PluginData | plugin_name (string) | 1 | bytes |
//! | TensorProto | dtype (DataType; DT_STRING = 7) | 1 | varint |
//! | TensorProto | tensor_shape (TensorShapeProto) | 2 | bytes |
//! | TensorProto | string_val (repeated bytes) | 8 | bytes |
//! | TensorShapeProto | dim (repeated Dim) | 2 | bytes |
//! | TensorShapeProto.Dim | size (int64) | 1 | varint |

use crate::split;
use crate::train::EpochMetrics;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// CRC-32C (Castagnoli), the checksum of TFRecords.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC: a CRC of data that holds CRCs is weak, so the stored value is rotated and
/// offset (the same mask as LevelDB's log format).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = CRC32C.checksum(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord around `data`.
pub fn tfrecord(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// Protobuf wire-format writers: just the field kinds the event protos above need.
mod proto {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
        varint(out, ((field as u64) << 3) | wire_type as u64);
    }
    pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
        key(out, field, 0);
        varint(out, v);
    }
    pub fn double(out: &mut Vec<u8>, field: u32, v: f64) {
        key(out, field, 1);
        out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn float(out: &mut Vec<u8>, field: u32, v: f32) {
        key(out, field, 5);
        out.extend_from_slice(&v.to_le_bytes());
    }
    /// A string, bytes or an embedded message.
    pub fn bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
        key(out, field, 2);
        varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

/// DataType DT_STRING of tensorflow/core/framework/types.proto.
const DT_STRING: u64 = 7;

/// A serialised `Event` with `wall_time`, `step` and one more field, already encoded, after them.
fn event(wall_time: f64, step: i64, what: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut e = Vec::new();
    proto::double(&mut e, 1, wall_time);
    // int64 is encoded as its two's-complement u64 (a negative step takes ten bytes).
    proto::uint(&mut e, 2, step as u64);
    what(&mut e);
    e
}

/// `Event.summary` holding one `Summary.Value` (already encoded).
fn summary_of(value: &[u8]) -> impl FnOnce(&mut Vec<u8>) + '_ {
    move |e| {
        let mut summary = Vec::new();
        proto::bytes(&mut summary, 1, value);
        proto::bytes(e, 5, &summary);
    }
}

/// The event of a scalar.
pub fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let mut v = Vec::new();
    proto::bytes(&mut v, 1, tag.as_bytes());
    proto::float(&mut v, 2, value);
    event(wall_time, step, summary_of(&v))
}

/// The event of a text: a one-element `DT_STRING` tensor whose metadata names the text plugin (as
/// `tf.summary.text` and tensorboardX write it; TensorBoard renders it as Markdown).
pub fn text_event(wall_time: f64, step: i64, tag: &str, text: &str) -> Vec<u8> {
    let mut plugin_data = Vec::new();
    proto::bytes(&mut plugin_data, 1, b"text");
    let mut metadata = Vec::new();
    proto::bytes(&mut metadata, 1, &plugin_data);
    let mut dim = Vec::new();
    proto::uint(&mut dim, 1, 1);
    let mut shape = Vec::new();
    proto::bytes(&mut shape, 2, &dim);
    let mut tensor = Vec::new();
    proto::uint(&mut tensor, 1, DT_STRING);
    proto::bytes(&mut tensor, 2, &shape);
    proto::bytes(&mut tensor, 8, text.as_bytes());
    let mut v = Vec::new();
    proto::bytes(&mut v, 1, tag.as_bytes());
    proto::bytes(&mut v, 9, &metadata);
    proto::bytes(&mut v, 8, &tensor);
    event(wall_time, step, summary_of(&v))
}

/// The first event of every file.
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    event(wall_time, 0, |e| proto::bytes(e, 3, b"brain.Event:2"))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The machine's name for the file name, as TensorBoard's own writers put it there; `localhost` when
/// it cannot be read. Characters outside `[A-Za-z0-9._-]` become `_` so the name stays one path part.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Writes one TensorBoard event file. Records are buffered; [`EventWriter::flush`] (and drop) pushes
/// them to the file, so call it at the end of each epoch for TensorBoard to see the epoch live.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, `events.out.tfevents.<secs>.<host>`, with
    /// `.1`, `.2`, ... appended if a file of that name exists (two writers in the same second), and
    /// writes the file-version event.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--tensorboard {}: cannot create the directory", dir.display()))?;
        let wall_time = now();
        let base = format!("events.out.tfevents.{:010}.{}", wall_time as u64, host_name());
        let mut n = 0usize;
        let (path, file) = loop {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("--tensorboard {}: cannot create the event file", path.display())
                    })
                }
            }
        };
        let mut w = EventWriter {
            path,
            file: BufWriter::new(file),
        };
        w.write_event(&file_version_event(wall_time))?;
        w.flush()?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_event(&mut self, event: &[u8]) -> Result<()> {
        self.file
            .write_all(&tfrecord(event))
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }

    /// A scalar at `step` (TensorBoard's x axis).
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f64) -> Result<()> {
        self.write_event(&scalar_event(now(), step, tag, value as f32))
    }

    /// A text (Markdown) at `step`, shown in TensorBoard's Text tab.
    pub fn add_text(&mut self, tag: &str, step: i64, text: &str) -> Result<()> {
        self.write_event(&text_event(now(), step, tag, text))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }
}

/// The tag of task `t` of an epoch's metrics: the task's name (`mnist`, `fashion-mnist`, or a
/// `--task` name), or `task<t>` where the metrics name no tasks (lines written before tasks could
/// be chosen name none: two tasks are then `mnist` and `fashion-mnist`).
pub fn task_tag(names: &[String], t: usize, tasks: usize) -> String {
    match split::task_names_or_legacy(names, tasks).get(t) {
        Some(name) => name.clone(),
        None => format!("task{t}"),
    }
}

/// Writes an epoch's metrics as scalars at step `m.epoch`: `loss/task`, `loss/total`,
/// `transport/layer<l>` and `density/layer<l>` for each spatial layer `l` (in `spatial_layers`, in
/// the order of `m.transport`), `accuracy/<task>` per task and `accuracy/mean`, then
/// `time/epoch_seconds` and `time/samples_per_second`; flushes.
pub fn log_epoch(writer: &mut EventWriter, m: &EpochMetrics, spatial_layers: &[usize]) -> Result<()> {
    let step = m.epoch as i64;
    writer.add_scalar("loss/task", step, m.task_loss)?;
    writer.add_scalar("loss/total", step, m.total_loss)?;
    for (&l, &t) in spatial_layers.iter().zip(&m.transport) {
        writer.add_scalar(&format!("transport/layer{l}"), step, t)?;
    }
    for (&l, &v) in spatial_layers.iter().zip(&m.density) {
        writer.add_scalar(&format!("density/layer{l}"), step, v)?;
    }
    let tasks = m.task_accuracy.len();
    for (t, &a) in m.task_accuracy.iter().enumerate() {
        writer.add_scalar(&format!("accuracy/{}", task_tag(&m.tasks, t, tasks)), step, a)?;
    }
    writer.add_scalar("accuracy/mean", step, m.accuracy)?;
    writer.add_scalar("time/epoch_seconds", step, m.seconds)?;
    writer.add_scalar("time/samples_per_second", step, m.samples_per_second)?;
    if let Some(q) = &m.modularity {
        if let Some(v) = q.task_modularity {
            writer.add_scalar("modularity/q_tasks", step, v)?;
        }
        for (l, share) in q.layers.iter().zip(&q.cross_share) {
            if let Some(v) = share {
                writer.add_scalar(&format!("modularity/cross_share_layer{l}"), step, *v)?;
            }
        }
        for (l, seg) in q.layers.iter().zip(&q.segregation) {
            if let Some(v) = seg {
                writer.add_scalar(&format!("modularity/segregation_layer{l}"), step, *v)?;
            }
        }
    }
    writer.flush()
}

/// Writes a run's configuration once, as a text at step 0 under the tag `config`: the JSON of
/// `config` in a Markdown code block (so TensorBoard keeps its line breaks).
pub fn log_config<T: serde::Serialize>(writer: &mut EventWriter, config: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(config).context("cannot serialise the configuration")?;
    let indented: String = json.lines().map(|l| format!("    {l}\n")).collect();
    writer.add_text("config", 0, &indented)?;
    writer.flush()
}
