//! The training history (`history`): what a point records, the file's round trip and its checks,
//! resume (truncate and record again gives the uninterrupted history, byte for byte), and the
//! animation and viewer drawn from it.

use spatial_gpu::checkpoint::Progress;
use spatial_gpu::config::{Activation, Init, ModelConfig, TransportNorm, WeightNorm};
use spatial_gpu::history::{History, HistoryError, HistoryOptions, PAPER_CONNECTION_THRESHOLD};
use spatial_gpu::model::Params;
use spatial_gpu::split;
use spatial_gpu::viz::animate::{self, AnimateOptions};
use spatial_gpu::viz::viewer::{self, NeuronInfo, ViewerOptions};
use spatial_gpu::viz::{Thresholds, TopView};
use std::collections::BTreeMap;
use std::path::Path;

fn model() -> ModelConfig {
    let m = ModelConfig {
        sizes: vec![6, 10, 12, 16, 4],
        heads: 2,
        tasks: Vec::new(),
        spatial_layers: vec![2, 3, 4],
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

/// A stand-in for training: the network at step `s`, a deterministic function of `s` alone
/// (positions drift, weights grow and shrink), so that two "runs" record the same points.
fn params_at(m: &ModelConfig, s: usize) -> Params {
    let mut p = Params::init(m, 7);
    let t = s as f32;
    for (i, v) in p.data.iter_mut().enumerate() {
        *v += 0.05 * t * ((i as f32) * 0.37).sin();
    }
    p
}

/// Progress after `s` steps with 4 batches an epoch.
fn progress(s: usize) -> Progress {
    Progress {
        epoch: s / 4,
        batch: s % 4,
    }
}

/// Records every `every` steps and at each epoch's end, steps `from..=to`.
fn record_run(h: &mut History, m: &ModelConfig, from: usize, to: usize, every: usize) {
    for s in from..=to {
        if s % 4 == 0 || s % every == 0 {
            h.record(progress(s), m, &params_at(m, s)).unwrap();
        }
    }
}

#[test]
fn a_point_holds_positions_sums_tasks_and_the_paper_connections() {
    let m = model();
    let params = params_at(&m, 3);
    let mut h = History::new(m.clone(), HistoryOptions::default());
    h.record(Progress { epoch: 0, batch: 3 }, &m, &params).unwrap();
    let p = &h.points[0];
    for l in 0..m.sizes.len() {
        assert_eq!(p.positions[l], params.position(l), "positions of layer {l}");
    }
    for l in 1..m.sizes.len() {
        let (n_in, w) = (m.sizes[l - 1], params.weight(l));
        for j in 0..m.sizes[l] {
            let s: f32 = w[j * n_in..(j + 1) * n_in].iter().map(|v| v.abs()).sum();
            assert!(
                (p.incoming[l - 1][j] - s).abs() < 1e-5,
                "incoming sum of neuron {j} of layer {l}"
            );
        }
        for i in 0..n_in {
            let s: f32 = (0..m.sizes[l]).map(|j| w[j * n_in + i].abs()).sum();
            assert!(
                (p.outgoing[l - 1][i] - s).abs() < 1e-5,
                "outgoing sum of neuron {i} of layer {}",
                l - 1
            );
        }
    }
    let assignment = split::assign(&m, &params);
    let tasks: Vec<Vec<u8>> = assignment
        .groups
        .iter()
        .map(|g| g.iter().map(|&t| t as u8).collect())
        .collect();
    assert_eq!(p.tasks, tasks);
    assert_eq!(h.connection_layers(), vec![3, 4]);
    for (k, l) in h.connection_layers().into_iter().enumerate() {
        let (n_in, w) = (m.sizes[l - 1], params.weight(l));
        let max = w.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let floor = PAPER_CONNECTION_THRESHOLD.min(0.01 * max);
        let expected: Vec<(u32, u32, f32)> = (0..w.len())
            .filter(|&e| w[e].abs() >= floor)
            .map(|e| ((e % n_in) as u32, (e / n_in) as u32, w[e]))
            .collect();
        let c = &p.connections[k];
        let got: Vec<(u32, u32, f32)> = (0..c.len()).map(|e| (c.from[e], c.to[e], c.weight[e])).collect();
        assert_eq!(got, expected, "connections into layer {l}");
        assert!(!got.is_empty());
    }
    assert!(p.weights.is_none(), "weights only when asked");
}

#[test]
fn the_connection_cap_keeps_the_strongest() {
    let m = model();
    let params = params_at(&m, 5);
    let options = HistoryOptions {
        weights: false,
        max_connections: 7,
    };
    let mut h = History::new(m.clone(), options);
    h.record(Progress::default(), &m, &params).unwrap();
    for (k, l) in h.connection_layers().into_iter().enumerate() {
        let c = &h.points[0].connections[k];
        assert_eq!(c.len(), 7, "layer {l}");
        let mut all: Vec<f32> = params.weight(l).iter().map(|v| v.abs()).collect();
        all.sort_by(|a, b| b.total_cmp(a));
        let weakest_kept = c.weight.iter().map(|v| v.abs()).fold(f32::INFINITY, f32::min);
        assert_eq!(weakest_kept, all[6], "the 7 strongest of layer {l}");
    }
}

#[test]
fn save_and_load_give_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    for weights in [false, true] {
        let mut h = History::new(
            m.clone(),
            HistoryOptions {
                weights,
                ..HistoryOptions::default()
            },
        );
        record_run(&mut h, &m, 0, 9, 2);
        assert_eq!(h.points.len(), 5); // steps 0, 2, 4, 6 and 8
        let path = dir.path().join(format!("history-{weights}.safetensors"));
        h.save(&path).unwrap();
        let back = History::load(&path).unwrap();
        // SPATIAL_GPU_KEEP_OUTPUT=DIR keeps a copy (to try the file with Python's safetensors).
        if let Some(keep) = std::env::var_os("SPATIAL_GPU_KEEP_OUTPUT") {
            let _ = std::fs::copy(&path, Path::new(&keep).join(path.file_name().unwrap()));
        }
        assert_eq!(back, h, "weights: {weights}");
        if weights {
            let w = back.points[3].weights.as_ref().unwrap();
            assert_eq!(w[1], params_at(&m, 6).weight(2));
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-")));
    }
}

#[test]
fn a_resumed_run_has_the_history_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = model();
    let whole = dir.path().join("whole.safetensors");
    let mut h = History::new(m.clone(), HistoryOptions::default());
    record_run(&mut h, &m, 0, 13, 3);
    h.save(&whole).unwrap();

    // The interrupted run saved its history at step 10, its last checkpoint was at step 8, then it
    // was killed: the resumed run loads both and goes on from the checkpoint.
    let cut = dir.path().join("cut.safetensors");
    let mut first = History::new(m.clone(), HistoryOptions::default());
    record_run(&mut first, &m, 0, 10, 3);
    first.save(&cut).unwrap();
    let mut resumed = History::load(&cut).unwrap();
    resumed.truncate_after(progress(8));
    assert_eq!(resumed.points.last().unwrap().progress, progress(8));
    record_run(&mut resumed, &m, 9, 13, 3);
    resumed.save(&cut).unwrap();
    assert_eq!(resumed, h);
    assert_eq!(
        std::fs::read(&cut).unwrap(),
        std::fs::read(&whole).unwrap(),
        "the files are identical"
    );
}

#[test]
fn recording_checks_order_and_model() {
    let m = model();
    let mut h = History::new(m.clone(), HistoryOptions::default());
    h.record(progress(5), &m, &params_at(&m, 5)).unwrap();
    let err = h
        .record(progress(4), &m, &params_at(&m, 4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncate_after"), "{err}");
    // The same progress again replaces the point.
    h.record(progress(5), &m, &params_at(&m, 6)).unwrap();
    assert_eq!(h.points.len(), 1);
    assert_eq!(h.points[0].positions[2], params_at(&m, 6).position(2));
    let mut other = m.clone();
    other.sizes[1] = 11;
    let err = h
        .record(progress(6), &other, &params_at(&other, 6))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not this history's model"), "{err}");
    let err = h
        .record(progress(6), &m, &params_at(&other, 6))
        .unwrap_err()
        .to_string();
    assert!(err.contains("parameters of layer sizes"), "{err}");
}

fn load_err(bytes: &[u8]) -> String {
    let path = Path::new("run/history.safetensors");
    match History::from_bytes(bytes, path) {
        Ok(_) => panic!("bad bytes were accepted"),
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("run/history.safetensors"),
                "the error names the file: {text}"
            );
            text
        }
    }
}

#[test]
fn bad_files_are_refused_with_a_clear_error_and_never_panic() {
    let m = model();
    let mut h = History::new(m.clone(), HistoryOptions::default());
    record_run(&mut h, &m, 0, 5, 2);
    let good = h.to_bytes();
    assert!(load_err(&[]).contains("not a readable history"));
    assert!(load_err(b"hello world, not a history").contains("not a readable history"));
    assert!(load_err(&good[..good.len() - 3]).contains("not a readable history"));
    // Every truncation and many single-byte changes: an error or (for bytes the format does not
    // check, e.g. inside a float) a history, never a panic.
    for cut in (0..good.len()).step_by(7) {
        assert!(
            History::from_bytes(&good[..cut], Path::new("x")).is_err(),
            "cut at {cut}"
        );
    }
    for at in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let _ = History::from_bytes(&bad, Path::new("x"));
    }
    // A checkpoint is a safetensors file, but not a history.
    let other = safetensors::serialize(
        Vec::<(String, safetensors::tensor::TensorView<'_>)>::new(),
        Some([("format".to_string(), "spatial-gpu".to_string())].into()),
    )
    .unwrap();
    assert!(load_err(&other).contains("not a spatial-gpu history"));
    // A connection index out of range is caught (layer 3 has 12 neurons).
    let text = String::from_utf8_lossy(&good).into_owned();
    assert!(text.contains("conn_from"));
    let mut h2 = h.clone();
    h2.points[1].connections[0].from[0] = 12;
    assert!(load_err(&h2.to_bytes()).contains("layer3.conn_from"));
    let mut h3 = h.clone();
    h3.points[1].tasks[0][0] = 9;
    assert!(load_err(&h3.to_bytes()).contains("task 9"));
    let mut h4 = h.clone();
    h4.points.swap(0, 1);
    assert!(load_err(&h4.to_bytes()).contains("does not come after"));
    let missing = dir_file("missing.safetensors");
    match History::load(&missing) {
        Err(HistoryError::Io { file, .. }) => assert_eq!(file, missing),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

fn dir_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("spatial-gpu-no-such-dir-{}", std::process::id()))
        .join(name)
}

fn small_history() -> History {
    let m = model();
    let mut h = History::new(m.clone(), HistoryOptions::default());
    record_run(&mut h, &m, 0, 8, 4);
    h
}

#[test]
fn the_top_view_applies_the_paper_filters() {
    let h = small_history();
    let p = &h.points[2];
    let view = TopView::new(&h, p, Thresholds::default());
    for (k, &l) in h.split_layers().iter().enumerate() {
        let expected = p.incoming[l - 1].iter().filter(|&&s| s > 0.1).count();
        assert_eq!(view.neurons[k].len(), expected, "layer {l}");
    }
    let strict = TopView::new(
        &h,
        p,
        Thresholds {
            min_input: 0.1,
            min_weight: 0.2,
        },
    );
    assert!(strict.edges.iter().flatten().all(|e| e.2 > 0.2));
    assert!(
        strict.edges.iter().map(Vec::len).sum::<usize>() < view.edges.iter().map(Vec::len).sum::<usize>()
    );
}

#[test]
fn the_gif_has_one_frame_per_point_and_the_frames_move() {
    let h = small_history();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training.gif");
    let options = AnimateOptions {
        size: (640, 560),
        ..AnimateOptions::default()
    };
    animate::write_gif(&h, &path, &options).unwrap();
    // To look at it: SPATIAL_GPU_KEEP_OUTPUT=DIR keeps a copy there.
    if let Some(keep) = std::env::var_os("SPATIAL_GPU_KEEP_OUTPUT") {
        let _ = std::fs::copy(&path, Path::new(&keep).join("training.gif"));
    }
    let mut decoder = gif::DecodeOptions::new();
    decoder.set_color_output(gif::ColorOutput::RGBA);
    let mut reader = decoder.read_info(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!((reader.width(), reader.height()), (640, 560));
    let mut frames = Vec::new();
    while let Some(f) = reader.read_next_frame().unwrap() {
        frames.push(f.buffer.to_vec());
    }
    assert_eq!(frames.len(), h.points.len());
    assert_ne!(
        frames[0],
        frames[frames.len() - 1],
        "the network moves between the first and last frames"
    );
    let bad = AnimateOptions {
        size: (401, 360),
        ..AnimateOptions::default()
    };
    let err = animate::write_gif(&h, &path, &bad).unwrap_err().to_string();
    assert!(err.contains("401x360"), "{err}");
    let empty = History::new(model(), HistoryOptions::default());
    let err = animate::write_gif(&empty, &path, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no points"), "{err}");
}

#[test]
fn the_mp4_needs_ffmpeg_and_says_so() {
    let h = small_history();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training.mp4");
    let options = AnimateOptions {
        size: (320, 240),
        ..AnimateOptions::default()
    };
    match animate::find_ffmpeg() {
        Some(_) => {
            animate::write_mp4(&h, &path, &options).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() > 1000 && &bytes[4..8] == b"ftyp", "an MP4 file");
        }
        None => {
            let err = animate::write_mp4(&h, &path, &options).unwrap_err().to_string();
            assert!(err.contains("ffmpeg") && err.contains("training.mp4"), "{err}");
            assert!(!path.exists());
        }
    }
}

#[test]
fn the_viewer_is_one_self_contained_file() {
    let h = small_history();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("viewer.html");
    let mut info = NeuronInfo::default();
    info.accuracy_drop.insert(3, vec![0.01; 16]);
    let options = ViewerOptions {
        title: "a </script> <b>title</b>".into(),
        ..ViewerOptions::default()
    };
    viewer::write_html(&h, &info, &path, &options).unwrap();
    let html = std::fs::read_to_string(&path).unwrap();
    for outside in ["http://", "https://", "src=", "href=", "@import"] {
        assert!(
            !html.contains(outside),
            "the page refers to something outside it: {outside}"
        );
    }
    assert_eq!(
        html.matches("</script>").count(),
        2,
        "the title cannot end a script early"
    );
    assert!(html.contains("a &lt;/script&gt; &lt;b&gt;title&lt;/b&gt;"));
    let data = viewer::viewer_data(&h, &info, &options).unwrap();
    assert_eq!(data["points"].as_array().unwrap().len(), h.points.len());
    assert_eq!(data["layers"].as_array().unwrap().len(), 3);
    assert!(data["accuracyDrop"][1].is_string() && data["accuracyDrop"][0].is_null());

    let few = ViewerOptions {
        max_points: 3,
        max_connections: 5,
        ..ViewerOptions::default()
    };
    let data = viewer::viewer_data(&h, &info, &few).unwrap();
    let points = data["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    assert_eq!(points[0]["epoch"], 0);
    assert_eq!(points[2]["epoch"], h.points.last().unwrap().progress.epoch);
    // 5 connections of 4 bytes: 20 bytes, 28 characters of base64.
    assert_eq!(points[1]["conn"][0]["w"].as_str().unwrap().len(), 28);

    let mut wrong = BTreeMap::new();
    wrong.insert(1, vec![0.0; 10]);
    let err = viewer::viewer_data(&h, &NeuronInfo { accuracy_drop: wrong }, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 1"), "{err}");
}
