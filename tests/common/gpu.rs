//! Shared by the GPU tests: the adapter (through `spatial_gpu::gpu::test_context`, which skips or,
//! with `SPATIAL_GPU_REQUIRE_ADAPTER=1`, fails) and a tolerance check that says where and by how
//! much two tensors differ.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spatial_gpu::gpu::GpuContext;
use std::sync::Arc;

/// The GPU context, or `None` when the test should be skipped (see `gpu::test_context`).
pub fn context() -> Option<Arc<GpuContext>> {
    spatial_gpu::gpu::test_context()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` values uniform in `[lo, hi)`.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * rng.random::<f32>()).collect()
}

/// Every element must satisfy `|got - want| <= abs + rel * |want|`. On failure the message names
/// the tensor, the first bad index, both values, the number of bad elements and the max difference.
pub fn check(name: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{name}: length {} != expected {}", got.len(), want.len()));
    }
    let mut bad = 0;
    let mut first = None;
    let mut max_diff = 0f32;
    let mut max_at = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        if d > max_diff || d.is_nan() {
            max_diff = d;
            max_at = i;
        }
        if d.is_nan() || d > abs + rel * w.abs() {
            bad += 1;
            first.get_or_insert((i, g, w));
        }
    }
    match first {
        None => Ok(()),
        Some((i, g, w)) => Err(format!(
            "{name}: {bad} of {} elements out of tolerance (abs {abs:e} + rel {rel:e}·|ref|); first at index {i}: \
             gpu {g:e} vs cpu {w:e}; max |diff| {max_diff:e} at index {max_at} (gpu {:e}, cpu {:e})",
            got.len(),
            got[max_at],
            want[max_at]
        )),
    }
}

/// Collects failures so that one test reports every shape that failed, not only the first.
#[derive(Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    pub fn add(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            eprintln!("FAIL {e}");
            self.0.push(e);
        }
    }
    pub fn assert_none(&self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}
