//! One evaluation of the real test set (MNIST + Fashion-MNIST, concat: 10 000 rows of 1568) on the
//! GPU backend by the two paths, side by side in one process: the host path
//! (`backend::count_correct_on_host`: the whole test set uploaded as f32, one submit and one
//! read-back of logits per batch, counted on the host) and the device path (`Backend::count_correct`:
//! the test set resident, one submit, the counts read back once). Asserts both give the same counts.
//! `docs/perf/eval/eval-timing.sh` runs it; on lavapipe it is a check of correctness and of the
//! submission pattern, not a speed figure. The device path keeps the counts of an unmasked
//! evaluation until the parameters may change, so before each timed device call the state is set
//! again (outside the clock), which makes it evaluate anew.
//!
//! `cargo run --example eval_timing -- [REPEATS]` with `SPATIAL_GPU_DATA` (default `/work/shared/data`).

use spatial_gpu::backend::{count_correct_on_host, Backend};
use spatial_gpu::config::{InputMode, Overrides};
use spatial_gpu::data::batches::test_set;
use spatial_gpu::gpu::{GpuBackend, GpuContext, GpuOptions, MatmulChoice, Variant};
use spatial_gpu::model::{Params, TrainState};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let repeats: usize = std::env::args().nth(1).map_or(Ok(3), |s| s.parse())?;
    let dir = PathBuf::from(std::env::var("SPATIAL_GPU_DATA").unwrap_or("/work/shared/data".into()));
    let data = spatial_gpu::data::load(&dir)?;
    let test = test_set(InputMode::Concat, &data);
    let o = Overrides {
        mode: Some(InputMode::Concat),
        ..Overrides::default()
    };
    let (model, train) = o.configs_for(&data.shape())?;
    let ctx = GpuContext::new(None)?;
    println!("adapter: {}", ctx.describe());
    println!(
        "test set: {} rows x {} inputs ({:.1} MB as f32), heads {}, model {:?}, batch {}",
        test.len,
        test.input_dim,
        (test.inputs.len() * 4) as f64 / 1e6,
        model.heads,
        model.sizes,
        train.batch_size
    );
    let state = TrainState::new(Params::init(&model, train.seed));
    let same_state = state.clone();
    let opts = GpuOptions {
        matmul: MatmulChoice::Fixed(Variant::Tiled),
        ..GpuOptions::default()
    };
    let mut b = GpuBackend::with_options(ctx, model, train, state, opts)?;
    let time = |f: &mut dyn FnMut() -> anyhow::Result<Vec<(u64, u64)>>| -> anyhow::Result<_> {
        let t = Instant::now();
        let counts = f()?;
        Ok((t.elapsed().as_secs_f64(), counts))
    };
    let (t, first) = time(&mut || b.count_correct(&test, None))?;
    println!("device path, first call (upload of the test set and plans included): {t:.3} s {first:?}");
    for r in 0..repeats {
        let (t_host, host) = time(&mut || count_correct_on_host(&mut b, &test, None))?;
        // The same parameters, set again: the kept counts no longer count, the device evaluates.
        b.set_state(&same_state)?;
        let (t_dev, dev) = time(&mut || b.count_correct(&test, None))?;
        assert_eq!(host, dev, "repeat {r}: the two paths differ");
        println!("repeat {r}: host path (logits per batch, counted on the host) {t_host:.3} s, device path {t_dev:.3} s, counts {dev:?}");
    }
    println!("device test set resident: {:?}", b.device_test_status());
    Ok(())
}
