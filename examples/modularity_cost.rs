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

        let reps = 200;
        let t0 = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(analysis::cheap_measures(&model, &params)?);
        }
        let cheap = t0.elapsed().as_secs_f64() / reps as f64;

        let assignment = split::assign(&model, &params);
        let t0 = Instant::now();
        let report = analysis::modularity_report(&model, &params, &assignment, 0, None)?;
        let report_s = t0.elapsed().as_secs_f64();

        let ablation = analysis::ablate(&model, &params, &test, &assignment.layers)?;
        println!(
            "{mode}: sizes {:?}, {} test examples\n  cheap_measures: {:.3} ms\n  \
             modularity_report without ablation (Louvain on {} nodes): {:.3} ms, {} communities\n  \
             ablation of {} neurons: {:.2} s",
            model.sizes,
            test.len,
            cheap * 1e3,
            report.nodes,
            report_s * 1e3,
            report.detected_communities,
            assignment.groups.iter().map(Vec::len).sum::<usize>(),
            ablation.seconds
        );
    }
    Ok(())
}
