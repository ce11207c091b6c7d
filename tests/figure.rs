//! Figures 1 and 2: cross-task connections drawn above the task-coloured ones in their own colour,
//! a legend entry that matches them, axes fitted to the data, and the caption line.

use plotters::prelude::*;
use spatial_gpu::config::{Activation, Init, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::figure::{self, Caption, FigureData, Filters, CROSS_COLOUR};
use spatial_gpu::model::Params;
use spatial_gpu::split;

fn model() -> ModelConfig {
    let m = ModelConfig {
        sizes: vec![2, 2, 2],
        heads: 2,
        tasks: Vec::new(),
        spatial_layers: vec![1, 2],
        alpha: 1.0,
        beta: 3.0,
        transport_norm: TransportNorm::Paper,
        weight_norm: WeightNorm::L1,
        init: Init::Torch,
        activation: Activation::Sigmoid,
    };
    m.validate().unwrap();
    m
}

/// Layer-1 neuron 0 feeds both outputs equally (a tie: task 0, so its link to output 1 crosses
/// tasks), neuron 1 only output 1. Positions put the cross-task link (0,0)-(2,0) over the
/// within-task link (0,0)-(1,0).
fn params(positions: [[f32; 4]; 2]) -> Params {
    let mut p = Params::zeros(&[2, 2, 2]);
    let mut t = p.tensors_mut();
    t.weights[0].copy_from_slice(&[0.5; 4]);
    t.weights[1].copy_from_slice(&[1.0, 0.0, 1.0, 1.0]);
    t.positions[1].copy_from_slice(&positions[0]);
    t.positions[2].copy_from_slice(&positions[1]);
    drop(t);
    p
}

/// The colour of `top` at alpha `a` over `under` at alpha `b` over white.
fn blend(top: RGBAColor, under: RGBAColor) -> [u8; 3] {
    let over = |fg: u8, a: f64, bg: f64| fg as f64 * a + bg * (1.0 - a);
    let under_rgb = [under.0, under.1, under.2].map(|c| over(c, under.3, 255.0));
    let top_rgb = [top.0, top.1, top.2];
    [0, 1, 2].map(|i| over(top_rgb[i], top.3, under_rgb[i]).round() as u8)
}

fn has_pixel(buf: &[u8], c: [u8; 3], x_range: std::ops::Range<usize>, w: usize) -> bool {
    buf.chunks_exact(3)
        .enumerate()
        .any(|(i, p)| x_range.contains(&(i % w)) && p.iter().zip(c).all(|(&a, b)| a.abs_diff(b) <= 2))
}

#[test]
fn cross_task_connections_are_drawn_above_in_their_colour_with_a_matching_legend() {
    figure::register_font().unwrap();
    let m = model();
    let p = params([[0.0, 0.0, 1.0, 1.5], [1.0, 0.0, 2.0, 0.0]]);
    let a = split::assign(&m, &p);
    assert_eq!(a.groups, vec![vec![0, 1], vec![0, 1]]);
    let fig = FigureData::new(&m, &p, &a, Filters::default(), "t".into());
    let (w, h) = fig.top_view_size();
    let mut buf = vec![0u8; 3 * (w * h) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        figure::draw_top_view(&root, &fig).unwrap();
    }
    let w = w as usize;
    let legend_x = w - 350;
    let within = figure::within_style(figure::task_colour(0), 1.0).color;
    let cross = figure::cross_style(1.0).color;
    // Where the two links overlap, the cross-task colour lies on top of the blue one ...
    assert!(has_pixel(&buf, blend(cross, within), 0..legend_x, w));
    assert!(!has_pixel(&buf, blend(within, cross), 0..legend_x, w));
    // ... and the legend's sample is that same colour (over white).
    let white = RGBAColor(255, 255, 255, 0.0);
    assert!(has_pixel(&buf, blend(cross, white), legend_x..w, w));
    // The colour is the cross colour, and not a task's.
    assert_eq!(
        (cross.0, cross.1, cross.2),
        (CROSS_COLOUR.0, CROSS_COLOUR.1, CROSS_COLOUR.2)
    );
    for t in 0..2 {
        assert_ne!(figure::task_colour(t), CROSS_COLOUR);
    }
}

#[test]
fn the_top_view_is_shaped_like_the_data() {
    let m = model();
    let wide = params([[-10.0, 0.0, 10.0, 0.0], [-10.0, 5.0, 10.0, 5.0]]);
    let tall = params([[0.0, -10.0, 0.0, 10.0], [5.0, -10.0, 5.0, 10.0]]);
    let size = |p: &Params| {
        let a = split::assign(&m, p);
        FigureData::new(&m, p, &a, Filters::default(), "t".into()).top_view_size()
    };
    let (w1, h1) = size(&wide);
    let (w2, h2) = size(&tall);
    assert_eq!(w1, w2, "the width is fixed");
    assert!(h2 > h1 + 300, "a tall layout gets a taller figure: {h1} vs {h2}");
}

#[test]
fn the_caption_gives_the_drop_and_p_values_or_says_how_to_get_them() {
    let none = Caption::lines_of(None);
    assert!(none[0].contains("spatial-gpu split"), "{none:?}");
    let c = Caption {
        drop: 0.0123,
        task_drop: vec![0.01, 0.0146],
        task_names: vec!["mnist".into(), "fashion-mnist".into()],
        p_values: vec![(3, Some(0.001)), (4, Some(0.25)), (5, None)],
        permutations: 1000,
    };
    let lines = Caption::lines_of(Some(&c));
    assert!(
        lines[0].contains("drop 0.0123") && lines[0].contains("Fashion-MNIST 0.0146"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("1000 permutations")
            && lines[1].contains("layer 3 p = 0.001")
            && lines[1].contains("layer 4 p = 0.250")
            && lines[1].contains("layer 5: one task has every neuron"),
        "{lines:?}"
    );

    // From a run directory: nothing without split.json, an error naming a broken one.
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(Caption::read_run(tmp.path()).unwrap(), None);
    std::fs::write(tmp.path().join("split.json"), "{").unwrap();
    let err = format!("{:#}", Caption::read_run(tmp.path()).unwrap_err());
    assert!(err.contains("split.json"), "{err}");

    // Both figures carry it.
    let m = model();
    let p = params([[0.0, 0.0, 1.0, 1.5], [1.0, 0.0, 2.0, 0.0]]);
    let written =
        figure::write_figures_with_caption(&m, &p, "t", Some(&c), tmp.path(), Filters::default()).unwrap();
    for svg in written.iter().filter(|f| f.extension().unwrap() == "svg") {
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(
            text.contains("drop 0.0123") && text.contains("across tasks: 1"),
            "{}",
            svg.display()
        );
    }
}
