//! The parts of Figures 1 and 2 around the drawing: the neuron markers, the legend column beside the
//! plot, the title and the caption lines under it (the split's accuracy drop and the segregation
//! p-values, so that a figure carries the numbers that say whether its picture means anything).

use super::{cross_style, plot_err, task_colour, within_style, FigureData};
use crate::split::{self, SplitReport};
use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendCoord, DrawingErrorKind};
use std::path::Path;

/// Marker shapes, one per split layer (cycled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Circle,
    Triangle,
    Square,
    Diamond,
    Star,
}
pub(crate) const SHAPES: [Shape; 5] = [
    Shape::Circle,
    Shape::Triangle,
    Shape::Square,
    Shape::Diamond,
    Shape::Star,
];

impl Shape {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circles",
            Shape::Triangle => "triangles",
            Shape::Square => "squares",
            Shape::Diamond => "diamonds",
            Shape::Star => "stars",
        }
    }
}

/// One marker: a filled shape with a dark outline, `size` pixels from centre to edge.
pub(crate) struct Marker<C> {
    pub at: C,
    pub shape: Shape,
    pub size: i32,
    pub fill: RGBColor,
}

impl<'a, C: 'a> PointCollection<'a, C> for &'a Marker<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for Marker<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else {
            return Ok(());
        };
        let s = self.size;
        let fill = self.fill.filled();
        let edge = ShapeStyle::from(BLACK.mix(0.7)).stroke_width(1);
        let poly: Vec<BackendCoord> = match self.shape {
            Shape::Circle => {
                backend.draw_circle((x, y), s as u32, &fill, true)?;
                return backend.draw_circle((x, y), s as u32, &edge, false);
            }
            Shape::Triangle => vec![(x, y - s - 1), (x + s + 1, y + s), (x - s - 1, y + s)],
            Shape::Square => vec![(x - s, y - s), (x + s, y - s), (x + s, y + s), (x - s, y + s)],
            Shape::Diamond => vec![(x, y - s - 2), (x + s + 1, y), (x, y + s + 2), (x - s - 1, y)],
            Shape::Star => (0..10)
                .map(|k| {
                    let r = if k % 2 == 0 {
                        (s + 2) as f64
                    } else {
                        (s + 2) as f64 * 0.45
                    };
                    let a = std::f64::consts::PI * (k as f64 / 5.0 - 0.5);
                    (x + (r * a.cos()).round() as i32, y + (r * a.sin()).round() as i32)
                })
                .collect(),
        };
        backend.fill_polygon(poly.iter().copied(), &fill)?;
        let mut closed = poly.clone();
        closed.push(poly[0]);
        backend.draw_path(closed, &edge)
    }
}

/// The numbers printed under the figures, from the split of the same model.
#[derive(Clone, Debug, PartialEq)]
pub struct Caption {
    /// Mean over tasks of (full accuracy - split accuracy), and per task.
    pub drop: f64,
    pub task_drop: Vec<f64>,
    /// The tasks' names, in head order.
    pub task_names: Vec<String>,
    /// Per split layer: the segregation p-value, `None` when one task has the whole layer.
    pub p_values: Vec<(usize, Option<f64>)>,
    pub permutations: usize,
}

impl Caption {
    pub fn from_report(r: &SplitReport) -> Caption {
        Caption {
            drop: r.drop,
            task_drop: r.task_drop.clone(),
            task_names: split::task_names_or_legacy(&r.task_names, r.tasks),
            p_values: r
                .layers
                .iter()
                .map(|l| (l.layer, l.segregation.as_ref().map(|s| s.p_value)))
                .collect(),
            permutations: r
                .layers
                .iter()
                .find_map(|l| l.segregation.as_ref().map(|s| s.permutations))
                .unwrap_or(0),
        }
    }

    /// The caption of the run in `dir` from its `split.json` (what `spatial-gpu split` writes);
    /// `None` when the run has not been split. A file that is there but unreadable is an error.
    pub fn read_run(dir: &Path) -> Result<Option<Caption>> {
        let path = dir.join(split::FILE_NAME);
        if !path.is_file() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let report: SplitReport = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a split report (rerun `spatial-gpu split`)",
                path.display()
            )
        })?;
        Ok(Some(Caption::from_report(&report)))
    }

    /// The caption lines of `caption`, or the line saying how to get them.
    pub fn lines_of(caption: Option<&Caption>) -> Vec<String> {
        let Some(c) = caption else {
            return vec![
                "Split drop and segregation p-values: not computed (run `spatial-gpu split --model DIR` first)."
                    .into(),
            ];
        };
        let per_task: Vec<String> = c
            .task_drop
            .iter()
            .enumerate()
            .map(|(t, d)| format!("{} {d:.4}", split::task_name(&c.task_names, t)))
            .collect();
        let p: Vec<String> = c
            .p_values
            .iter()
            .map(|(l, p)| match p {
                Some(p) => format!("layer {l} p = {p:.3}"),
                None => format!("layer {l}: one task has every neuron"),
            })
            .collect();
        vec![
            format!(
                "Split into per-task subnetworks: accuracy drop {:.4} (mean; {}).",
                c.drop,
                per_task.join(", ")
            ),
            format!(
                "Segregation of the tasks' neurons in space, permutation p-value ({} permutations): {}.",
                c.permutations,
                p.join(", ")
            ),
        ]
    }
}

/// Width of the legend column beside the plot, height of the title, in pixels.
pub(crate) const LEGEND_WIDTH: u32 = 350;
pub(crate) const TITLE_HEIGHT: u32 = 40;
const ROW: i32 = 24;
const LEGEND_TOP: i32 = 20;

pub(crate) fn caption_height(lines: &[String]) -> u32 {
    14 + 20 * lines.len() as u32
}

/// Connections within a task and across tasks.
fn edge_counts(fig: &FigureData) -> (usize, usize) {
    let mut counts = (0, 0);
    for (k, e) in fig.edges.iter().enumerate() {
        for &(i, j, _) in e {
            if fig.crosses(k, i, j) {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
        }
    }
    counts
}

/// Draws a legend row's sample centred at a point of the legend area.
type Sample<'a, DB> = Box<dyn Fn(&DrawingArea<DB, Shift>, BackendCoord) -> Result<()> + 'a>;

/// The legend's rows: a heading, or a sample and a text.
enum Row<'a, DB: DrawingBackend> {
    Heading(String),
    Entry(Sample<'a, DB>, String),
}

fn rows<'a, DB: DrawingBackend + 'a>(fig: &'a FigureData) -> Vec<Row<'a, DB>> {
    let marker = |shape: Shape, fill: RGBColor| {
        Box::new(move |a: &DrawingArea<DB, Shift>, at: BackendCoord| {
            a.draw(&Marker {
                at,
                shape,
                size: 6,
                fill,
            })
            .map_err(plot_err)
        }) as Sample<'a, DB>
    };
    let mut rows = vec![Row::Heading("Task of the neuron (colour)".into())];
    for t in 0..fig.tasks {
        rows.push(Row::Entry(
            marker(Shape::Square, task_colour(t)),
            format!("task {t}: {}", split::task_name(&fig.task_names, t)),
        ));
    }
    rows.push(Row::Heading("Layer (shape), neurons drawn".into()));
    for k in 0..fig.layers.len() {
        rows.push(Row::Entry(marker(fig.shape(k), WHITE), fig.layer_label(k)));
    }
    let (within, across) = edge_counts(fig);
    rows.push(Row::Heading(format!(
        "Connections, |w| > {}",
        fig.filters().min_weight
    )));
    let tasks = fig.tasks.max(1);
    rows.push(Row::Entry(
        Box::new(move |a, (x, y)| {
            // One short stroke per task colour, as strong as the strongest lines.
            let step = 26 / tasks as i32;
            for t in 0..tasks {
                let x0 = x - 13 + t as i32 * step;
                a.draw(&PathElement::new(
                    vec![(x0, y), (x0 + step, y)],
                    within_style(task_colour(t), 1.0).stroke_width(3),
                ))
                .map_err(plot_err)?;
            }
            Ok(())
        }),
        format!("within a task: {within}"),
    ));
    rows.push(Row::Entry(
        Box::new(|a, (x, y)| {
            a.draw(&PathElement::new(
                vec![(x - 13, y), (x + 13, y)],
                cross_style(1.0).stroke_width(3),
            ))
            .map_err(plot_err)
        }),
        format!("across tasks: {across} (drawn on top)"),
    ));
    rows.push(Row::Entry(
        Box::new(|a, (x, y)| {
            for (n, s) in [0.2, 0.6, 1.0].into_iter().enumerate() {
                let x0 = x - 13 + 9 * n as i32;
                a.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 8, y)],
                    cross_style(s).stroke_width(3),
                ))
                .map_err(plot_err)?;
            }
            Ok(())
        }),
        "opacity grows with |w|".into(),
    ));
    rows
}

/// Height of the legend box, so a figure is never cut shorter than it.
pub(crate) fn legend_height(fig: &FigureData) -> u32 {
    let n = 3 + fig.tasks + fig.layers.len() + 3;
    (2 * LEGEND_TOP + ROW * n as i32 + 16) as u32
}

/// Draws the legend, as tall as its rows, at the top of `area`.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &FigureData) -> Result<()> {
    let rows = rows::<DB>(fig);
    let (w, _) = area.dim_in_pixel();
    let (left, right) = (4, w as i32 - 14);
    let bottom = LEGEND_TOP + 10 + ROW * rows.len() as i32;
    area.draw(&Rectangle::new(
        [(left, LEGEND_TOP), (right, bottom)],
        BLACK.mix(0.4),
    ))
    .map_err(plot_err)?;
    let font = |size: i32, colour: RGBColor| {
        ("sans-serif", size)
            .into_font()
            .color(&colour)
            .pos(Pos::new(HPos::Left, VPos::Center))
    };
    let mut y = LEGEND_TOP + 5 + ROW / 2;
    for row in &rows {
        match row {
            Row::Heading(text) => {
                area.draw(&Text::new(
                    text.clone(),
                    (left + 10, y),
                    font(16, RGBColor(40, 40, 40)),
                ))
                .map_err(plot_err)?;
            }
            Row::Entry(sample, text) => {
                sample(area, (left + 30, y))?;
                area.draw(&Text::new(text.clone(), (left + 52, y), font(15, BLACK)))
                    .map_err(plot_err)?;
            }
        }
        y += ROW;
    }
    Ok(())
}

fn draw_caption<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, lines: &[String]) -> Result<()> {
    for (n, line) in lines.iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (16, 4 + 20 * n as i32),
            ("sans-serif", 15).into_font().color(&BLACK),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// Clears `root`, draws the title, the caption lines at the bottom and the legend column on the
/// right; returns the area left for the plot.
pub(crate) fn layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &FigureData,
) -> Result<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).map_err(plot_err)?;
    let titled = root.titled(&fig.title, ("sans-serif", 22)).map_err(plot_err)?;
    let (w, h) = titled.dim_in_pixel();
    let (body, caption) = titled.split_vertically(h.saturating_sub(caption_height(&fig.caption)));
    draw_caption(&caption, &fig.caption)?;
    let (plot, legend) = body.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    draw_legend(&legend, fig)?;
    Ok(plot)
}
