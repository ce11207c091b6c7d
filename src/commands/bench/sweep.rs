//! `bench --sweep`: step time of every program against batch size and width.

use super::{BenchArgs, BenchBackend};
use crate::bench::report::SweepPoint;
use crate::bench::{
    bench_model, bench_train, median, PyServer, Timing, PAPER_HIDDEN, SWEEP_BATCHES, SWEEP_WIDTHS,
};
use crate::config::InputMode;
use crate::data::Datasets;
use anyhow::Result;

/// Steps per sweep measurement: about 16384 examples at width x1, fewer as the width grows, and at
/// least 2 steps.
fn sweep_steps(batch: usize, width: usize) -> usize {
    (16384 / width).div_ceil(batch).max(2)
}

/// Measures every program's step time over the batch sizes and widths of the sweep (our CPU backend
/// and PyTorch on the first thread count of `--threads`).
pub(super) fn run_sweep(
    args: &BenchArgs,
    threads: usize,
    data: &Datasets,
    backends: &[BenchBackend],
    mut server: Option<&mut PyServer>,
) -> Result<Vec<SweepPoint>> {
    let input_dim = data.input_dim(InputMode::Concat);
    let rounds = args.repeats.min(3);
    let mut points: Vec<SweepPoint> = Vec::new();
    // A program whose next round is predicted to take longer than this is left out of the rest
    // of the sweep (a software GPU such as lavapipe would otherwise run for hours).
    const ROUND_LIMIT_S: f64 = 15.0;
    let predicted_round_s =
        |points: &[SweepPoint], program: &str, width: usize, batch: usize, steps: usize| {
            points
                .iter()
                .rev()
                .find(|p| p.program == program)
                .map_or(0.0, |p| {
                    let scale =
                        (batch as f64 / p.batch_size as f64) * (width as f64 / p.width as f64).powi(2);
                    p.step_ms * 1e-3 * scale * steps as f64
                })
        };
    let mut dropped: Vec<String> = Vec::new();
    println!();
    println!("sweep: spatial network, median of {rounds} alternating rounds per point");
    for &width in &SWEEP_WIDTHS {
        let hidden: Vec<usize> = PAPER_HIDDEN.iter().map(|h| h * width).collect();
        for &batch in &SWEEP_BATCHES {
            let steps = sweep_steps(batch, width);
            let mut keep = |program: &str| {
                if dropped.iter().any(|d| d == program) {
                    return false;
                }
                let t = predicted_round_s(&points, program, width, batch, steps);
                if t > ROUND_LIMIT_S {
                    println!("  {program}: left out from x{width} batch {batch} on (a round would take about {t:.0} s)");
                    dropped.push(program.to_string());
                    return false;
                }
                true
            };
            let model = bench_model(input_dim, &hidden, true, args.alpha, args.beta);
            let mut runners = Vec::new();
            for &w in backends {
                if !keep(w.label()) {
                    continue;
                }
                let train = bench_train(batch);
                let mut r = w.runner(args.adapter.as_deref(), threads, model.clone(), train, data)?;
                r.run(2)?;
                runners.push((w.label().to_string(), r, Vec::new()));
            }
            let use_py = server.is_some() && keep("pytorch");
            let mut py_timings = Vec::new();
            for _ in 0..rounds {
                for (_, r, timings) in runners.iter_mut() {
                    timings.push(r.run(steps)?);
                }
                if let Some(s) = server.as_deref_mut().filter(|_| use_py) {
                    py_timings
                        .push(s.measure("eager", true, batch, &hidden, args.alpha, args.beta, steps, 2)?);
                }
            }
            let mut measured: Vec<(String, Vec<Timing>)> =
                runners.into_iter().map(|(n, _, t)| (n, t)).collect();
            if use_py {
                measured.push(("pytorch".into(), py_timings));
            }
            for (program, timings) in measured {
                let sps = median(&timings.iter().map(Timing::samples_per_second).collect::<Vec<_>>());
                let p = SweepPoint {
                    program,
                    width,
                    batch_size: batch,
                    step_ms: 1000.0 * batch as f64 / sps,
                    samples_per_second: sps,
                };
                println!(
                    "  x{width} batch {batch:>5} {:<8} {:9.3} ms/step {:9.0} samples/s",
                    p.program, p.step_ms, p.samples_per_second
                );
                points.push(p);
            }
        }
    }
    Ok(points)
}
