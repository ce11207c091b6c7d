//! Figures 1 and 2 of the paper for a trained model, as PNG and SVG (drawn with `plotters`).
//!
//! - **Figure 1** (top view): the neurons of the split layers at their 2-D positions, all layers in one
//!   plane, coloured by the task the greedy split gives them, one marker shape per layer; connections
//!   between consecutive split layers as thin lines: in the task colour when both ends share a task,
//!   dark grey when they cross between tasks, drawn above the others (they are what the figure is
//!   about); more opaque when stronger. The axes fit the drawn neurons at equal scale.
//! - **Figure 2** (perspective): the same neurons and connections, each split layer on its own slice
//!   along a depth axis, the output layer last (rightmost), seen by a perspective camera.
//!
//! The paper's filters (its footnote 4) are the defaults: a neuron is drawn only if its summed
//! |input weight| exceeds 0.1, a connection only if its |w| exceeds 0.01 and both its ends are drawn.
//!
//! Beside the plot a legend column, under it a caption with the split's accuracy drop and the
//! segregation p-values (`legend.rs`).
//!
//! Text uses DejaVu Sans, embedded in the binary (see `assets/DejaVuSans-LICENSE.txt`), so no system
//! font is needed.

use crate::config::ModelConfig;
mod legend;

use crate::model::Params;
use crate::split::{self, Assignment};
use anyhow::{anyhow, bail, Context, Result};
pub use legend::Caption;
use legend::{Marker, Shape, SHAPES};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A 2-D chart in `f64` coordinates.
type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the embedded font as plotters' `sans-serif` (once per process).
pub fn register_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok =
        *OK.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if !ok {
        bail!("the embedded font could not be loaded");
    }
    Ok(())
}

/// Task colours, ten for up to ten tasks (a qualitative palette: Tableau 10's order, blue, orange,
/// green, red, purple, brown, pink, cyan, then olive and navy in place of its grey, which would read
/// as a connection across tasks). Beyond ten tasks the colours repeat.
pub const TASK_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(0, 0, 128),
];
/// Connections across tasks: near-black, unlike every task colour.
pub const CROSS_COLOUR: RGBColor = RGBColor(40, 40, 40);

pub fn task_colour(t: usize) -> RGBColor {
    TASK_COLOURS[t % TASK_COLOURS.len()]
}

/// What the figures show, computed once from a model.
#[derive(Clone, Debug)]
pub struct FigureData {
    /// The split layers, increasing.
    pub layers: Vec<usize>,
    /// Number of tasks.
    pub tasks: usize,
    /// The tasks' names, in head order (the legend's labels).
    pub task_names: Vec<String>,
    /// `neurons[k]`: the drawn neurons of `layers[k]`: `(index, x, y, task)`.
    pub neurons: Vec<Vec<(usize, f64, f64, usize)>>,
    /// `edges[k]`: drawn connections from `layers[k]` to `layers[k + 1]`:
    /// `(from index, to index, |w|)` (indices into the layers' neurons, not into `neurons[k]`).
    pub edges: Vec<Vec<(usize, usize, f64)>>,
    /// All positions of each split layer, `(N, 2)`, and the task of each neuron.
    positions: Vec<Vec<f32>>,
    groups: Vec<Vec<usize>>,
    /// Neurons of each split layer before the filter.
    pub totals: Vec<usize>,
    pub title: String,
    /// Lines under the figure (the split's drop and segregation p-values, see [`Caption`]).
    pub caption: Vec<String>,
    filters: Filters,
}

/// The paper's filters, adjustable.
#[derive(Clone, Copy, Debug)]
pub struct Filters {
    /// Draw a neuron only if its summed |input weight| exceeds this.
    pub min_input: f64,
    /// Draw a connection only if its |w| exceeds this.
    pub min_weight: f64,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            min_input: 0.1,
            min_weight: 0.01,
        }
    }
}

impl FigureData {
    pub fn new(
        model: &ModelConfig,
        params: &Params,
        assignment: &Assignment,
        filters: Filters,
        title: String,
    ) -> Self {
        let layers = assignment.layers.clone();
        let mut neurons = Vec::new();
        let mut kept = Vec::new();
        let mut positions = Vec::new();
        let mut totals = Vec::new();
        for (&l, g) in layers.iter().zip(&assignment.groups) {
            let n_in = model.sizes[l - 1];
            let w = params.weight(l);
            let p = params.position(l);
            let keep: Vec<bool> = (0..model.sizes[l])
                .map(|j| {
                    w[j * n_in..(j + 1) * n_in]
                        .iter()
                        .map(|v| v.abs() as f64)
                        .sum::<f64>()
                        > filters.min_input
                })
                .collect();
            neurons.push(
                (0..model.sizes[l])
                    .filter(|&j| keep[j])
                    .map(|j| (j, p[2 * j] as f64, p[2 * j + 1] as f64, g[j]))
                    .collect::<Vec<_>>(),
            );
            kept.push(keep);
            positions.push(p.to_vec());
            totals.push(model.sizes[l]);
        }
        let mut edges = Vec::new();
        for k in 0..layers.len().saturating_sub(1) {
            let (l, n_in) = (layers[k + 1], model.sizes[layers[k]]);
            let w = params.weight(l);
            let mut e = Vec::new();
            for j in 0..model.sizes[l] {
                if !kept[k + 1][j] {
                    continue;
                }
                for i in 0..n_in {
                    let a = w[j * n_in + i].abs() as f64;
                    if kept[k][i] && a > filters.min_weight {
                        e.push((i, j, a));
                    }
                }
            }
            edges.push(e);
        }
        FigureData {
            layers,
            tasks: assignment.tasks,
            task_names: model.task_names(),
            neurons,
            edges,
            positions,
            groups: assignment.groups.clone(),
            totals,
            title,
            caption: Vec::new(),
            filters,
        }
    }

    pub(crate) fn pos(&self, k: usize, i: usize) -> (f64, f64) {
        (
            self.positions[k][2 * i] as f64,
            self.positions[k][2 * i + 1] as f64,
        )
    }
    pub(crate) fn task(&self, k: usize, i: usize) -> usize {
        self.groups[k][i]
    }
    pub(crate) fn shape(&self, k: usize) -> Shape {
        SHAPES[k % SHAPES.len()]
    }
    pub(crate) fn layer_label(&self, k: usize) -> String {
        let l = self.layers[k];
        let out = if k + 1 == self.layers.len() {
            ", output"
        } else {
            ""
        };
        format!(
            "layer {l}{out} ({}): {} of {}",
            self.shape(k).name(),
            self.neurons[k].len(),
            self.totals[k]
        )
    }
    /// Whether connection `i -> j` from `layers[k]` to `layers[k + 1]` joins neurons of two tasks.
    pub(crate) fn crosses(&self, k: usize, i: usize, j: usize) -> bool {
        self.task(k, i) != self.task(k + 1, j)
    }
    /// Line style of a connection: the task colour if both ends share a task, else the cross-task
    /// colour; opacity grows with |w| relative to the strongest drawn connection of its layer pair.
    fn edge_style(&self, k: usize, i: usize, j: usize, a: f64, max: f64) -> ShapeStyle {
        let strength = (a / max.max(1e-12)).min(1.0);
        if self.crosses(k, i, j) {
            cross_style(strength)
        } else {
            within_style(task_colour(self.task(k, i)), strength)
        }
    }
    /// Strongest drawn connection of each layer pair.
    fn edge_max(&self) -> Vec<f64> {
        self.edges
            .iter()
            .map(|e| e.iter().map(|x| x.2).fold(0.0, f64::max))
            .collect()
    }
    /// Every drawn connection as `(layer pair k, from, to, style)`, within-task ones first so that
    /// the cross-task ones, the figure's point, are drawn above them.
    fn styled_edges(&self) -> Vec<(usize, usize, usize, ShapeStyle)> {
        let max = self.edge_max();
        let mut out: Vec<(bool, usize, usize, usize, ShapeStyle)> = self
            .edges
            .iter()
            .enumerate()
            .flat_map(|(k, e)| e.iter().map(move |&(i, j, a)| (k, i, j, a)))
            .map(|(k, i, j, a)| {
                (
                    self.crosses(k, i, j),
                    k,
                    i,
                    j,
                    self.edge_style(k, i, j, a, max[k]),
                )
            })
            .collect();
        // Stable: the order within each group stays the layer-pair order.
        out.sort_by_key(|e| e.0);
        out.into_iter().map(|(_, k, i, j, s)| (k, i, j, s)).collect()
    }
}

/// Style of a connection within task colour `colour` at relative strength `s` in [0, 1].
pub fn within_style(colour: RGBColor, s: f64) -> ShapeStyle {
    ShapeStyle::from(colour.mix(0.04 + 0.5 * s)).stroke_width(1)
}

/// Style of a connection across tasks at relative strength `s` in [0, 1]: darker and more opaque
/// than the within-task lines, so that it stands out above them.
pub fn cross_style(s: f64) -> ShapeStyle {
    ShapeStyle::from(CROSS_COLOUR.mix(0.03 + 0.67 * s)).stroke_width(1)
}

/// A tick label with the digits the axis span needs (no `-0`).
fn tick_label(v: f64, span: f64) -> String {
    let digits = if span >= 8.0 {
        0
    } else if span >= 0.8 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

pub(crate) fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Expands `(lo, hi)` ranges so that one unit is as many pixels along x as along y.
fn equal_aspect(x: (f64, f64), y: (f64, f64), px: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let (w, h) = ((x.1 - x.0).max(1e-9), (y.1 - y.0).max(1e-9));
    let scale = (w / px.0).max(h / px.1);
    let (cx, cy) = ((x.0 + x.1) / 2.0, (y.0 + y.1) / 2.0);
    let (hw, hh) = (scale * px.0 / 2.0, scale * px.1 / 2.0);
    ((cx - hw, cx + hw), (cy - hh, cy + hh))
}

const FIG2_SIZE: (u32, u32) = (1450, 840);
/// Figure 1's plot: margin, the label areas under and left of it, and its width in pixels.
const FIG1_MARGIN: u32 = 16;
const FIG1_X_LABELS: u32 = 50;
const FIG1_Y_LABELS: u32 = 60;
const FIG1_PLOT_WIDTH: u32 = 800;

impl FigureData {
    /// The drawn neurons' bounding box, padded by 4 % of its larger side: Figure 1's axes.
    fn top_view_bounds(&self) -> ((f64, f64), (f64, f64)) {
        let all: Vec<(f64, f64)> = self
            .neurons
            .iter()
            .flatten()
            .map(|n| (n.1, n.2))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        if all.is_empty() {
            return ((-1.0, 1.0), (-1.0, 1.0));
        }
        let lo_hi = |f: fn(&(f64, f64)) -> f64| {
            let lo = all.iter().map(f).fold(f64::INFINITY, f64::min);
            let hi = all.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        let (x, y) = (lo_hi(|p| p.0), lo_hi(|p| p.1));
        let pad = 0.04 * (x.1 - x.0).max(y.1 - y.0).max(1e-3);
        ((x.0 - pad, x.1 + pad), (y.0 - pad, y.1 + pad))
    }

    /// Figure 1's size in pixels: the plot as wide as `FIG1_PLOT_WIDTH` and as high as the data's
    /// aspect ratio asks (within 0.5 and 1.3 of its width), plus the legend column, title and caption.
    pub fn top_view_size(&self) -> (u32, u32) {
        let (x, y) = self.top_view_bounds();
        let ratio = ((y.1 - y.0) / (x.1 - x.0)).clamp(0.5, 1.3);
        let plot_h = (FIG1_PLOT_WIDTH as f64 * ratio).round() as u32;
        let w = FIG1_PLOT_WIDTH + 2 * FIG1_MARGIN + FIG1_Y_LABELS + legend::LEGEND_WIDTH;
        let h = plot_h + 2 * FIG1_MARGIN + FIG1_X_LABELS + legend::TITLE_HEIGHT + self.caption_height();
        (
            w,
            h.max(legend::legend_height(self) + legend::TITLE_HEIGHT + self.caption_height()),
        )
    }

    pub(crate) fn filters(&self) -> Filters {
        self.filters
    }

    fn caption_height(&self) -> u32 {
        legend::caption_height(&self.caption)
    }
}

/// Figure 1 on any plotters drawing area.
pub fn draw_top_view<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &FigureData) -> Result<()> {
    let plot = legend::layout(root, fig)?;
    let (w, h) = plot.dim_in_pixel();
    let px = (
        w.saturating_sub(2 * FIG1_MARGIN + FIG1_Y_LABELS).max(1) as f64,
        h.saturating_sub(2 * FIG1_MARGIN + FIG1_X_LABELS).max(1) as f64,
    );
    let (bx, by) = fig.top_view_bounds();
    let (xr, yr) = equal_aspect(bx, by, px);
    let mut chart = ChartBuilder::on(&plot)
        .margin(FIG1_MARGIN)
        .x_label_area_size(FIG1_X_LABELS)
        .y_label_area_size(FIG1_Y_LABELS)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(plot_err)?;
    let span = (xr.1 - xr.0).max(yr.1 - yr.0);
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.06))
        .x_desc("x position")
        .y_desc("y position")
        .x_label_formatter(&|v| tick_label(*v, span))
        .y_label_formatter(&|v| tick_label(*v, span))
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(
            fig.styled_edges()
                .into_iter()
                .map(|(k, i, j, style)| PathElement::new(vec![fig.pos(k, i), fig.pos(k + 1, j)], style)),
        )
        .map_err(plot_err)?;
    for (k, neurons) in fig.neurons.iter().enumerate() {
        let shape = fig.shape(k);
        chart
            .draw_series(neurons.iter().map(|&(_, x, y, t)| Marker {
                at: (x, y),
                shape,
                size: 5,
                fill: task_colour(t),
            }))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// A perspective camera looking at the centre of the slices.
struct Camera {
    eye: [f64; 3],
    right: [f64; 3],
    up: [f64; 3],
    forward: [f64; 3],
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn unit(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

impl Camera {
    /// Camera at `distance` from `centre`, `azimuth` around the vertical axis from the depth axis
    /// and `elevation` above the horizontal (radians). World: x = depth, y = the neurons' x, z = the
    /// neurons' y (up).
    fn new(centre: [f64; 3], distance: f64, azimuth: f64, elevation: f64) -> Camera {
        let dir = [
            elevation.cos() * azimuth.cos(),
            elevation.cos() * azimuth.sin(),
            elevation.sin(),
        ];
        let eye = [
            centre[0] + distance * dir[0],
            centre[1] + distance * dir[1],
            centre[2] + distance * dir[2],
        ];
        let forward = unit(sub(centre, eye));
        let right = unit(cross(forward, [0.0, 0.0, 1.0]));
        let up = cross(right, forward);
        Camera {
            eye,
            right,
            up,
            forward,
        }
    }
    /// Screen coordinates (x right, y up) of a world point.
    fn project(&self, p: [f64; 3]) -> (f64, f64) {
        let v = sub(p, self.eye);
        let depth = dot(v, self.forward).max(1e-6);
        (dot(v, self.right) / depth, dot(v, self.up) / depth)
    }
}

/// Figure 2 on any plotters drawing area.
pub fn draw_perspective<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &FigureData) -> Result<()> {
    let plot = legend::layout(root, fig)?;
    // Half-width of every slice: the largest |coordinate| of any neuron of the split layers.
    let half = fig
        .positions
        .iter()
        .flatten()
        .fold(0.0f64, |m, &v| m.max((v as f64).abs()))
        .max(1e-3)
        * 1.08;
    let gap = 2.2 * half;
    let n = fig.layers.len();
    let depth = |k: usize| k as f64 * gap;
    let centre = [depth(n - 1) / 2.0, 0.0, 0.0];
    let extent = depth(n - 1) / 2.0 + half;
    // Seen from the front-left and a little above, so that the slices fan out to the right.
    let cam = Camera::new(centre, 3.2 * extent, -1.0, 0.35);
    let world = |k: usize, x: f64, y: f64| [depth(k), x, y];
    let proj = |k: usize, x: f64, y: f64| cam.project(world(k, x, y));

    let corners = |k: usize| -> Vec<(f64, f64)> {
        [(-half, -half), (half, -half), (half, half), (-half, half)]
            .iter()
            .map(|&(x, y)| proj(k, x, y))
            .collect()
    };
    let mut all: Vec<(f64, f64)> = (0..n).flat_map(corners).collect();
    let axis_y = -half * 1.25;
    let axis_start = proj(0, -half, axis_y);
    let axis_end = proj(n - 1, -half, axis_y);
    all.extend([axis_start, axis_end, proj(n - 1, half, axis_y)]);
    let margin = 16u32;
    let (w, h) = plot.dim_in_pixel();
    let px = (
        w.saturating_sub(2 * margin).max(1) as f64,
        h.saturating_sub(2 * margin).max(1) as f64,
    );
    let lo_x = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi_x = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let lo_y = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi_y = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let span = (hi_x - lo_x).max(hi_y - lo_y);
    let (xr, yr) = equal_aspect(
        (lo_x - 0.03 * span, hi_x + 0.03 * span),
        (lo_y - 0.06 * span, hi_y + 0.03 * span),
        px,
    );
    let mut chart = ChartBuilder::on(&plot)
        .margin(margin)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(plot_err)?;

    // Slices, back to front is not needed: they are translucent.
    for k in 0..n {
        let c = corners(k);
        chart
            .draw_series(std::iter::once(Polygon::new(
                c.clone(),
                RGBColor(90, 110, 160).mix(0.07),
            )))
            .map_err(plot_err)?;
        let mut outline = c.clone();
        outline.push(c[0]);
        chart
            .draw_series(std::iter::once(PathElement::new(
                outline,
                BLACK.mix(0.35).stroke_width(1),
            )))
            .map_err(plot_err)?;
        let label_at = proj(k, -half, half * 1.06);
        let out = if k + 1 == n { " (output)" } else { "" };
        chart
            .draw_series(std::iter::once(Text::new(
                format!("layer {}{out}", fig.layers[k]),
                label_at,
                ("sans-serif", 16).into_font().color(&BLACK),
            )))
            .map_err(plot_err)?;
    }
    chart
        .draw_series(fig.styled_edges().into_iter().map(|(k, i, j, style)| {
            let (pi, pj) = (fig.pos(k, i), fig.pos(k + 1, j));
            PathElement::new(vec![proj(k, pi.0, pi.1), proj(k + 1, pj.0, pj.1)], style)
        }))
        .map_err(plot_err)?;
    for (k, neurons) in fig.neurons.iter().enumerate() {
        let shape = fig.shape(k);
        chart
            .draw_series(neurons.iter().map(|&(_, x, y, t)| Marker {
                at: proj(k, x, y),
                shape,
                size: 4,
                fill: task_colour(t),
            }))
            .map_err(plot_err)?;
    }

    // Axes: the depth axis under the slices with a tick per layer, and x, y arrows on the first slice.
    let axis_style = BLACK.mix(0.8).stroke_width(2);
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![axis_start, axis_end],
            axis_style,
        )))
        .map_err(plot_err)?;
    arrow_head(&mut chart, axis_start, axis_end, span * 0.015)?;
    for k in 0..n {
        let t0 = proj(k, -half, axis_y);
        let t1 = proj(k, -half, axis_y + 0.08 * half);
        chart
            .draw_series(std::iter::once(PathElement::new(vec![t0, t1], axis_style)))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{}", fig.layers[k]),
                proj(k, -half, axis_y - 0.05 * half),
                ("sans-serif", 15)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            )))
            .map_err(plot_err)?;
    }
    let mid = proj(n - 1, -half, axis_y - 0.3 * half);
    let first = proj(0, -half, axis_y - 0.3 * half);
    chart
        .draw_series(std::iter::once(Text::new(
            "depth (layer) →",
            ((first.0 + mid.0) / 2.0, (first.1 + mid.1) / 2.0),
            ("sans-serif", 17)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        )))
        .map_err(plot_err)?;
    let o = (-half, -half);
    let len = 0.35 * half;
    for (end, label) in [((o.0 + len, o.1), "x position"), ((o.0, o.1 + len), "y position")] {
        let (a, b) = (proj(0, o.0, o.1), proj(0, end.0, end.1));
        chart
            .draw_series(std::iter::once(PathElement::new(vec![a, b], axis_style)))
            .map_err(plot_err)?;
        arrow_head(&mut chart, a, b, span * 0.012)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                b,
                ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Bottom)),
            )))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

fn arrow_head<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart2d<'a, DB>,
    from: (f64, f64),
    to: (f64, f64),
    size: f64,
) -> Result<()> {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let n = (dx * dx + dy * dy).sqrt().max(1e-12);
    let (ux, uy) = (dx / n, dy / n);
    let back = (to.0 - ux * size, to.1 - uy * size);
    let left = (back.0 - uy * size * 0.5, back.1 + ux * size * 0.5);
    let right = (back.0 + uy * size * 0.5, back.1 - ux * size * 0.5);
    chart
        .draw_series(std::iter::once(Polygon::new(
            vec![to, left, right],
            BLACK.mix(0.8),
        )))
        .map_err(plot_err)?;
    Ok(())
}

/// Draws Figures 1 and 2 of a model into `out` as `figure1.{png,svg}` and `figure2.{png,svg}`;
/// returns the paths written. The caption line says that the split was not analysed; see
/// [`write_figures_with_caption`].
pub fn write_figures(
    model: &ModelConfig,
    params: &Params,
    title: &str,
    out: &Path,
    filters: Filters,
) -> Result<Vec<PathBuf>> {
    write_figures_with_caption(model, params, title, None, out, filters)
}

/// [`write_figures`] with the split's numbers under the figures: `caption` from the run's
/// `split.json` ([`Caption::read_run`]) or from a fresh [`split::analyse`] ([`Caption::from_report`]).
pub fn write_figures_with_caption(
    model: &ModelConfig,
    params: &Params,
    title: &str,
    caption: Option<&Caption>,
    out: &Path,
    filters: Filters,
) -> Result<Vec<PathBuf>> {
    register_font()?;
    let lines = Caption::lines_of(caption);
    let assignment = split::assign(model, params);
    let mut written = Vec::new();
    let mut fig1 = FigureData::new(
        model,
        params,
        &assignment,
        filters,
        format!("Figure 1: top view, {title}"),
    );
    fig1.caption = lines.clone();
    let mut fig2 = FigureData::new(
        model,
        params,
        &assignment,
        filters,
        format!("Figure 2: perspective, {title}"),
    );
    fig2.caption = lines;
    let draws: [(&str, &FigureData, (u32, u32), bool); 2] = [
        ("figure1", &fig1, fig1.top_view_size(), true),
        ("figure2", &fig2, FIG2_SIZE, false),
    ];
    // One drawing routine per figure, run on each output backend (PNG and SVG).
    fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &FigureData, top: bool) -> Result<()> {
        if top {
            draw_top_view(&root, fig)
        } else {
            draw_perspective(&root, fig)
        }
    }
    for (name, fig, size, top) in draws {
        let png = out.join(format!("{name}.png"));
        draw(BitMapBackend::new(&png, size).into_drawing_area(), fig, top)
            .with_context(|| format!("cannot draw {}", png.display()))?;
        written.push(png);
        let svg = out.join(format!("{name}.svg"));
        draw(SVGBackend::new(&svg, size).into_drawing_area(), fig, top)
            .with_context(|| format!("cannot draw {}", svg.display()))?;
        written.push(svg);
    }
    Ok(written)
}
