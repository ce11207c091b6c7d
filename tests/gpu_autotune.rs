//! The matmul autotune on an adapter: both clocks time real dispatches, the choice is written to
//! and read from the disk cache (`SPATIAL_GPU_CACHE_DIR`), `refresh` re-tunes, `off` writes
//! nothing, a corrupt file is survived, a bad mode value is an error naming the variable, and the
//! chosen variant computes the right product. Vec4 pipelines are timed on a bind group made with
//! matmul.wgsl's layout (one layout serves both files).
//!
//! One test in this binary: it sets environment variables, which no other test may read meanwhile.

#[path = "common/gpu.rs"]
mod common;

use common::{check, context, rng, uniform};
use spatial_gpu::config::Activation;
use spatial_gpu::cpu;
use spatial_gpu::gpu::autotune::{self, Clock, CACHE_DIR_ENV, CACHE_MODE_ENV};
use spatial_gpu::gpu::buffers;
use spatial_gpu::gpu::matmul::{BatchDim, MatmulArgs, MatmulOp, Variant};
use spatial_gpu::gpu::{testing, GpuContext};

/// The forward of a 132 -> 20 sigmoid layer at batch 64 (aligned: every variant is a candidate),
/// bound with `mm_tiled` (matmul.wgsl's layout); returns the chosen variant and the result of
/// running it.
fn tune_and_run(ctx: &GpuContext) -> anyhow::Result<(Variant, Vec<f32>, Vec<f32>)> {
    let (b, c, oc) = (64, 132, 20);
    let mut r = rng(5);
    let x = uniform(&mut r, b * c, -1.0, 1.0);
    let w = uniform(&mut r, oc * c, -0.1, 0.1);
    let bias = uniform(&mut r, oc, -0.1, 0.1);
    let args = MatmulArgs::forward(b, c, oc, 0, 0, Some(Activation::Sigmoid));
    assert!(args.vec4_ok());
    let st = |label, data: &[f32]| buffers::storage_with(ctx, label, data).unwrap();
    let (ab, bb, biasb, auxb, cb) = (
        st("a", &x),
        st("b", &w),
        st("bias", &bias),
        st("aux", &[]),
        st("c", &vec![0.0; b * oc]),
    );
    let op = MatmulOp {
        args,
        batch_dim: BatchDim::M,
        variant: Variant::Tiled,
    };
    let named = [
        ("a", &ab),
        ("b", &bb),
        ("bias", &biasb),
        ("aux", &auxb),
        ("c", &cb),
    ];
    let bound = testing::bind(ctx, &op, &named, &testing::launch(b))?;
    let v = autotune::autotune(ctx, &args, &bound.bind_group)?;
    let got = testing::matmul(ctx, v, &args, &x, &w, &bias, &[], &vec![0.0; b * oc])?;
    let mut want = vec![0.0; b * oc];
    cpu::linear::linear_forward(&mut want, &x, &w, &bias, b, c, oc);
    cpu::activation::activation_forward(Activation::Sigmoid, &mut want);
    Ok((v, got, want))
}

fn fresh() -> std::sync::Arc<GpuContext> {
    GpuContext::new(None).expect("the adapter opens again")
}

fn cache_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join(autotune::CACHE_FILE)
}

#[test]
fn autotune_clocks_and_disk_cache() {
    let Some(ctx) = context() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(CACHE_DIR_ENV, dir.path());
    std::env::remove_var(CACHE_MODE_ENV);
    let path = cache_file(dir.path());

    // Both clocks time 20 dispatches of mm_tiled as positive and finite.
    {
        let args = MatmulArgs::forward(64, 132, 20, 0, 0, None);
        let st = |label, n| buffers::storage_with(&ctx, label, &uniform(&mut rng(6), n, -1.0, 1.0)).unwrap();
        let (ab, bb, biasb, auxb, cb) = (
            st("a", 64 * 132),
            st("b", 20 * 132),
            st("bias", 20),
            st("aux", 1),
            st("c", 64 * 20),
        );
        let op = MatmulOp {
            args,
            batch_dim: BatchDim::M,
            variant: Variant::Tiled,
        };
        let named = [
            ("a", &ab),
            ("b", &bb),
            ("bias", &biasb),
            ("aux", &auxb),
            ("c", &cb),
        ];
        let bound = testing::bind(&ctx, &op, &named, &testing::launch(64)).unwrap();
        for gpu in [true, false] {
            let clock = Clock::new(&ctx, gpu);
            let t = clock
                .time(&ctx, &bound.pipeline, &bound.bind_group, bound.groups, 20)
                .unwrap();
            eprintln!("20 dispatches: {t:e} s by {}", clock.name());
            assert!(t.is_finite() && t > 0.0, "{}: {t}", clock.name());
        }
    }

    // First tune: measured, written, right.
    let (v, got, want) = tune_and_run(&ctx).unwrap();
    check(&format!("{v:?}"), &got, &want, 2e-5, 1e-4).unwrap();
    let saved = autotune::load(&path).unwrap();
    assert_eq!(saved.len(), 1, "one product cached");
    let (key, choice) = saved.iter().next().unwrap();
    eprintln!("chosen: {}", choice.summary());
    assert!(
        key.contains(&autotune::shader_hash()) && key.contains(&ctx.info.name),
        "{key}"
    );
    assert_eq!(Variant::from_entry(&choice.variant), Some(v));
    assert_eq!(
        choice.medians.len() + choice.pruned.len(),
        Variant::ALL.len(),
        "every variant timed or pruned"
    );
    let expect_clock = if ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        "GPU timestamps"
    } else {
        "wall clock"
    };
    assert_eq!(choice.clock, expect_clock);
    assert!(choice.medians.values().all(|&s| s > 0.0 && s.is_finite()));
    assert!(
        autotune::choices(&ctx).contains_key(&choice.shape),
        "remembered in the context"
    );

    // A new process (a fresh context) reads the file: forge the entry to prove it.
    let mut forged = choice.clone();
    forged.variant = "mm_naive".into();
    forged.clock = "forged".into();
    autotune::store(&path, key, &forged).unwrap();
    let (v, got, want) = tune_and_run(&fresh()).unwrap();
    assert_eq!(v, Variant::Naive, "the disk cache was not read");
    check("cached naive", &got, &want, 2e-5, 1e-4).unwrap();

    // refresh: tunes again and rewrites the entry.
    std::env::set_var(CACHE_MODE_ENV, "refresh");
    tune_and_run(&fresh()).unwrap();
    assert_ne!(
        autotune::load(&path).unwrap()[key].clock,
        "forged",
        "refresh did not re-tune"
    );

    // off: neither read nor written.
    std::fs::remove_file(&path).unwrap();
    std::env::set_var(CACHE_MODE_ENV, "off");
    tune_and_run(&fresh()).unwrap();
    assert!(!path.exists(), "off wrote the cache");

    // A corrupt file: a warning, a fresh tune, the file replaced by a valid one.
    std::env::remove_var(CACHE_MODE_ENV);
    std::fs::write(&path, "{\"format\": 1, \"choices\": [garbage").unwrap();
    let (v, got, want) = tune_and_run(&fresh()).unwrap();
    check(&format!("{v:?} after a corrupt cache"), &got, &want, 2e-5, 1e-4).unwrap();
    assert_eq!(
        autotune::load(&path).unwrap().len(),
        1,
        "the corrupt file was replaced"
    );

    // A bad mode value is an error naming the variable.
    std::env::set_var(CACHE_MODE_ENV, "sometimes");
    let e = tune_and_run(&fresh()).unwrap_err();
    assert!(format!("{e:#}").contains(CACHE_MODE_ENV), "{e:#}");
    std::env::remove_var(CACHE_MODE_ENV);

    // What `spatial-gpu info` prints from the file.
    let report = autotune::cache_report();
    eprintln!("{report}");
    assert!(
        report.contains(&ctx.info.name) && report.contains(" µs"),
        "{report}"
    );
}
