//! What the modularity measures cost on the paper's network, to compare with an epoch's time:
//!
//! `cargo run --release --example modularity_cost [DATA_DIR]`
//!
//! Times `analysis::cheap_measures` (the per-epoch candidates), the full `modularity_report`
//! (Louvain included), and the single-neuron ablation of the split layers on the concatenated
//! (10000 examples of 1568 values) and the sequential (2 x 10000 of 784) test sets. The weights are
//! freshly initialised: the cost does not depend on their values.

use anyhow::Result;
use spatial_gpu::analysis;
use spatial_gpu::config::{InputMode, ModelConfig};
use spatial_gpu::data::{self, batches::test_set};
use spatial_gpu::model::Params;
use spatial_gpu::split;
use std::path::PathBuf;
use std::time::Instant;

/// CPU seconds this process has used (user + system, from /proc/self/stat; Linux only), which a
/// machine shared with other jobs inflates far less than wall time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // The kernel's USER_HZ is 100 on every Linux architecture.
    Some(ticks / 100.0)
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| data::resolve_data_dir(None));
    let datasets = data::load(&dir)?;
    for mode in [InputMode::Concat, InputMode::Sequential] {
        let test = test_set(mode, &datasets);
        let model = ModelConfig::defaults(test.input_dim);
        let params = Params::init(&model, 1);

        let reps = 500;
        let (t0, c0) = (Instant::now(), cpu_seconds());
        for _ in 0..reps {
            std::hint::black_box(analysis::cheap_measures(&model, &params)?);
        }
        let cheap = t0.elapsed().as_secs_f64() / reps as f64;
        let cheap_cpu = cpu_seconds().zip(c0).map(|(c1, c0)| (c1 - c0) / reps as f64);

        let assignment = split::assign(&model, &params);
        let t0 = Instant::now();
        let report = analysis::modularity_report(&model, &params, &assignment, 0, None)?;
        let report_s = t0.elapsed().as_secs_f64();

        let c0 = cpu_seconds();
        let ablation = analysis::ablate(&model, &params, &test, &assignment.layers)?;
        let ablation_cpu = cpu_seconds().zip(c0).map(|(c1, c0)| c1 - c0);
        println!(
            "{mode}: sizes {:?}, {} test examples\n  cheap_measures: {:.3} ms wall, {} ms CPU\n  \
             modularity_report without ablation (Louvain on {} nodes): {:.3} ms, {} communities\n  \
             ablation of {} neurons: {:.2} s wall, {} s CPU",
            model.sizes,
            test.len,
            cheap * 1e3,
            cheap_cpu.map_or("?".into(), |c| format!("{:.3}", c * 1e3)),
            report.nodes,
            report_s * 1e3,
            report.detected_communities,
            assignment.groups.iter().map(Vec::len).sum::<usize>(),
            ablation.seconds,
            ablation_cpu.map_or("?".into(), |c| format!("{c:.2}")),
        );
    }
    Ok(())
}
