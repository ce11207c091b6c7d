//! An animation of Figure 1's top view over training: one frame per history point, every frame on
//! the same axes (the box holding every position at every point), so that a neuron's drift is seen
//! as motion. GIF through the `gif` crate; MP4 through an `ffmpeg` on the `PATH`, fed raw RGB frames.

use super::{position_bounds, task_colour, Thresholds, TopView, CROSS_COLOUR};
use crate::history::History;
use crate::split;
use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters_backend::BackendCoord;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
/// The family name the embedded font is registered under (distinct from `figure`'s).
const FONT_FAMILY: &str = "spatial-gpu-viz";

fn register_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    if !*OK.get_or_init(|| plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()) {
        bail!("the embedded font could not be loaded");
    }
    Ok(())
}

/// How the animation looks.
#[derive(Clone, Debug)]
pub struct AnimateOptions {
    /// Frame size in pixels (width, height); both even, as H.264 wants.
    pub size: (u32, u32),
    /// Frames per second.
    pub fps: u32,
    /// The paper's filters by default.
    pub thresholds: Thresholds,
    /// Shown above every frame, followed by the frame's epoch and batch.
    pub title: String,
}

impl Default for AnimateOptions {
    fn default() -> Self {
        AnimateOptions {
            size: (800, 720),
            fps: 4,
            thresholds: Thresholds::default(),
            title: "top view".into(),
        }
    }
}

impl AnimateOptions {
    fn check(&self) -> Result<()> {
        let (w, h) = self.size;
        if !(200..=4000).contains(&w) || !(200..=4000).contains(&h) || w % 2 == 1 || h % 2 == 1 {
            bail!("frame size {w}x{h}: width and height must be even and within 200..=4000 pixels");
        }
        if !(1..=60).contains(&self.fps) {
            bail!("frame rate {}: must be within 1..=60 frames per second", self.fps);
        }
        Ok(())
    }
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// One filled marker per split layer, as in Figure 1: circle, triangle, square, diamond, star.
fn marker(k: usize, (x, y): BackendCoord, s: i32) -> Vec<BackendCoord> {
    match k % 5 {
        0 => (0..12)
            .map(|a| {
                let t = std::f64::consts::TAU * a as f64 / 12.0;
                (
                    x + (s as f64 * t.cos()).round() as i32,
                    y + (s as f64 * t.sin()).round() as i32,
                )
            })
            .collect(),
        1 => vec![(x, y - s - 1), (x + s + 1, y + s), (x - s - 1, y + s)],
        2 => vec![(x - s, y - s), (x + s, y - s), (x + s, y + s), (x - s, y + s)],
        3 => vec![(x, y - s - 2), (x + s + 1, y), (x, y + s + 2), (x - s - 1, y)],
        _ => (0..10)
            .map(|a| {
                let r = (s + 2) as f64 * if a % 2 == 0 { 1.0 } else { 0.45 };
                let t = std::f64::consts::PI * (a as f64 / 5.0 - 0.5);
                (x + (r * t.cos()).round() as i32, y + (r * t.sin()).round() as i32)
            })
            .collect(),
    }
}

fn draw_marker<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    k: usize,
    at: BackendCoord,
    fill: RGBColor,
) -> Result<()> {
    let poly = marker(k, at, 5);
    root.draw(&Polygon::new(poly.clone(), fill.filled()))
        .map_err(plot_err)?;
    let mut outline = poly.clone();
    outline.push(poly[0]);
    root.draw(&PathElement::new(outline, BLACK.mix(0.7).stroke_width(1)))
        .map_err(plot_err)
}

/// Draws frame `index` of `history` (Figure 1's top view at that point) onto `root`.
pub fn draw_frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &History,
    index: usize,
    options: &AnimateOptions,
) -> Result<()> {
    register_font()?;
    let point = history
        .points
        .get(index)
        .ok_or_else(|| anyhow!("frame {index}: the history has {} points", history.points.len()))?;
    let view = TopView::new(history, point, options.thresholds);
    let ((x0, x1), (y0, y1)) = position_bounds(history);
    root.fill(&WHITE).map_err(plot_err)?;
    let (w, h) = root.dim_in_pixel();
    let pad = 0.06 * (x1 - x0).max(y1 - y0).max(1e-3);
    // One unit as many pixels along x as along y, the legend's room on the right.
    let legend_w = (0.3 * w as f32).min(240.0);
    let px = (
        (w as f32 - 86.0 - legend_w).max(50.0),
        (h as f32 - 104.0).max(50.0),
    );
    let (bw, bh) = (x1 - x0 + 2.0 * pad, y1 - y0 + 2.0 * pad);
    let scale = (bw / px.0).max(bh / px.1);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let (hw, hh) = (scale * px.0 / 2.0, scale * px.1 / 2.0);
    let title = format!(
        "{}: epoch {}, batch {}",
        options.title, point.progress.epoch, point.progress.batch
    );
    // The title on the whole frame, the chart below it: a caption would be centred on the chart only.
    root.draw(&Text::new(
        title,
        (12, 8),
        (FONT_FAMILY, 18).into_font().color(&BLACK),
    ))
    .map_err(plot_err)?;
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .margin_top(40)
        .margin_right(12 + legend_w as u32)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (cx - hw) as f64..(cx + hw) as f64,
            (cy - hh) as f64..(cy + hh) as f64,
        )
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.06))
        .x_labels(5)
        .y_labels(5)
        .x_desc("x position")
        .y_desc("y position")
        .axis_desc_style((FONT_FAMILY, 15))
        .label_style((FONT_FAMILY, 12))
        .draw()
        .map_err(plot_err)?;
    let layers = history.split_layers();
    let pos = |k: usize, i: usize| {
        let p = &point.positions[layers[k]];
        (p[2 * i] as f64, p[2 * i + 1] as f64)
    };
    for (k, edges) in view.edges.iter().enumerate() {
        let max = edges.iter().map(|e| e.2).fold(0.0f32, f32::max).max(1e-12);
        chart
            .draw_series(edges.iter().map(|&(i, j, a, ti, tj)| {
                let colour = if ti == tj {
                    rgb(task_colour(ti))
                } else {
                    rgb(CROSS_COLOUR)
                };
                let alpha = 0.04 + 0.5 * (a / max).min(1.0) as f64;
                PathElement::new(vec![pos(k, i), pos(k + 1, j)], colour.mix(alpha).stroke_width(1))
            }))
            .map_err(plot_err)?;
    }
    for (k, neurons) in view.neurons.iter().enumerate() {
        for &(_, x, y, t) in neurons {
            let at = chart.backend_coord(&(x as f64, y as f64));
            draw_marker(root, k, at, rgb(task_colour(t)))?;
        }
    }
    // Legend: tasks, then one marker per layer with how many of its neurons are drawn.
    let lx = w as i32 - legend_w as i32 + 4;
    let mut ly = 60;
    let font = (FONT_FAMILY, 14).into_font().color(&BLACK);
    for t in 0..history.model.heads {
        root.draw(&Rectangle::new(
            [(lx, ly - 5), (lx + 10, ly + 5)],
            rgb(task_colour(t)).filled(),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            format!("task {t}: {}", split::task_name(&history.model.task_names(), t)),
            (lx + 18, ly - 7),
            font.clone(),
        ))
        .map_err(plot_err)?;
        ly += 22;
    }
    for (k, &l) in layers.iter().enumerate() {
        draw_marker(root, k, (lx + 5, ly), WHITE)?;
        let label = format!(
            "layer {l}: {} of {}",
            view.neurons[k].len(),
            history.model.sizes[l]
        );
        root.draw(&Text::new(label, (lx + 18, ly - 7), font.clone()))
            .map_err(plot_err)?;
        ly += 22;
    }
    root.draw(&PathElement::new(
        vec![(lx - 2, ly), (lx + 12, ly)],
        rgb(CROSS_COLOUR).stroke_width(2),
    ))
    .map_err(plot_err)?;
    root.draw(&Text::new("across tasks", (lx + 18, ly - 7), font))
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Renders every frame as packed RGB (`width * height * 3` bytes each), in history order.
pub fn render_frames(history: &History, options: &AnimateOptions) -> Result<Vec<Vec<u8>>> {
    options.check()?;
    if history.points.is_empty() {
        bail!("the history has no points: nothing to animate");
    }
    let (w, h) = options.size;
    (0..history.points.len())
        .map(|i| {
            let mut buf = vec![0u8; (w * h * 3) as usize];
            draw_frame(
                &BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
                history,
                i,
                options,
            )
            .with_context(|| format!("frame {i}"))?;
            Ok(buf)
        })
        .collect()
}

/// Writes the animation as a looping GIF at `path` (the last frame held three times as long).
pub fn write_gif(history: &History, path: &Path, options: &AnimateOptions) -> Result<()> {
    let frames = render_frames(history, options)?;
    let (w, h) = options.size;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = gif::Encoder::new(std::io::BufWriter::new(file), w as u16, h as u16, &[])
        .with_context(|| format!("cannot write {}", path.display()))?;
    encoder
        .set_repeat(gif::Repeat::Infinite)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let delay = (100 / options.fps).max(1) as u16;
    let n = frames.len();
    for (i, rgb) in frames.iter().enumerate() {
        // Speed 10 of NeuQuant's 1..=30: a good palette for line art in tens of ms per frame.
        let mut frame = gif::Frame::from_rgb_speed(w as u16, h as u16, rgb, 10);
        frame.delay = if i + 1 == n { 3 * delay } else { delay };
        encoder
            .write_frame(&frame)
            .with_context(|| format!("cannot write frame {i} to {}", path.display()))?;
    }
    Ok(())
}

/// The `ffmpeg` binary on the `PATH`, if any.
pub fn find_ffmpeg() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
}

/// Writes the animation as an H.264 (or the build's default codec) MP4 at `path` through `ffmpeg`.
/// Errors, saying so, when no `ffmpeg` is on the `PATH`.
pub fn write_mp4(history: &History, path: &Path, options: &AnimateOptions) -> Result<()> {
    let Some(ffmpeg) = find_ffmpeg() else {
        bail!(
            "cannot write {}: no `ffmpeg` on the PATH (install it, or write only the GIF)",
            path.display()
        );
    };
    let frames = render_frames(history, options)?;
    let (w, h) = options.size;
    let mut child = Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
        ])
        .args([
            "-s",
            &format!("{w}x{h}"),
            "-r",
            &options.fps.to_string(),
            "-i",
            "-",
        ])
        .args(["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", ffmpeg.display()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let fed = frames.iter().try_for_each(|f| stdin.write_all(f));
    drop(stdin);
    let out = child
        .wait_with_output()
        .with_context(|| format!("{} did not finish", ffmpeg.display()))?;
    if !out.status.success() || fed.is_err() {
        bail!(
            "{} could not write {} ({}): {}",
            ffmpeg.display(),
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
