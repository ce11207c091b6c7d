//! Training curves of a run, from its `metrics.jsonl`: a PNG and an SVG of four panels (task and
//! total loss, transport cost T per spatial layer, density cost V per spatial layer, test accuracy
//! per task), and `metrics.csv`, the same numbers as a table for spreadsheets and pandas.

use crate::checkpoint;
use crate::figure::{plot_err, register_font, task_colour};
use crate::split;
use crate::train::{self, EpochMetrics, Summary};
use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Reads a run's `metrics.jsonl`: one [`EpochMetrics`] per line, in file order. Errors name the file
/// and the line; every line must have as many layers and tasks as the first.
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = train::metrics_path(dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--model {}: cannot read {} (train a model there first)",
            dir.display(),
            path.display()
        )
    })?;
    let mut out: Vec<EpochMetrics> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let m: EpochMetrics = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a metrics line", path.display(), i + 1))?;
        if let Some(first) = out.first() {
            let shape = |m: &EpochMetrics| (m.transport.len(), m.density.len(), m.task_accuracy.len());
            if shape(&m) != shape(first) {
                bail!(
                    "{} line {}: {} transport, {} density and {} accuracy values, but the first line has {}, {} and {}",
                    path.display(),
                    i + 1,
                    m.transport.len(),
                    m.density.len(),
                    m.task_accuracy.len(),
                    first.transport.len(),
                    first.density.len(),
                    first.task_accuracy.len()
                );
            }
        }
        out.push(m);
    }
    if out.is_empty() {
        bail!("{}: no epoch recorded yet", path.display());
    }
    Ok(out)
}

/// The spatial layers of the run in `dir`, from `summary.json` or else the checkpoint; `None` when
/// neither can be read (the curves then name the layers by position).
fn spatial_layers_of(dir: &Path) -> Option<Vec<usize>> {
    let from_summary = std::fs::read_to_string(train::summary_path(dir))
        .ok()
        .and_then(|s| serde_json::from_str::<Summary>(&s).ok())
        .map(|s| s.model.spatial_layers);
    from_summary.or_else(|| {
        checkpoint::load(&train::checkpoint_path(dir))
            .ok()
            .map(|c| c.model.spatial_layers)
    })
}

/// Names of the `n` spatial layers: `layer <l>` when `layers` has `n` entries, else `spatial layer
/// <k>` (1-based).
fn layer_names(layers: Option<&[usize]>, n: usize) -> Vec<String> {
    match layers {
        Some(ls) if ls.len() == n => ls.iter().map(|l| format!("layer {l}")).collect(),
        _ => (1..=n).map(|k| format!("spatial layer {k}")).collect(),
    }
}

/// `metrics.csv`: one row per epoch, columns `epoch, seconds, samples_per_second, task_loss,
/// total_loss, transport_layer<l>..., density_layer<l>..., accuracy_<task>..., accuracy_mean`.
pub fn csv_text(metrics: &[EpochMetrics], spatial_layers: Option<&[usize]>) -> String {
    let Some(first) = metrics.first() else {
        return String::new();
    };
    let cols = |prefix: &str, n: usize| -> Vec<String> {
        layer_names(spatial_layers, n)
            .iter()
            .map(|name| format!("{prefix}_{}", name.replace(' ', "")))
            .collect()
    };
    let tasks = first.task_accuracy.len();
    let mut header = vec![
        "epoch".to_string(),
        "seconds".into(),
        "samples_per_second".into(),
        "task_loss".into(),
        "total_loss".into(),
    ];
    header.extend(cols("transport", first.transport.len()));
    header.extend(cols("density", first.density.len()));
    header.extend((0..tasks).map(|t| {
        format!(
            "accuracy_{}",
            crate::tensorboard::task_tag(&first.tasks, t, tasks)
        )
    }));
    header.push("accuracy_mean".into());
    let mut out = header.join(",");
    out.push('\n');
    for m in metrics {
        let mut row = vec![
            m.epoch.to_string(),
            m.seconds.to_string(),
            m.samples_per_second.to_string(),
            m.task_loss.to_string(),
            m.total_loss.to_string(),
        ];
        row.extend(m.transport.iter().map(f64::to_string));
        row.extend(m.density.iter().map(f64::to_string));
        row.extend(m.task_accuracy.iter().map(f64::to_string));
        row.push(m.accuracy.to_string());
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Writes `metrics.csv` beside `metrics.jsonl` in the run directory `dir`; returns its path.
pub fn write_csv(dir: &Path) -> Result<PathBuf> {
    let metrics = read_metrics(dir)?;
    let layers = spatial_layers_of(dir);
    let path = dir.join("metrics.csv");
    checkpoint::write_atomic(&path, csv_text(&metrics, layers.as_deref()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One curve of a panel.
struct Curve {
    label: String,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

/// `(lo, hi)` of the finite values, padded by 6 % (or by 1 around a single value).
fn fitted(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.06 * (hi - lo)
    } else {
        (0.05 * lo.abs()).max(1e-3)
    };
    (lo - pad, hi + pad)
}

/// Draws one panel: `curves` against the epoch, axes fitted to the data, a legend in the corner
/// where the curves are least in the way.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    curves: &[Curve],
) -> Result<()> {
    let x_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let x_range = (0.5, x_max + 0.5);
    let y_range = fitted(curves.iter().flat_map(|c| c.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(x_max.min(10.0) as usize + 1)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{}", x.round() as i64)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format_tick(*y, y_range.1 - y_range.0))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_err)?;
    if curves.is_empty() {
        chart
            .draw_series(std::iter::once(Text::new(
                "none (a regular network has no spatial layers)",
                (
                    x_range.0 + 0.05 * (x_range.1 - x_range.0),
                    (y_range.0 + y_range.1) / 2.0,
                ),
                ("sans-serif", 16).into_font().color(&BLACK.mix(0.6)),
            )))
            .map_err(plot_err)?;
        return Ok(());
    }
    for c in curves {
        let colour = c.colour;
        let points: Vec<(f64, f64)> = c.points.iter().copied().filter(|p| p.1.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x - 10, y), (x + 10, y)], colour.stroke_width(3)));
        if points.len() <= 60 {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(plot_err)?;
        }
    }
    // The legend goes to the corner whose quarter of the plot holds the fewest points.
    let corner = {
        let mid = ((x_range.0 + x_range.1) / 2.0, (y_range.0 + y_range.1) / 2.0);
        let count = |right: bool, upper: bool| {
            curves
                .iter()
                .flat_map(|c| &c.points)
                .filter(|p| (p.0 > mid.0) == right && (p.1 > mid.1) == upper)
                .count()
        };
        [
            (SeriesLabelPosition::UpperRight, count(true, true)),
            (SeriesLabelPosition::LowerRight, count(true, false)),
            (SeriesLabelPosition::UpperLeft, count(false, true)),
            (SeriesLabelPosition::LowerLeft, count(false, false)),
        ]
        .into_iter()
        .min_by_key(|c| c.1)
        .map(|c| c.0)
        .unwrap_or(SeriesLabelPosition::UpperRight)
    };
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

/// A tick label with the digits an axis spanning `span` needs, the same for every tick of the axis.
fn format_tick(y: f64, span: f64) -> String {
    let a = y.abs().max(span);
    if !(1e-3..1e5).contains(&a) {
        return format!("{y:.1e}");
    }
    let digits = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else if span >= 0.2 {
        2
    } else {
        3
    };
    let s = format!("{y:.digits$}");
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// Colours of per-layer curves: distinct from the task colours of the accuracy panel.
const LAYER_COLOURS: [RGBColor; 5] = [
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(227, 119, 194),
];

/// Draws the four panels of the curves on `root`.
pub fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    metrics: &[EpochMetrics],
    spatial_layers: Option<&[usize]>,
    title: &str,
) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(plot_err)?;
    let panels = root.split_evenly((2, 2));
    let epochs: Vec<f64> = metrics.iter().map(|m| m.epoch as f64).collect();
    let series = |f: &dyn Fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        epochs.iter().zip(metrics).map(|(&e, m)| (e, f(m))).collect()
    };
    let first = &metrics[0];
    let losses = [
        Curve {
            label: "task loss (cross-entropy)".into(),
            colour: RGBColor(31, 119, 180),
            points: series(&|m| m.task_loss),
        },
        Curve {
            label: "total loss (task + costs)".into(),
            colour: RGBColor(60, 60, 60),
            points: series(&|m| m.total_loss),
        },
    ];
    let names = layer_names(spatial_layers, first.transport.len());
    let per_layer = |f: fn(&EpochMetrics) -> &Vec<f64>| -> Vec<Curve> {
        names
            .iter()
            .enumerate()
            .map(|(k, name)| Curve {
                label: name.clone(),
                colour: LAYER_COLOURS[k % LAYER_COLOURS.len()],
                points: series(&|m| f(m).get(k).copied().unwrap_or(f64::NAN)),
            })
            .collect()
    };
    let tasks = first.task_accuracy.len();
    let task_names = split::task_names_or_legacy(&first.tasks, tasks);
    let mut accuracy: Vec<Curve> = (0..tasks)
        .map(|t| Curve {
            label: split::task_name(&task_names, t),
            colour: task_colour(t),
            points: series(&|m| m.task_accuracy[t]),
        })
        .collect();
    accuracy.push(Curve {
        label: "mean".into(),
        colour: RGBColor(60, 60, 60),
        points: series(&|m| m.accuracy),
    });
    draw_panel(&panels[0], "Loss (mean over the epoch's steps)", "loss", &losses)?;
    draw_panel(&panels[1], "Test accuracy per task", "accuracy", &accuracy)?;
    draw_panel(
        &panels[2],
        "Transport cost T per spatial layer",
        "T",
        &per_layer(|m| &m.transport),
    )?;
    draw_panel(
        &panels[3],
        "Density cost V per spatial layer",
        "V",
        &per_layer(|m| &m.density),
    )?;
    root.present().map_err(plot_err)?;
    Ok(())
}

const CURVES_SIZE: (u32, u32) = (1400, 1000);

/// Draws the curves of `metrics` into `out` as `curves.png` and `curves.svg`; returns their paths.
pub fn write_curves(
    metrics: &[EpochMetrics],
    spatial_layers: Option<&[usize]>,
    title: &str,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    register_font()?;
    if metrics.is_empty() {
        bail!("no epoch to plot");
    }
    let png = out.join("curves.png");
    draw_curves(
        &BitMapBackend::new(&png, CURVES_SIZE).into_drawing_area(),
        metrics,
        spatial_layers,
        title,
    )
    .with_context(|| format!("cannot draw {}", png.display()))?;
    let svg = out.join("curves.svg");
    draw_curves(
        &SVGBackend::new(&svg, CURVES_SIZE).into_drawing_area(),
        metrics,
        spatial_layers,
        title,
    )
    .with_context(|| format!("cannot draw {}", svg.display()))?;
    Ok(vec![png, svg])
}

/// The run directory's curves: reads `dir/metrics.jsonl` (and the spatial layers from
/// `summary.json` or the checkpoint), writes `dir/curves.{png,svg}` and `dir/metrics.csv`; returns
/// the paths written.
pub fn plot_run(dir: &Path) -> Result<Vec<PathBuf>> {
    let metrics = read_metrics(dir)?;
    let layers = spatial_layers_of(dir);
    let summary = std::fs::read_to_string(train::summary_path(dir))
        .ok()
        .and_then(|s| serde_json::from_str::<Summary>(&s).ok());
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let title = match summary {
        Some(s) => format!(
            "Training curves: {} {}, seed {}, {} epochs ({name})",
            s.mode.name(),
            if s.spatial { "spatial" } else { "regular" },
            s.seed,
            metrics.len()
        ),
        None => format!("Training curves: {name}, {} epochs", metrics.len()),
    };
    let mut written = write_curves(&metrics, layers.as_deref(), &title, dir)?;
    let csv = dir.join("metrics.csv");
    checkpoint::write_atomic(&csv, csv_text(&metrics, layers.as_deref()).as_bytes())
        .with_context(|| format!("cannot write {}", csv.display()))?;
    written.push(csv);
    Ok(written)
}
