//! A grid whose population cannot be built (a device that holds each network but not all of them
//! at once, say) trains the group's runs one by one instead: none of them fails for it, and each
//! ends as it would have in a grid without populations. No adapter needed: the population factory
//! here always fails, and the runs train on the CPU backend.

mod support;

use spatial_gpu::backend::Backend;
use spatial_gpu::config::{InputMode, ModelConfig, Overrides, TrainConfig};
use spatial_gpu::cpu::CpuBackend;
use spatial_gpu::grid::runner::{run_grid, BackendFactory, GridContext, PopulationFactory};
use spatial_gpu::grid::{run_spec, Setting};
use spatial_gpu::model::TrainState;
use spatial_gpu::split::SplitOptions;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use support::*;

#[test]
fn a_population_that_cannot_be_built_trains_its_runs_one_by_one() {
    let data = small_data();
    let base = Overrides {
        hidden: Some(vec![6, 6, 6]),
        batch_size: Some(16),
        ..Overrides::default()
    };
    // Regular and spatial at two seeds: one group of four that may share a population.
    let mut specs = Vec::new();
    for regular in [true, false] {
        for seed in [1, 2] {
            let setting = Setting {
                mode: InputMode::Concat,
                regular,
                init: None,
                transport_norm: None,
                weight_norm: None,
                alpha: None,
                beta: None,
            };
            let name = format!("{}-seed{seed}", if regular { "regular" } else { "spatial" });
            specs.push(run_spec(name, &base, setting, seed, 1, &data).unwrap());
        }
    }
    let cpu =
        |model: ModelConfig, train: TrainConfig, state: TrainState| -> anyhow::Result<Box<dyn Backend>> {
            Ok(Box::new(CpuBackend::new(model, train, state)?))
        };
    static ASKED: AtomicUsize = AtomicUsize::new(0);
    let refuse = |models: Vec<ModelConfig>, _: Vec<TrainConfig>, _: Vec<TrainState>, _: Arc<AtomicBool>| {
        ASKED.fetch_add(models.len(), Ordering::SeqCst);
        Err(anyhow::anyhow!(
            "the device cannot hold {} networks at once",
            models.len()
        ))
    };
    let grid = |out: &std::path::Path, population: Option<&PopulationFactory>| {
        let make_backend: &BackendFactory = &cpu;
        let ctx = GridContext {
            out: out.to_path_buf(),
            data: &data,
            make_backend,
            jobs: 1,
            split: SplitOptions {
                permutations: 5,
                ..SplitOptions::default()
            },
            checkpoint_every: 0,
            stop: Arc::new(AtomicBool::new(false)),
            verbose: false,
            tabulate_only: false,
            figure_seed: None,
            invocation: spatial_gpu::provenance::Invocation::new(vec!["test".into()], None, None),
            population,
        };
        run_grid(&specs, &ctx, &|_| {})
    };
    let tmp = tempfile::tempdir().unwrap();
    let refused = grid(&tmp.path().join("refused"), Some(&refuse));
    assert_eq!(
        ASKED.load(Ordering::SeqCst),
        4,
        "the four runs were offered as one population"
    );
    assert!(refused.failed.is_empty(), "runs failed: {:?}", refused.failed);
    assert!(refused.records.iter().all(Option::is_some), "every run finished");
    let plain = grid(&tmp.path().join("plain"), None);
    for spec in &specs {
        assert_bits_eq(
            &load_run(&tmp.path().join("refused").join(&spec.name)).state,
            &load_run(&tmp.path().join("plain").join(&spec.name)).state,
            &spec.name,
        );
    }
    assert!(plain.failed.is_empty());
}
