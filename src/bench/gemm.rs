//! The GEMM roofline: the matrix products of one CPU training step alone, with the shapes and
//! strides the CPU backend uses, and the floor they put under an epoch.

use super::matmul_flops_per_example;
use super::report::{GemmReport, GemmShapeReport};
use crate::cpu::linear;
use std::time::Instant;

/// One GEMM of a training step: `c (m×n) = a (m×k) · b (k×n)` with the CPU backend's strides.
#[derive(Clone, Debug)]
pub struct GemmCall {
    /// `forward l`, `dW l` or `dX l`.
    pub what: String,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a_strides: (usize, usize),
    pub b_strides: (usize, usize),
}

impl GemmCall {
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }
}

/// The GEMMs of one training step of a network of `sizes` at batch `b`, as `cpu::linear` issues them.
pub fn step_gemms(sizes: &[usize], b: usize) -> Vec<GemmCall> {
    let mut v = Vec::new();
    for l in 1..sizes.len() {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        v.push(GemmCall {
            what: format!("forward {l}"),
            m: b,
            k: c,
            n: oc,
            a_strides: (c, 1),
            b_strides: (1, c),
        });
    }
    for l in (1..sizes.len()).rev() {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        v.push(GemmCall {
            what: format!("dW {l}"),
            m: oc,
            k: b,
            n: c,
            a_strides: (1, oc),
            b_strides: (c, 1),
        });
        if l > 1 {
            v.push(GemmCall {
                what: format!("dX {l}"),
                m: b,
                k: oc,
                n: c,
                a_strides: (oc, 1),
                b_strides: (c, 1),
            });
        }
    }
    v
}

/// Measures the GEMMs of one training step (best of several rounds, after a warm-up).
pub fn measure_gemms(sizes: &[usize], b: usize, rounds: usize) -> GemmReport {
    let calls = step_gemms(sizes, b);
    let fill = |n: usize| {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect::<Vec<f32>>()
    };
    let bufs: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = calls
        .iter()
        .map(|g| (fill(g.m * g.k), fill(g.k * g.n), vec![0.0; g.m * g.n]))
        .collect();
    let mut bufs = bufs;
    let mut best = vec![f64::INFINITY; calls.len()];
    let mut best_step = f64::INFINITY;
    for round in 0..rounds + 1 {
        let t_step = Instant::now();
        for (i, (g, (a, bb, c))) in calls.iter().zip(bufs.iter_mut()).enumerate() {
            let t = Instant::now();
            linear::gemm(g.m, g.k, g.n, 1.0, a, g.a_strides, bb, g.b_strides, 1.0, c);
            let dt = t.elapsed().as_secs_f64();
            if round > 0 {
                best[i] = best[i].min(dt);
            }
        }
        if round > 0 {
            best_step = best_step.min(t_step.elapsed().as_secs_f64());
        }
    }
    let flops = GemmCall::flops;
    let shapes: Vec<GemmShapeReport> = calls
        .iter()
        .zip(&best)
        .map(|(g, &t)| GemmShapeReport {
            what: g.what.clone(),
            mkn: [g.m, g.k, g.n],
            gflops: flops(g) / t * 1e-9,
        })
        .collect();
    let step_flops: f64 = calls.iter().map(flops).sum();
    let peak = shapes.iter().map(|s| s.gflops).fold(0.0, f64::max);
    let per_epoch = 60000.0 * matmul_flops_per_example(sizes);
    GemmReport {
        batch_size: b,
        sizes: sizes.to_vec(),
        shapes,
        step_seconds: best_step,
        step_gflops: step_flops / best_step * 1e-9,
        peak_gflops: peak,
        flops_per_epoch: per_epoch,
        floor_seconds_per_epoch_at_peak: per_epoch / (peak * 1e9),
        floor_seconds_per_epoch: best_step * 60000.0 / b as f64,
    }
}
