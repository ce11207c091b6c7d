//! What `bench` reports: each program's measurements, the ratios to PyTorch, the GEMM roofline and
//! the step breakdowns, as JSON (`--json`) and as the printed tables.

use super::median;
use super::phases::Phase;
use super::reference::reference_batch;
use super::runner::Timing;
use crate::config::{ModelConfig, TrainConfig};
use crate::data::Datasets;
use crate::model::{Params, TrainState};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// One program's measurements of one network.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// `cpu`, `gpu` or `pytorch`.
    pub program: String,
    /// Threads of a CPU program (our CPU backend's `--threads`, PyTorch's `torch.set_num_threads`;
    /// PyTorch at its own default: the count it chose); absent for a GPU program.
    pub threads: Option<usize>,
    /// PyTorch's variant: `default` (its own thread count, on the CPU), `eager` or `graph` (a
    /// CUDA graph of the whole step, on CUDA); absent otherwise.
    pub variant: Option<String>,
    /// The backend's or framework's own name.
    pub detail: String,
    /// `spatial` or `regular`.
    pub network: String,
    pub batch_size: usize,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Samples per second of each round, in order.
    pub rounds: Vec<f64>,
    pub median_samples_per_second: f64,
    pub best_samples_per_second: f64,
    /// Samples per second of CPU time of each round, and their median (absent if not measured).
    pub cpu_rounds: Vec<f64>,
    pub median_samples_per_cpu_second: Option<f64>,
    /// Seconds per 60000-example epoch at the median rate.
    pub seconds_per_epoch: f64,
    /// Median seconds per training step.
    pub step_ms: f64,
}

impl Measured {
    pub fn new(
        program: &str,
        detail: String,
        network: &str,
        batch_size: usize,
        hidden: &[usize],
        timings: &[Timing],
    ) -> Self {
        let rounds: Vec<f64> = timings.iter().map(Timing::samples_per_second).collect();
        let med = median(&rounds);
        let cpu_rounds: Vec<f64> = timings
            .iter()
            .filter_map(Timing::samples_per_cpu_second)
            .collect();
        let cpu_med = (cpu_rounds.len() == timings.len()).then(|| median(&cpu_rounds));
        Measured {
            program: program.into(),
            threads: None,
            variant: None,
            detail,
            network: network.into(),
            batch_size,
            hidden: hidden.to_vec(),
            median_samples_per_second: med,
            best_samples_per_second: rounds.iter().copied().fold(0.0, f64::max),
            cpu_rounds,
            median_samples_per_cpu_second: cpu_med,
            seconds_per_epoch: 60000.0 / med,
            step_ms: 1000.0 * batch_size as f64 / med,
            rounds,
        }
    }

    /// This measurement, of a program on `threads` threads and of PyTorch's `variant`.
    pub fn with(mut self, threads: Option<usize>, variant: Option<&str>) -> Self {
        self.threads = threads;
        self.variant = variant.map(str::to_string);
        self
    }

    /// The program as the tables name it: `cpu 4t`, `pytorch 4t`, `pytorch default 16t`,
    /// `pytorch graph`, `gpu`.
    pub fn label(&self) -> String {
        let mut s = self.program.clone();
        if let Some(v) = &self.variant {
            s.push(' ');
            s.push_str(v);
        }
        if let Some(t) = self.threads {
            s.push_str(&format!(" {t}t"));
        }
        s
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub network: String,
    /// Our program ([`Measured::label`]) and the PyTorch program it is measured against.
    pub program: String,
    pub against: String,
    /// Our median samples/s over PyTorch's median samples/s.
    pub median_ratio: f64,
    /// Our best round over PyTorch's best round.
    pub best_ratio: f64,
    /// The ratio of the medians of samples per CPU second (what the programs cost, without the
    /// time other processes held the core).
    pub cpu_time_ratio: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub reference: PathBuf,
    pub passed: bool,
    pub output: String,
}

/// The GEMMs of one training step alone, with the shapes and strides the CPU backend uses.
#[derive(Clone, Debug, Serialize)]
pub struct GemmReport {
    pub batch_size: usize,
    pub sizes: Vec<usize>,
    /// Each GEMM: `[m, k, n]`, what it computes, best GFLOP/s.
    pub shapes: Vec<GemmShapeReport>,
    /// Best time of the whole sequence of one step's GEMMs, and its rate.
    pub step_seconds: f64,
    pub step_gflops: f64,
    /// Best rate of any single GEMM of the step (the machine's GEMM peak at these shapes).
    pub peak_gflops: f64,
    pub flops_per_epoch: f64,
    /// `flops_per_epoch / peak`, and the step's GEMMs times steps per epoch: the floor.
    pub floor_seconds_per_epoch_at_peak: f64,
    pub floor_seconds_per_epoch: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GemmShapeReport {
    pub what: String,
    pub mkn: [usize; 3],
    pub gflops: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    pub program: String,
    pub width: usize,
    pub batch_size: usize,
    pub step_ms: f64,
    pub samples_per_second: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub logical_cpus: usize,
    /// The thread counts raced (`--threads`): our CPU backend's and PyTorch's at each.
    pub threads: Vec<usize>,
    /// PyTorch's own thread count (`torch.get_num_threads()` when nothing sets it), if it ran.
    pub pytorch_default_threads: Option<usize>,
    /// Where PyTorch ran (`--torch-device`).
    pub torch_device: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub statistic: String,
    pub steps: usize,
    pub warmup: usize,
    pub repeats: usize,
    pub batch_size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub check: Option<CheckReport>,
    pub unavailable: Vec<(String, String)>,
    pub results: Vec<Measured>,
    pub ratios: Vec<Ratio>,
    pub gemm: Option<GemmReport>,
    /// Where the CPU backend's step time goes, per network.
    pub breakdown: Vec<NetworkBreakdown>,
    /// The GPU backend's step against its matmul dispatches alone, per network.
    pub gpu_breakdown: Vec<(String, crate::gpu::StepBreakdown)>,
    pub sweep: Vec<SweepPoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NetworkBreakdown {
    pub network: String,
    pub phases: Vec<Phase>,
}

/// [`crate::gpu::GpuBackend::step_breakdown`] on one batch of the concatenated input.
pub fn gpu_step_breakdown(
    adapter: Option<&str>,
    model: &ModelConfig,
    train: &TrainConfig,
    data: &Datasets,
    iters: usize,
) -> Result<crate::gpu::StepBreakdown> {
    let ctx = crate::gpu::GpuContext::new(adapter)?;
    let state = TrainState::new(Params::init(model, train.seed));
    let mut gpu = crate::gpu::GpuBackend::new(ctx, model.clone(), train.clone(), state)?;
    let batch = reference_batch(data, train);
    gpu.step_breakdown(&batch, iters)
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Each of our programs against the PyTorch programs it races on the same network (none without
/// PyTorch's results): the CPU backend on `t` threads against PyTorch on `t` threads, and the CPU
/// backend at its most threads and a GPU backend against PyTorch's other programs (its default
/// thread count, its CUDA variants).
pub fn ratios(results: &[Measured], networks: &[&str]) -> Vec<Ratio> {
    let most = results
        .iter()
        .filter(|m| m.program == "cpu")
        .filter_map(|m| m.threads)
        .max();
    let mut ratios = Vec::new();
    for &net in networks {
        for m in results
            .iter()
            .filter(|m| m.network == net && m.program != "pytorch")
        {
            let against = results.iter().filter(|p| {
                p.network == net
                    && p.program == "pytorch"
                    && if p.variant.is_none() {
                        m.program == "cpu" && p.threads == m.threads
                    } else {
                        m.program != "cpu" || m.threads == most
                    }
            });
            for py in against {
                ratios.push(Ratio {
                    network: net.into(),
                    program: m.label(),
                    against: py.label(),
                    median_ratio: m.median_samples_per_second / py.median_samples_per_second,
                    best_ratio: m.best_samples_per_second / py.best_samples_per_second,
                    cpu_time_ratio: m
                        .median_samples_per_cpu_second
                        .zip(py.median_samples_per_cpu_second)
                        .map(|(a, b)| a / b),
                });
            }
        }
    }
    ratios
}

pub fn print_results(results: &[Measured], ratios: &[Ratio], repeats: usize) {
    println!();
    println!(
        "{:<8} {:<20} {:>13} {:>9} {:>8} {:>8} {:>11}  samples/s of each round",
        "network",
        "program",
        format!("median of {repeats}"),
        "best",
        "step ms",
        "s/epoch",
        "per CPU-s",
    );
    for m in results {
        println!(
            "{:<8} {:<20} {:>13.0} {:>9.0} {:>8.3} {:>8.3} {:>11}  {}",
            m.network,
            m.label(),
            m.median_samples_per_second,
            m.best_samples_per_second,
            m.step_ms,
            m.seconds_per_epoch,
            m.median_samples_per_cpu_second
                .map_or("-".into(), |v| format!("{v:.0}")),
            m.rounds
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("(samples/s: wall clock, median and best of the alternating rounds; per CPU-s: samples per second of CPU time)");
    for r in ratios {
        println!(
            "ratio {} / {}, {} network: {:.2}x (medians), {:.2}x (bests){}",
            r.program,
            r.against,
            r.network,
            r.median_ratio,
            r.best_ratio,
            r.cpu_time_ratio
                .map_or(String::new(), |c| format!(", {c:.2}x (per CPU second)"))
        );
    }
}

pub fn print_gemm(g: &GemmReport, results: &[Measured]) {
    println!();
    println!(
        "GEMMs of one step at batch {} (matrixmultiply, best of 20): {:.3} ms, {:.1} GFLOP/s; fastest shape {:.1} GFLOP/s",
        g.batch_size,
        g.step_seconds * 1e3,
        g.step_gflops,
        g.peak_gflops
    );
    for s in &g.shapes {
        println!(
            "  {:<10} m={:<5} k={:<5} n={:<5} {:6.1} GFLOP/s",
            s.what, s.mkn[0], s.mkn[1], s.mkn[2], s.gflops
        );
    }
    println!(
        "matrix work per epoch {:.1} GFLOP: floor {:.3} s/epoch at the fastest shape's rate, {:.3} s/epoch as the step's GEMMs run",
        g.flops_per_epoch * 1e-9,
        g.floor_seconds_per_epoch_at_peak,
        g.floor_seconds_per_epoch
    );
    for m in results.iter().filter(|m| m.program == "cpu") {
        println!(
            "cpu backend ({} threads), {} network: {:.3} s/epoch = {:.2}x the GEMM floor",
            m.threads.unwrap_or(1),
            m.network,
            m.seconds_per_epoch,
            m.seconds_per_epoch / g.floor_seconds_per_epoch
        );
    }
}
