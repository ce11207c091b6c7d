//! The outputs of `bench --sweep`: step time against batch size and width as a Markdown table, a
//! CSV file and a log-log plot.

use super::report::SweepPoint;
use super::{SWEEP_BATCHES, SWEEP_WIDTHS};
use anyhow::{anyhow, Context, Result};
use std::path::Path;

/// The sweep as a Markdown table: one row per batch size, one column per program and width.
pub fn sweep_markdown(points: &[SweepPoint]) -> String {
    let mut programs: Vec<&str> = Vec::new();
    for p in points {
        if !programs.contains(&p.program.as_str()) {
            programs.push(&p.program);
        }
    }
    let mut cols: Vec<(&str, usize)> = Vec::new();
    for &w in &SWEEP_WIDTHS {
        for &p in &programs {
            cols.push((p, w));
        }
    }
    let mut s = String::from("Step time in ms (samples/s in thousands), spatial network.\n\n| batch |");
    for (p, w) in &cols {
        s.push_str(&format!(" {p} x{w} |"));
    }
    s.push_str("\n| ---: |");
    s.push_str(&" ---: |".repeat(cols.len()));
    s.push('\n');
    for &b in &SWEEP_BATCHES {
        s.push_str(&format!("| {b} |"));
        for (p, w) in &cols {
            match points
                .iter()
                .find(|q| q.program == *p && q.width == *w && q.batch_size == b)
            {
                Some(q) => s.push_str(&format!(
                    " {:.2} ({:.0}k) |",
                    q.step_ms,
                    q.samples_per_second / 1000.0
                )),
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    s
}

pub fn write_sweep(out: &Path, points: &[SweepPoint]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let md = sweep_markdown(points);
    println!();
    print!("{md}");
    std::fs::write(out.join("sweep.md"), &md)?;
    let mut csv = String::from("program,width,batch_size,step_ms,samples_per_second\n");
    for p in points {
        csv.push_str(&format!(
            "{},{},{},{:.6},{:.1}\n",
            p.program, p.width, p.batch_size, p.step_ms, p.samples_per_second
        ));
    }
    std::fs::write(out.join("sweep.csv"), csv)?;
    plot_sweep(&out.join("sweep.png"), &out.join("sweep.svg"), points)?;
    println!(
        "wrote {}/sweep.md, sweep.csv, sweep.png, sweep.svg",
        out.display()
    );
    Ok(())
}

/// Step time against batch size, log-log, one line per program and width.
fn plot_sweep(png: &Path, svg: &Path, points: &[SweepPoint]) -> Result<()> {
    use plotters::prelude::*;
    let _ = plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        include_bytes!("../../assets/DejaVuSans.ttf"),
    );
    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, plotters::coord::Shift>,
        points: &[SweepPoint],
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.step_ms), hi.max(p.step_ms))
        });
        let (lo, hi) = if points.is_empty() {
            (0.1, 1.0)
        } else {
            (lo * 0.8, hi * 1.25)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Training step time vs batch size (spatial network)",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((48f64..5400f64).log_scale(), (lo..hi).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("batch size")
            .y_desc("ms per step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.2}")
                }
            })
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        let mut programs: Vec<&str> = Vec::new();
        for p in points {
            if !programs.contains(&p.program.as_str()) {
                programs.push(&p.program);
            }
        }
        let colours = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
            RGBColor(148, 103, 189),
        ];
        for (pi, prog) in programs.iter().enumerate() {
            for (wi, &w) in SWEEP_WIDTHS.iter().enumerate() {
                let line: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.program == *prog && p.width == w)
                    .map(|p| (p.batch_size as f64, p.step_ms))
                    .collect();
                if line.is_empty() {
                    continue;
                }
                let colour = colours[pi % colours.len()];
                let style = ShapeStyle {
                    color: colour.to_rgba(),
                    filled: true,
                    stroke_width: 1 + wi as u32,
                };
                chart
                    .draw_series(LineSeries::new(line.clone(), style))
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(format!("{prog} x{w}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                chart
                    .draw_series(line.iter().map(|&(x, y)| Circle::new((x, y), 3, colour.filled())))
                    .map_err(|e| anyhow!("{e:?}"))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        root.present().map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    }
    draw(BitMapBackend::new(png, (900, 600)).into_drawing_area(), points)?;
    draw(SVGBackend::new(svg, (900, 600)).into_drawing_area(), points)?;
    Ok(())
}
