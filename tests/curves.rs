//! Training curves and metrics.csv from a run's metrics.jsonl.

use plotters::prelude::*;
use spatial_gpu::curves;
use spatial_gpu::figure::{register_font, task_colour};
use spatial_gpu::train::EpochMetrics;
use std::path::Path;

fn metrics(epochs: usize, layers: usize) -> Vec<EpochMetrics> {
    (1..=epochs)
        .map(|e| {
            let f = e as f64;
            EpochMetrics {
                epoch: e,
                seconds: 0.5 + 0.01 * f,
                samples_per_second: 1.0e5 / 3.0,
                task_loss: 2.0 / f,
                total_loss: 2.5 / f,
                transport: (0..layers).map(|l| 10.0 * (l + 1) as f64 + f).collect(),
                density: (0..layers).map(|l| 0.1 / (l + 1) as f64 / f).collect(),
                task_accuracy: vec![0.9 + 0.01 * f, 0.8 + 0.01 * f],
                tasks: Vec::new(),
                accuracy: 0.85 + 0.01 * f,
                modularity: None,
            }
        })
        .collect()
}

fn write_jsonl(dir: &Path, ms: &[EpochMetrics]) {
    let text: String = ms
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), text).unwrap();
}

#[test]
fn csv_has_a_column_per_layer_and_task_and_the_exact_values() {
    let ms = metrics(3, 3);
    let csv = curves::csv_text(&ms, Some(&[3, 4, 5]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,seconds,samples_per_second,task_loss,total_loss,transport_layer3,transport_layer4,\
         transport_layer5,density_layer3,density_layer4,density_layer5,accuracy_mnist,\
         accuracy_fashion-mnist,accuracy_mean"
    );
    assert_eq!(lines.len(), 4);
    for (line, m) in lines[1..].iter().zip(&ms) {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let mut expect = vec![
            m.epoch as f64,
            m.seconds,
            m.samples_per_second,
            m.task_loss,
            m.total_loss,
        ];
        expect.extend(&m.transport);
        expect.extend(&m.density);
        expect.extend(&m.task_accuracy);
        expect.push(m.accuracy);
        // Bit for bit: the CSV keeps every digit of the JSON.
        assert_eq!(v, expect);
    }
    // Layers not known: named by position.
    let csv = curves::csv_text(&ms, None);
    assert!(csv.starts_with("epoch,seconds,samples_per_second,task_loss,total_loss,transport_spatiallayer1,"));
}

#[test]
fn plot_run_writes_png_svg_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    write_jsonl(tmp.path(), &metrics(12, 3));
    let written = curves::plot_run(tmp.path()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["curves.png", "curves.svg", "metrics.csv"]);
    let png = std::fs::read(&written[0]).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(&written[1]).unwrap();
    for text in [
        "Test accuracy per task",
        "Fashion-MNIST",
        "spatial layer 3",
        "epoch",
    ] {
        assert!(svg.contains(text), "the SVG lacks {text:?}");
    }
    let csv = std::fs::read_to_string(&written[2]).unwrap();
    assert_eq!(csv.lines().count(), 13);
    assert_eq!(curves::write_csv(tmp.path()).unwrap(), written[2]);
}

/// Pixels of `rgb` (width `w`) in the rectangle `[x0, x1) x [y0, y1)` within 2 of `c`.
fn count(buf: &[u8], w: usize, (x0, x1, y0, y1): (usize, usize, usize, usize), c: RGBColor) -> usize {
    let mut n = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = &buf[3 * (y * w + x)..3 * (y * w + x) + 3];
            if p.iter().zip([c.0, c.1, c.2]).all(|(&a, b)| a.abs_diff(b) <= 2) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn each_panel_draws_its_curves() {
    register_font().unwrap();
    let (w, h) = (1000usize, 800usize);
    let mut buf = vec![0u8; 3 * w * h];
    let ms = metrics(8, 2);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
        curves::draw_curves(&root, &ms, Some(&[4, 5]), "t").unwrap();
    }
    // Accuracy (upper right): the task colours; the other panels have none of them.
    let (left, right) = ((0, w / 2, 0, h), (w / 2, w, 0, h / 2));
    for t in 0..2 {
        assert!(count(&buf, w, right, task_colour(t)) > 100, "task {t} curve");
    }
    assert!(count(&buf, w, (w / 2, w, h / 2, h), task_colour(0)) == 0);
    // Loss (upper left) in blue too; T and V (lower panels): one colour per layer, both layers.
    assert!(count(&buf, w, (0, w / 2, 0, h / 2), task_colour(0)) > 100);
    let purple = RGBColor(148, 103, 189);
    let brown = RGBColor(140, 86, 75);
    for quad in [(0, w / 2, h / 2, h), (w / 2, w, h / 2, h)] {
        assert!(count(&buf, w, quad, purple) > 100 && count(&buf, w, quad, brown) > 100);
    }
    assert!(count(&buf, w, left, brown) > 200);
}

#[test]
fn a_regular_network_and_a_single_epoch_still_plot() {
    let tmp = tempfile::tempdir().unwrap();
    write_jsonl(tmp.path(), &metrics(1, 0));
    let written = curves::plot_run(tmp.path()).unwrap();
    let svg = std::fs::read_to_string(&written[1]).unwrap();
    assert!(svg.contains("no spatial layers"));
}

#[test]
fn bad_metrics_are_errors_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let err = format!("{:#}", curves::plot_run(tmp.path()).unwrap_err());
    assert!(err.contains("metrics.jsonl"), "{err}");

    std::fs::write(tmp.path().join("metrics.jsonl"), "").unwrap();
    let err = format!("{:#}", curves::plot_run(tmp.path()).unwrap_err());
    assert!(err.contains("no epoch"), "{err}");

    let ms = metrics(2, 3);
    let good = serde_json::to_string(&ms[0]).unwrap();
    std::fs::write(
        tmp.path().join("metrics.jsonl"),
        format!("{good}\n{{\"epoch\": 2\n"),
    )
    .unwrap();
    let err = format!("{:#}", curves::read_metrics(tmp.path()).unwrap_err());
    assert!(err.contains("metrics.jsonl line 2"), "{err}");

    let other = serde_json::to_string(&metrics(2, 2)[1]).unwrap();
    std::fs::write(tmp.path().join("metrics.jsonl"), format!("{good}\n{other}\n")).unwrap();
    let err = format!("{:#}", curves::read_metrics(tmp.path()).unwrap_err());
    assert!(err.contains("line 2") && err.contains("first line"), "{err}");
}
