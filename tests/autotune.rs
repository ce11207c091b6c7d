//! The matmul autotune without a GPU: its sampling policy (at least 5 samples of at least 1 ms,
//! the median) driven by a scripted clock, and its disk cache (round trip, misses on a changed
//! shader hash or driver, a corrupt file survived, the mode variable checked).

use anyhow::{bail, Result};
use spatial_gpu::gpu::autotune::{
    cache_key, load, measure, store, CacheMode, Choice, Outcome, MIN_SAMPLES, MIN_SAMPLE_SECONDS,
};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A clock for `measure`: `per_dispatch · reps + overhead`, times `noise(call)`; records the reps
/// of every call.
fn fake(
    per_dispatch: f64,
    overhead: f64,
    noise: impl Fn(usize) -> f64,
) -> (impl FnMut(usize) -> Result<f64>, std::rc::Rc<RefCell<Vec<usize>>>) {
    let calls = std::rc::Rc::new(RefCell::new(Vec::new()));
    let seen = calls.clone();
    let run = move |reps: usize| {
        let i = seen.borrow().len();
        seen.borrow_mut().push(reps);
        Ok((per_dispatch * reps as f64 + overhead) * noise(i))
    };
    (run, calls)
}

fn measured(o: Outcome) -> spatial_gpu::gpu::autotune::Measurement {
    match o {
        Outcome::Measured(m) => m,
        Outcome::Pruned(t) => panic!("pruned after {t} s"),
    }
}

#[test]
fn at_least_five_samples_of_at_least_a_millisecond_and_their_median() {
    for &(per, overhead) in &[(3e-6, 20e-6), (37e-6, 5e-6), (0.4e-3, 0.0), (4e-3, 1e-4)] {
        // ±10 % noise that varies from call to call.
        let (run, calls) = fake(per, overhead, |i| 1.0 + 0.1 * ((i * 7 % 5) as f64 - 2.0) / 2.0);
        let m = measured(measure(run, None).unwrap());
        assert!(m.samples.len() >= MIN_SAMPLES, "{} samples", m.samples.len());
        for s in &m.samples {
            assert!(
                *s >= MIN_SAMPLE_SECONDS,
                "a sample of {s} s at {per} s per dispatch"
            );
        }
        let rel = (m.per_dispatch - per).abs() / per;
        // The overhead is spread over at least 1 ms of dispatches; the noise's median is 1.
        assert!(
            rel < 0.05 + overhead / (m.reps as f64 * per),
            "median {} for {per}",
            m.per_dispatch
        );
        let calls = calls.borrow();
        assert_eq!(calls[0], 1, "a warm-up of one dispatch first");
        // Every sample ran the same number of dispatches, the last MIN_SAMPLES calls.
        assert!(calls[calls.len() - MIN_SAMPLES..].iter().all(|&r| r == m.reps));
    }
}

#[test]
fn the_median_is_the_middle_sample_over_the_dispatches() {
    // Warm-up, then 1 dispatch in 2.5 ms: enough, the first sample; four more samples.
    let script = [9.0, 2.5, 5.0, 1.5, 3.0, 2.0, 4.0];
    let mut i = 0;
    let m = measured(
        measure(
            |_| {
                i += 1;
                Ok(script[i - 1] * 1e-3)
            },
            None,
        )
        .unwrap(),
    );
    assert_eq!(m.reps, 1);
    assert_eq!(m.samples, vec![2.5e-3, 5e-3, 1.5e-3, 3e-3, 2e-3]);
    assert_eq!(m.per_dispatch, 2.5e-3);
}

#[test]
fn a_short_sample_raises_the_dispatch_count_and_starts_again() {
    // 0.25 ms per dispatch; the second sample is 30 % fast, under 1 ms at the first count.
    let (run, calls) = fake(0.25e-3, 0.0, |i| if i == 4 { 0.7 } else { 1.0 });
    let m = measured(measure(run, None).unwrap());
    assert!(m.samples.iter().all(|&s| s >= MIN_SAMPLE_SECONDS));
    assert_eq!(m.samples.len(), MIN_SAMPLES);
    let calls = calls.borrow();
    assert!(
        calls.len() > 2 + MIN_SAMPLES,
        "the samples started again: {calls:?}"
    );
}

#[test]
fn a_clock_that_does_not_advance_is_an_error() {
    let e = measure(|_| Ok(0.0), None).unwrap_err();
    assert!(format!("{e:#}").contains("does not advance"), "{e:#}");
    let e = measure(|_| bail!("device lost"), None).unwrap_err();
    assert!(format!("{e:#}").contains("device lost"));
}

#[test]
fn only_a_clearly_slower_dispatch_of_over_a_millisecond_is_pruned() {
    let (run, _) = fake(5e-3, 0.0, |_| 1.0);
    assert_eq!(measure(run, Some(3e-3)).unwrap(), Outcome::Pruned(5e-3));
    // Slower than the limit but under 1 ms (a wall clock's launch overhead): sampled.
    let (run, _) = fake(0.2e-3, 0.0, |_| 1.0);
    assert!(matches!(measure(run, Some(1e-5)).unwrap(), Outcome::Measured(_)));
    // Over 1 ms but within the limit: sampled.
    let (run, _) = fake(2e-3, 0.0, |_| 1.0);
    assert!(matches!(measure(run, Some(3e-3)).unwrap(), Outcome::Measured(_)));
}

fn choice(variant: &str) -> Choice {
    Choice {
        shape: "256x100x1568 a(1568,1) b(1,1568) aligned flags 3".into(),
        variant: variant.into(),
        seconds: 12.5e-6,
        clock: "GPU timestamps".into(),
        medians: BTreeMap::from([
            ("mm_splitk".to_string(), 12.5e-6),
            ("mm_tiled".to_string(), 20e-6),
        ]),
        pruned: vec!["mm_reg8x8".into()],
    }
}

const DEVICE: &str = "NVIDIA H200 | Vulkan | NVIDIA | 580.159.04";

#[test]
fn the_cache_round_trips_and_misses_on_a_new_shader_or_driver() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("matmul-autotune.json");
    assert!(load(&path).unwrap().is_empty(), "no file: empty, not an error");
    let c = choice("mm_splitk");
    let key = cache_key(DEVICE, "0123456789abcdef", &c.shape);
    store(&path, &key, &c).unwrap();
    let other = choice("mm_tiled");
    let key2 = cache_key(
        DEVICE,
        "0123456789abcdef",
        "256x128x1568 a(1568,1) b(1,1568) aligned flags 3",
    );
    store(&path, &key2, &other).unwrap();
    let got = load(&path).unwrap();
    assert_eq!(got.get(&key), Some(&c), "round trip");
    assert_eq!(got.get(&key2), Some(&other), "a second entry kept the first");
    let new_shader = cache_key(DEVICE, "fedcba9876543210", &c.shape);
    let new_driver = cache_key(
        "NVIDIA H200 | Vulkan | NVIDIA | 580.160.01",
        "0123456789abcdef",
        &c.shape,
    );
    assert!(!got.contains_key(&new_shader), "a changed shader hash misses");
    assert!(!got.contains_key(&new_driver), "a changed driver misses");
    // Written atomically: no temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        c.summary()
            .starts_with("mm_splitk 12.5 µs (mm_tiled 20.0; pruned mm_reg8x8)"),
        "{}",
        c.summary()
    );
}

#[test]
fn a_corrupt_cache_is_an_error_to_warn_about_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matmul-autotune.json");
    for bad in ["{ not json", "{\"format\": 99, \"choices\": {}}", ""] {
        std::fs::write(&path, bad).unwrap();
        assert!(load(&path).is_err(), "{bad:?} loads");
        let c = choice("mm_tiled");
        store(&path, "k", &c).unwrap();
        assert_eq!(load(&path).unwrap().get("k"), Some(&c), "replaced after {bad:?}");
    }
}

#[test]
fn the_cache_mode_variable_is_checked() {
    assert_eq!(CacheMode::parse(None).unwrap(), CacheMode::On);
    assert_eq!(CacheMode::parse(Some("")).unwrap(), CacheMode::On);
    assert_eq!(CacheMode::parse(Some("off")).unwrap(), CacheMode::Off);
    assert_eq!(CacheMode::parse(Some("refresh")).unwrap(), CacheMode::Refresh);
    let e = CacheMode::parse(Some("maybe")).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("SPATIAL_GPU_AUTOTUNE_CACHE") && msg.contains("maybe"),
        "{msg}"
    );
}
