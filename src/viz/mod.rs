//! Pictures of a training history ([`crate::history`]): an animation of Figure 1's top view over
//! training ([`animate`]) and a self-contained interactive HTML viewer ([`viewer`]).
//!
//! Both draw what Figure 1 draws (see `figure`): the neurons of the split layers at their positions,
//! coloured by task, and the connections between consecutive split layers (task colour when both
//! ends share a task, grey across tasks), with the paper's filters as defaults.

pub mod animate;
pub mod viewer;

use crate::history::{History, HistoryPoint};

/// Task colours, Figure 1's (Tableau order: blue, orange, green, red, purple, ...). `figure` keeps
/// its own private copy; the two must stay equal so that an animation matches the figures.
pub const TASK_COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
    (188, 189, 34),
    (0, 0, 128),
];
/// Colour of a connection between neurons of different tasks.
pub const CROSS_COLOUR: (u8, u8, u8) = (120, 120, 120);

pub fn task_colour(t: usize) -> (u8, u8, u8) {
    TASK_COLOURS[t % TASK_COLOURS.len()]
}

/// The paper's drawing filters (its footnote 4), adjustable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Draw a neuron only if its summed |input weight| exceeds this.
    pub min_input: f32,
    /// Draw a connection only if its |w| exceeds this and both its ends are drawn.
    pub min_weight: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_input: 0.1,
            min_weight: 0.01,
        }
    }
}

/// A drawn connection: `(from, to, |w|, task of from, task of to)`, neuron indices within their layers.
pub type Edge = (usize, usize, f32, usize, usize);

/// What one frame of the top view shows, from one history point.
#[derive(Clone, Debug, PartialEq)]
pub struct TopView {
    /// `neurons[k]`: the drawn neurons of split layer `k`: `(index, x, y, task)`.
    pub neurons: Vec<Vec<(usize, f32, f32, usize)>>,
    /// `edges[k]`: drawn connections from split layer `k` to `k + 1`.
    pub edges: Vec<Vec<Edge>>,
}

impl TopView {
    pub fn new(history: &History, point: &HistoryPoint, th: Thresholds) -> TopView {
        let layers = history.split_layers();
        let mut kept: Vec<Vec<bool>> = Vec::new();
        let mut neurons = Vec::new();
        for (k, &l) in layers.iter().enumerate() {
            let keep: Vec<bool> = point.incoming[l - 1].iter().map(|&s| s > th.min_input).collect();
            let p = &point.positions[l];
            neurons.push(
                (0..keep.len())
                    .filter(|&j| keep[j])
                    .map(|j| (j, p[2 * j], p[2 * j + 1], point.tasks[k][j] as usize))
                    .collect(),
            );
            kept.push(keep);
        }
        let edges = point
            .connections
            .iter()
            .enumerate()
            .map(|(k, c)| {
                (0..c.len())
                    .filter_map(|e| {
                        let (i, j, a) = (c.from[e] as usize, c.to[e] as usize, c.weight[e].abs());
                        (a > th.min_weight && kept[k][i] && kept[k + 1][j]).then(|| {
                            (
                                i,
                                j,
                                a,
                                point.tasks[k][i] as usize,
                                point.tasks[k + 1][j] as usize,
                            )
                        })
                    })
                    .collect()
            })
            .collect();
        TopView { neurons, edges }
    }
}

/// The smallest box holding every split-layer neuron at every point, `((x0, x1), (y0, y1))`, so that
/// frames share one set of axes; `((-1, 1), (-1, 1))` for an empty history.
pub fn position_bounds(history: &History) -> ((f32, f32), (f32, f32)) {
    let layers = history.split_layers();
    let (mut x, mut y) = (
        (f32::INFINITY, f32::NEG_INFINITY),
        (f32::INFINITY, f32::NEG_INFINITY),
    );
    for p in &history.points {
        for &l in &layers {
            for xy in p.positions[l].chunks_exact(2) {
                if xy[0].is_finite() && xy[1].is_finite() {
                    x = (x.0.min(xy[0]), x.1.max(xy[0]));
                    y = (y.0.min(xy[1]), y.1.max(xy[1]));
                }
            }
        }
    }
    if x.0.is_finite() {
        (x, y)
    } else {
        ((-1.0, 1.0), (-1.0, 1.0))
    }
}
