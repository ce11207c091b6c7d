//! The interactive viewer: one self-contained HTML file (inline script, style and data; it loads
//! nothing, so it opens offline and can be mailed) showing a history's top view and layered
//! perspective, with an epoch slider, hover details, the paper's thresholds as sliders and a switch
//! for connections across tasks. `docs/VIEWER.md` is the user's guide.
//!
//! The data is inline JSON; each array is the base64 of its little-endian bytes (`f32`, `u32`, `u8`),
//! a third of the size of JSON numbers and decoded by the browser in one pass.

use super::{Thresholds, TASK_COLOURS};
use crate::history::History;
use crate::split;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const TEMPLATE: &str = include_str!("../../assets/viewer.html");
const SCRIPT: &str = include_str!("../../assets/viewer.js");
const STYLE: &str = include_str!("../../assets/viewer.css");

/// What a viewer shows besides the history.
#[derive(Clone, Debug)]
pub struct ViewerOptions {
    pub title: String,
    /// The sliders' initial values (the paper's 0.1 and 0.01 by default).
    pub thresholds: Thresholds,
    /// At most this many points (evenly spaced, first and last kept): bounds the file's size.
    pub max_points: usize,
    /// At most this many connections per layer pair and point (the strongest): bounds drawing time.
    pub max_connections: usize,
}

impl Default for ViewerOptions {
    fn default() -> Self {
        ViewerOptions {
            title: "spatial-gpu history".into(),
            thresholds: Thresholds::default(),
            max_points: 400,
            max_connections: 20_000,
        }
    }
}

/// Per-neuron numbers known besides the history, shown on hover.
#[derive(Clone, Debug, Default)]
pub struct NeuronInfo {
    /// Split layer `l` -> for each of its neurons, the drop in its task's test accuracy (a fraction,
    /// 0.02 = 2 points) when that neuron alone is switched off, measured on the final network.
    pub accuracy_drop: BTreeMap<usize, Vec<f32>>,
}

fn b64<T: bytemuck::Pod>(v: &[T]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: &[u8] = bytemuck::cast_slice(v);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Indices of at most `max` of `n` points, evenly spaced, the first and the last always kept.
fn subsample(n: usize, max: usize) -> Vec<usize> {
    if n <= max.max(2) {
        return (0..n).collect();
    }
    let max = max.max(2);
    let mut out: Vec<usize> = (0..max)
        .map(|k| (k * (n - 1) + (max - 1) / 2) / (max - 1))
        .collect();
    out.dedup();
    out
}

/// The viewer's data (the JSON the page reads), for tests and other front ends.
pub fn viewer_data(history: &History, info: &NeuronInfo, options: &ViewerOptions) -> Result<Value> {
    if history.points.is_empty() {
        bail!("the history has no points: nothing to view");
    }
    let layers = history.split_layers();
    let sizes = &history.model.sizes;
    for (&l, drops) in &info.accuracy_drop {
        let Some(_) = layers.iter().position(|&x| x == l) else {
            bail!("accuracy drops given for layer {l}, which is not a split layer ({layers:?})");
        };
        if drops.len() != sizes[l] {
            bail!(
                "accuracy drops for layer {l}: {} values, the layer has {} neurons",
                drops.len(),
                sizes[l]
            );
        }
    }
    let last = sizes.len() - 1;
    let points: Vec<Value> = subsample(history.points.len(), options.max_points)
        .into_iter()
        .map(|k| {
            let p = &history.points[k];
            let conn: Vec<Value> = p
                .connections
                .iter()
                .map(|c| {
                    let mut order: Vec<usize> = (0..c.len()).collect();
                    if order.len() > options.max_connections {
                        order.sort_by(|&a, &b| {
                            c.weight[b].abs().total_cmp(&c.weight[a].abs()).then(a.cmp(&b))
                        });
                        order.truncate(options.max_connections);
                        order.sort_unstable();
                    }
                    let pick = |v: &[u32]| order.iter().map(|&e| v[e]).collect::<Vec<u32>>();
                    let w: Vec<f32> = order.iter().map(|&e| c.weight[e]).collect();
                    json!({"from": b64(&pick(&c.from)), "to": b64(&pick(&c.to)), "w": b64(&w)})
                })
                .collect();
            json!({
                "epoch": p.progress.epoch,
                "batch": p.progress.batch,
                "pos": layers.iter().map(|&l| b64(&p.positions[l])).collect::<Vec<_>>(),
                "inc": layers.iter().map(|&l| b64(&p.incoming[l - 1])).collect::<Vec<_>>(),
                "out": layers.iter().map(|&l| (l < last).then(|| b64(&p.outgoing[l]))).collect::<Vec<_>>(),
                "task": p.tasks.iter().map(|t| b64(t)).collect::<Vec<_>>(),
                "conn": conn,
            })
        })
        .collect();
    let m = history.model.heads;
    Ok(json!({
        "title": options.title,
        "tasks": m,
        "taskNames": (0..m).map(|t| split::task_name(&history.model.task_names(), t)).collect::<Vec<_>>(),
        "colours": TASK_COLOURS.iter().map(|&(r, g, b)| [r, g, b]).collect::<Vec<_>>(),
        "cross": [super::CROSS_COLOUR.0, super::CROSS_COLOUR.1, super::CROSS_COLOUR.2],
        "layers": layers.iter().map(|&l| json!({"layer": l, "size": sizes[l]})).collect::<Vec<_>>(),
        "thresholds": {"minInput": options.thresholds.min_input, "minWeight": options.thresholds.min_weight},
        "accuracyDrop": layers.iter().map(|l| info.accuracy_drop.get(l).map(|d| b64(d))).collect::<Vec<_>>(),
        "points": points,
    }))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The viewer page as a string.
pub fn render_html(history: &History, info: &NeuronInfo, options: &ViewerOptions) -> Result<String> {
    let data = viewer_data(history, info, options)?.to_string();
    // Inside <script>, only "</" can end the element early; JSON allows "<\/" for it.
    let data = data.replace("</", "<\\/");
    // One pass over the template in the order of its placeholders: a value that happens to contain
    // a later placeholder's text is never substituted again.
    let title = escape_html(&options.title);
    let mut out = String::with_capacity(TEMPLATE.len() + SCRIPT.len() + STYLE.len() + data.len());
    let mut rest = TEMPLATE;
    for (placeholder, value) in [
        ("__TITLE__", title.as_str()),
        ("/*__VIEWER_CSS__*/", STYLE),
        ("__VIEWER_DATA__", data.as_str()),
        ("/*__VIEWER_JS__*/", SCRIPT),
    ] {
        let at = rest
            .find(placeholder)
            .expect("the viewer template has each placeholder once, in this order");
        out.push_str(&rest[..at]);
        out.push_str(value);
        rest = &rest[at + placeholder.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes the viewer for `history` to `path` (one self-contained HTML file).
pub fn write_html(history: &History, info: &NeuronInfo, path: &Path, options: &ViewerOptions) -> Result<()> {
    let html = render_html(history, info, options)?;
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))
}
