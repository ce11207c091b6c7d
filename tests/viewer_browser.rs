//! The viewer in a real headless browser (Debian's `chromium`): the page loads without console
//! errors, draws something, and a different slider position (given in the address, which goes
//! through the same code as the slider) draws something different. Also measures drawing time for
//! networks of growing size (the numbers behind docs/VIEWER.md's size limits).
//!
//! Without a browser the tests say "skipped: no chromium" and pass, unless
//! `SPATIAL_GPU_REQUIRE_BROWSER=1` (CI sets it) makes that a failure.

use spatial_gpu::checkpoint::Progress;
use spatial_gpu::config::{Activation, Init, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::history::{History, HistoryOptions};
use spatial_gpu::model::Params;
use spatial_gpu::viz::viewer::{self, NeuronInfo, ViewerOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

const WINDOW: (u32, u32) = (1200, 800);
/// Width of the control panel on the right of the page (assets/viewer.css: 300 px + padding).
const PANEL: u32 = 330;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser"] {
        if let Some(p) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            return Some(p);
        }
    }
    if std::env::var("SPATIAL_GPU_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("SPATIAL_GPU_REQUIRE_BROWSER=1 but neither `chromium` nor `chromium-browser` is on the PATH");
    }
    None
}

/// What one page load gave: the console messages and the screenshot's RGB pixels.
struct Load {
    console: Vec<String>,
    pixels: Vec<u8>,
    size: (u32, u32),
}

/// Loads `url` in headless chromium and takes a screenshot.
fn load(browser: &Path, url: &str, dir: &Path, name: &str) -> Load {
    let shot = dir.join(format!("{name}.png"));
    // A fresh profile per load: no state carried between loads, and none written to $HOME.
    let profile = dir.join(format!("profile-{name}"));
    let out = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg("--hide-scrollbars")
        .arg(url)
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed on {url}: {stderr}");
    // To look at what the test saw: SPATIAL_GPU_KEEP_OUTPUT=DIR keeps each screenshot there.
    if let Some(keep) = std::env::var_os("SPATIAL_GPU_KEEP_OUTPUT") {
        let _ = std::fs::copy(&shot, Path::new(&keep).join(format!("{name}.png")));
    }
    let decoder = png::Decoder::new(
        std::fs::File::open(&shot).unwrap_or_else(|e| panic!("no screenshot of {url} ({e}): {stderr}")),
    );
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "an RGB screenshot");
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Load {
        console: console_messages(&stderr),
        pixels,
        size: (info.width, info.height),
    }
}

/// The page's console messages in chromium's log (`...:CONSOLE:N] "message", source: ...`).
/// Chromium logs every level alike, so the level cannot be told from the log.
fn console_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .filter_map(|l| l.split_once("] ").map(|(_, m)| m.to_string()))
        .collect()
}

/// The console errors: every message but the viewer's own timing lines (so a `console.error`,
/// an uncaught exception, a resource that failed to load or a warning all count).
fn console_errors(console: &[String]) -> Vec<String> {
    console
        .iter()
        .filter(|m| !(m.starts_with("\"viewer draw:") || m.starts_with("\"viewer bench:")))
        .cloned()
        .collect()
}

/// Pixel variance over the canvas area (left of the panel), all channels.
fn canvas_variance(l: &Load) -> f64 {
    let (w, h) = l.size;
    let canvas_w = w.saturating_sub(PANEL).max(1);
    let mut values = Vec::new();
    for y in 0..h {
        for x in 0..canvas_w {
            let at = 3 * (y * w + x) as usize;
            values.extend(l.pixels[at..at + 3].iter().map(|&v| v as f64));
        }
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64
}

fn canvas_difference(a: &Load, b: &Load) -> usize {
    assert_eq!(a.size, b.size);
    let (w, h) = a.size;
    let canvas_w = w.saturating_sub(PANEL);
    let mut differ = 0;
    for y in 0..h {
        for x in 0..canvas_w {
            let at = 3 * (y * w + x) as usize;
            if a.pixels[at..at + 3] != b.pixels[at..at + 3] {
                differ += 1;
            }
        }
    }
    differ
}

fn model(sizes: &[usize]) -> ModelConfig {
    let n = sizes.len() - 1;
    let m = ModelConfig {
        sizes: sizes.to_vec(),
        heads: 2,
        tasks: Vec::new(),
        spatial_layers: (n.saturating_sub(2).max(1)..=n).collect(),
        alpha: 0.01,
        beta: 3.0,
        transport_norm: TransportNorm::Paper,
        weight_norm: WeightNorm::L1,
        init: Init::Xavier,
        activation: Activation::Sigmoid,
    };
    m.validate().unwrap();
    m
}

/// A synthetic history of `points` points in which the positions drift apart by task.
fn synthetic(sizes: &[usize], points: usize, max_connections: usize) -> History {
    let m = model(sizes);
    let options = HistoryOptions {
        weights: false,
        max_connections,
    };
    let mut h = History::new(m.clone(), options);
    let base = Params::init(&m, 3);
    for s in 0..points {
        let mut p = base.clone();
        let last = m.sizes.len() - 1;
        for l in 0..=last {
            let r = p.layout.positions[l].clone();
            for (i, v) in p.data[r].iter_mut().enumerate() {
                // Move the two halves of each layer apart along x as training goes on.
                if i % 2 == 0 {
                    *v += if i / 2 < m.sizes[l] / 2 { -0.6 } else { 0.6 } * s as f32;
                }
            }
        }
        h.record(Progress { epoch: s, batch: 0 }, &m, &p).unwrap();
    }
    h
}

fn url(path: &Path, hash: &str) -> String {
    format!("file://{}#{hash}", path.display())
}

#[test]
fn console_errors_are_detected() {
    let Some(browser) = chromium() else {
        println!("skipped: no chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.log(\"viewer draw: fine\");\
         console.error(\"deliberate console error\");</script>\
         <script>noSuchFunction();</script></body></html>",
    )
    .unwrap();
    let l = load(&browser, &url(&page, ""), dir.path(), "broken");
    let errors = console_errors(&l.console);
    assert!(
        errors.iter().any(|m| m.contains("deliberate console error")),
        "{:?}",
        l.console
    );
    assert!(
        errors.iter().any(|m| m.contains("Uncaught ReferenceError")),
        "{:?}",
        l.console
    );
    assert_eq!(
        errors.len(),
        2,
        "the viewer's own timing line is not an error: {errors:?}"
    );
}

#[test]
fn the_viewer_loads_draws_and_follows_its_slider() {
    let Some(browser) = chromium() else {
        println!("skipped: no chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let h = synthetic(&[20, 24, 32, 48, 10], 5, 5000);
    let page = dir.path().join("viewer.html");
    viewer::write_html(&h, &NeuronInfo::default(), &page, &ViewerOptions::default()).unwrap();

    let first = load(&browser, &url(&page, "epoch=0"), dir.path(), "epoch0");
    assert!(
        console_errors(&first.console).is_empty(),
        "console errors: {:?}",
        first.console
    );
    assert!(
        first.console.iter().any(|m| m.starts_with("\"viewer draw:")),
        "the page drew: {:?}",
        first.console
    );
    let variance = canvas_variance(&first);
    assert!(
        variance > 50.0,
        "the canvas is blank (pixel variance {variance:.1})"
    );

    let last = load(&browser, &url(&page, "epoch=4"), dir.path(), "epoch4");
    assert!(
        console_errors(&last.console).is_empty(),
        "console errors: {:?}",
        last.console
    );
    let differ = canvas_difference(&first, &last);
    assert!(differ > 1000, "moving the slider changed only {differ} pixels");

    let persp = load(
        &browser,
        &url(&page, "epoch=4&view=perspective&cross=0"),
        dir.path(),
        "persp",
    );
    assert!(
        console_errors(&persp.console).is_empty(),
        "console errors: {:?}",
        persp.console
    );
    assert!(canvas_variance(&persp) > 50.0);
    assert!(
        canvas_difference(&last, &persp) > 1000,
        "the perspective differs from the top view"
    );
}

/// Not a pass/fail test of speed (machines differ): prints the mean drawing time of a frame for
/// networks of growing size, the numbers in docs/VIEWER.md. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run it to refresh docs/VIEWER.md's numbers"]
fn drawing_time_by_network_size() {
    let Some(browser) = chromium() else {
        println!("skipped: no chromium");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, sizes) in [
        vec![784, 128, 128, 128, 256, 20],
        vec![784, 256, 512, 512, 1024, 20],
        vec![784, 512, 1024, 1024, 2048, 20],
    ]
    .into_iter()
    .enumerate()
    {
        let h = synthetic(&sizes, 2, 200_000);
        for max_connections in [5_000, 20_000, 100_000] {
            let page = dir.path().join(format!("bench-{i}-{max_connections}.html"));
            let options = ViewerOptions {
                max_connections,
                ..ViewerOptions::default()
            };
            viewer::write_html(&h, &NeuronInfo::default(), &page, &options).unwrap();
            for view in ["top", "perspective"] {
                let l = load(
                    &browser,
                    &url(&page, &format!("view={view}&conn=0&bench=10")),
                    dir.path(),
                    "bench",
                );
                let lines: Vec<&str> = l
                    .console
                    .iter()
                    .filter(|m| m.contains("viewer bench"))
                    .map(|m| m.split(", source").next().unwrap_or(m))
                    .collect();
                println!(
                    "sizes {sizes:?}, max {max_connections} connections, {view}, {} KiB: {lines:?}",
                    std::fs::metadata(&page).unwrap().len() / 1024
                );
            }
        }
    }
}
