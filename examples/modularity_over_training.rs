//! Newman's `Q` of the task partition over training, one line per run, regular runs against
//! spatial ones, from the `modularity` field `spatial-gpu train` writes into every `metrics.jsonl`
//! line:
//!
//! `cargo run --release --example modularity_over_training OUT.png RUN_DIR...`
//!
//! A run is drawn as spatial or regular as its `summary.json` says (its directory name if that is
//! missing); an SVG is written beside the PNG.

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

struct Run {
    name: String,
    spatial: bool,
    /// `(epoch, Q of the task partition)`.
    q: Vec<(f64, f64)>,
}

fn read_run(dir: &Path) -> Result<Run> {
    let metrics = dir.join("metrics.jsonl");
    let text =
        std::fs::read_to_string(&metrics).with_context(|| format!("cannot read {}", metrics.display()))?;
    let mut q = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", metrics.display(), i + 1))?;
        let epoch = v["epoch"].as_f64();
        let tq = v["modularity"]["task_modularity"].as_f64();
        if let (Some(e), Some(t)) = (epoch, tq) {
            q.push((e, t));
        }
    }
    if q.is_empty() {
        bail!(
            "{} has no line with modularity.task_modularity (trained by an older binary?)",
            metrics.display()
        );
    }
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    let spatial = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["spatial"].as_bool())
        .unwrap_or_else(|| name.contains("spatial"));
    Ok(Run { name, spatial, q })
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, runs: &[Run]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let epochs = runs
        .iter()
        .flat_map(|r| r.q.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let (lo, hi) = runs
        .iter()
        .flat_map(|r| r.q.iter().map(|p| p.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let pad = ((hi - lo) * 0.1).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption("Q of the task partition over training", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1.0..epochs, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("Q (task partition)")
        .label_style(("sans-serif", 14))
        .draw()?;
    let (blue, orange) = (RGBColor(31, 119, 180), RGBColor(255, 127, 14));
    let mut labelled = [false, false];
    for r in runs {
        let colour = if r.spatial { orange } else { blue };
        let series = chart.draw_series(LineSeries::new(r.q.iter().copied(), colour.stroke_width(2)))?;
        let k = usize::from(r.spatial);
        if !labelled[k] {
            labelled[k] = true;
            series
                .label(if r.spatial { "spatial" } else { "regular" })
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        eprintln!(
            "{}: Q {:.4} at epoch {}",
            r.name,
            r.q.last().expect("non-empty").1,
            r.q.len()
        );
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        bail!("usage: modularity_over_training OUT.png RUN_DIR...");
    }
    let png = PathBuf::from(&args[0]);
    if png.extension().and_then(|e| e.to_str()) != Some("png") {
        bail!("{}: the output must be a .png file", png.display());
    }
    let runs = args[1..]
        .iter()
        .map(|d| read_run(Path::new(d)))
        .collect::<Result<Vec<_>>>()?;
    for r in &runs {
        let (epoch, q) = r.q.last().expect("a run has at least one epoch");
        println!("{}: Q {q:.4} at epoch {epoch}", r.name);
    }
    if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
        bail!("the embedded font could not be loaded");
    }
    draw(BitMapBackend::new(&png, (800, 500)).into_drawing_area(), &runs)?;
    let svg = png.with_extension("svg");
    draw(SVGBackend::new(&svg, (800, 500)).into_drawing_area(), &runs)?;
    println!("wrote {} and {}", png.display(), svg.display());
    Ok(())
}
