//! The CPU backend's matrix products (`matrixmultiply::sgemm` through `cpu::linear::gemm`) at the
//! shapes and strides of one training step of the paper's concat network, batch 256: the GEMM peak
//! of the roofline in docs/PERFORMANCE.md.
//!
//! `cargo bench --bench cpu_gemm`. Throughput is in elements/s where one element is one FLOP, so
//! Gelem/s reads as GFLOP/s. `spatial-gpu bench` measures the same sequence (best of 20) without
//! criterion.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spatial_gpu::bench::{step_gemms, PAPER_HIDDEN};
use spatial_gpu::cpu::linear::gemm;
use std::time::Duration;

fn filled(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5).collect()
}

fn gemms(c: &mut Criterion) {
    let mut sizes = vec![1568];
    sizes.extend(PAPER_HIDDEN);
    sizes.push(20);
    for batch in [256usize, 1024] {
        let calls = step_gemms(&sizes, batch);
        let mut group = c.benchmark_group(format!("cpu_gemm_b{batch}"));
        group
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(20);
        for g in &calls {
            let (a, b, mut out) = (filled(g.m * g.k), filled(g.k * g.n), vec![0.0f32; g.m * g.n]);
            group.throughput(Throughput::Elements(g.flops() as u64));
            let id = BenchmarkId::new(g.what.replace(' ', "_"), format!("{}x{}x{}", g.m, g.k, g.n));
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    gemm(
                        g.m,
                        g.k,
                        g.n,
                        1.0,
                        &a,
                        g.a_strides,
                        &b,
                        g.b_strides,
                        1.0,
                        &mut out,
                    )
                })
            });
        }
        // The whole step's products one after the other: its rate is the roofline's GEMM rate.
        let bufs: Vec<_> = calls
            .iter()
            .map(|g| (filled(g.m * g.k), filled(g.k * g.n), vec![0.0f32; g.m * g.n]))
            .collect();
        let mut bufs = bufs;
        group.throughput(Throughput::Elements(
            calls.iter().map(|g| g.flops()).sum::<f64>() as u64
        ));
        group.bench_function("whole_step", |bench| {
            bench.iter(|| {
                for (g, (a, b, out)) in calls.iter().zip(bufs.iter_mut()) {
                    gemm(g.m, g.k, g.n, 1.0, a, g.a_strides, b, g.b_strides, 1.0, out);
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotters backend finds no system font on a bare machine.
    config = Criterion::default().without_plots();
    targets = gemms
}
criterion_main!(benches);
