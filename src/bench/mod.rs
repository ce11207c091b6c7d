//! The measurements of `spatial-gpu bench`: training throughput of our backends against the PyTorch baseline
//! (`bench/pytorch_baseline.py`), measured side by side in one invocation; the batch/width sweep;
//! the GEMM roofline. `docs/PERFORMANCE.md` describes the method and the figures.
//!
//! How the race is run, and why:
//! - The machine is shared and noisy, so the programs are measured alternately (ours, PyTorch,
//!   ours, PyTorch, ...; `--repeats` rounds) and the **median** of each program's rounds is reported
//!   (the best round too); the ratios are of medians. The baseline runs as one long-lived process
//!   (`pytorch_baseline.py --serve`) that loads the data once and answers timing requests, so
//!   alternating costs nothing.
//! - Both sides time the same thing: `steps` training steps of the concat input, each assembling its
//!   batch from the datasets in memory, a forward and backward pass and an Adam step, after a
//!   warm-up. Ours stops the clock after `take_losses` (a GPU's readback, so all work is finished).
//! - Before racing, `pytorch_baseline.py --check` loads our initial parameters and one batch from a
//!   reference file (`--reference`, written by [`write_reference`] with the CPU backend) and must
//!   reproduce our loss and every gradient within tolerance: the race is between equal programs.
//!
//! [`runner`] times our backends, [`pytorch`] drives the baseline process, [`reference`] writes the
//! check file, [`gemm`] measures the GEMM roofline, [`phases`] times the CPU step phase by phase, and
//! [`report`] holds the results, their JSON and the printed tables; [`sweep`] writes the batch/width
//! sweep. The command (`crate::commands::bench`) puts them together.

pub mod gemm;
pub mod phases;
pub mod pytorch;
pub mod reference;
pub mod report;
pub mod runner;
pub mod sweep;

pub use gemm::{measure_gemms, step_gemms, GemmCall};
pub use pytorch::{probe_cuda, probe_pytorch, run_check, PyServer, Script};
pub use reference::{reference_batch, write_reference};
pub use report::SweepPoint;
pub use runner::{OurRunner, Timing};
pub use sweep::{sweep_markdown, write_sweep};

use crate::config::{Init, InputMode, ModelConfig, TrainConfig};

/// The baseline script, built into the binary so `bench` works from any directory.
pub const BASELINE_SCRIPT: &str = include_str!("../../bench/pytorch_baseline.py");
/// METHOD.md's hidden layers.
pub const PAPER_HIDDEN: [usize; 4] = [128, 128, 128, 256];
/// Batch sizes and width factors of `--sweep`.
pub const SWEEP_BATCHES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];
pub const SWEEP_WIDTHS: [usize; 3] = [1, 2, 4];

/// The network the bench trains: METHOD.md's concat network with `hidden` layers, Xavier weights,
/// `alpha`/`beta` for the spatial one and 0/0 for the regular one.
pub fn bench_model(input_dim: usize, hidden: &[usize], spatial: bool, alpha: f32, beta: f32) -> ModelConfig {
    let mut model = ModelConfig::paper(input_dim);
    let mut sizes = vec![input_dim];
    sizes.extend_from_slice(hidden);
    sizes.push(model.output_dim());
    model.sizes = sizes;
    let last = model.num_layers();
    model.spatial_layers = (3.min(last)..=last).collect();
    model.init = Init::Xavier;
    (model.alpha, model.beta) = if spatial { (alpha, beta) } else { (0.0, 0.0) };
    model
}

/// The training configuration of the bench: the defaults, concat input, `batch_size`.
pub fn bench_train(batch_size: usize) -> TrainConfig {
    TrainConfig {
        mode: InputMode::Concat,
        batch_size,
        ..TrainConfig::default()
    }
}

/// Matrix FLOPs (2 per multiply-add) of one training example through a network of `sizes`:
/// forward `Σ N_{l-1}·N_l`, weight gradients the same, input gradients of layers 2..=L (layer 1's
/// input gradient is never computed).
pub fn matmul_flops_per_example(sizes: &[usize]) -> f64 {
    let macs: usize = (1..sizes.len())
        .map(|l| sizes[l - 1] * sizes[l] * if l > 1 { 3 } else { 2 })
        .sum();
    2.0 * macs as f64
}

/// The median of `v` (NaN if empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}
