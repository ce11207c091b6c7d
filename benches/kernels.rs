//! Kernel and training-step throughput, GPU beside CPU, at the network's shapes with batch 256.
//!
//! `cargo bench --bench kernels` (set `WGPU_BACKEND=vulkan` and `XDG_RUNTIME_DIR` for lavapipe;
//! `SPATIAL_GPU_ADAPTER` to choose an adapter). Criterion reports matmul throughput in elements/s
//! where one element is one FLOP (so Gelem/s = GFLOP/s); transport and density in pairs/s, softmax
//! in examples/s, Adam in parameters/s. GPU timings wait for the GPU inside the timed region: each
//! batch of iterations is one submit followed by `device.poll(wait)`. Results: docs/GPU.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spatial_gpu::backend::Backend;
use spatial_gpu::config::{Activation, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use spatial_gpu::cpu::{self, CpuBackend};
use spatial_gpu::data::batches::Batch;
use spatial_gpu::gpu::adam::Adam;
use spatial_gpu::gpu::buffers;
use spatial_gpu::gpu::context::GpuContext;
use spatial_gpu::gpu::density::Density;
use spatial_gpu::gpu::hyper::HyperLayout;
use spatial_gpu::gpu::kernel::{Kernel, Launch};
use spatial_gpu::gpu::matmul::{BatchDim, MatmulArgs, MatmulOp, Variant};
use spatial_gpu::gpu::softmax_xent::SoftmaxXent;
use spatial_gpu::gpu::testing::{self, Bound};
use spatial_gpu::gpu::{transport, GpuBackend};
use spatial_gpu::model::{Params, TrainState};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: usize = 256;

fn rand_vec(r: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| r.random::<f32>() * 2.0 - 1.0).collect()
}

fn gpu() -> Option<Arc<GpuContext>> {
    match GpuContext::new(None) {
        Ok(c) => {
            eprintln!("GPU: {}", c.describe());
            Some(c)
        }
        Err(e) => {
            eprintln!("no GPU adapter, GPU benchmarks skipped: {e:#}");
            None
        }
    }
}

/// Time of `iters` dispatches of one kernel, submitted in chunks of 32 and waited for.
fn time_dispatches(
    ctx: &GpuContext,
    pipe: &wgpu::ComputePipeline,
    bg: &wgpu::BindGroup,
    groups: [u32; 3],
    iters: u64,
) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(32);
        left -= n;
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for _ in 0..n {
                buffers::dispatch(&mut pass, pipe, bg, groups);
            }
        }
        ctx.queue.submit([enc.finish()]);
    }
    ctx.wait().expect("GPU ok");
    start.elapsed()
}

/// `op` bound to fresh buffers holding `data`, one per name, ready to time.
fn bind(
    ctx: &GpuContext,
    op: &dyn Kernel,
    names: &[&'static str],
    data: &[Vec<f32>],
    at: &Launch,
) -> (Bound, Vec<wgpu::Buffer>) {
    let bufs: Vec<wgpu::Buffer> = data
        .iter()
        .map(|d| buffers::storage_with(ctx, "bench", d).expect("buffer fits"))
        .collect();
    let named: Vec<(&str, &wgpu::Buffer)> = names.iter().copied().zip(bufs.iter()).collect();
    let bound = testing::bind(ctx, op, &named, at).expect("binds");
    (bound, bufs)
}

/// A step table of one network's record (a batch of `rows` at Adam step `adam`), as the f32 words
/// `bind` uploads.
fn step_record(rows: usize, adam: cpu::adam::AdamStep) -> Vec<f32> {
    let rec = spatial_gpu::gpu::step_table::StepRecord::active(rows, 0, 0, adam);
    bytemuck::cast_slice::<_, f32>(std::slice::from_ref(&rec)).to_vec()
}

fn bench_gpu(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    ctx: &GpuContext,
    k: &(Bound, Vec<wgpu::Buffer>),
) {
    let k = &k.0;
    // Warm-up outside criterion: compiles the pipeline at its first dispatch.
    time_dispatches(ctx, &k.pipeline, &k.bind_group, k.groups, 1);
    c.bench_function(id, |b| {
        b.iter_custom(|iters| time_dispatches(ctx, &k.pipeline, &k.bind_group, k.groups, iters))
    });
}

/// The three products of layers 1 (1568 -> 128, the largest) and 4 (128 -> 256), every variant,
/// and the CPU's `matrixmultiply` on the same shapes.
fn matmul_bench(c: &mut Criterion) {
    let ctx = gpu();
    let mut g = c.benchmark_group("matmul");
    let mut r = ChaCha8Rng::seed_from_u64(1);
    for (cin, oc) in [(1568usize, 128usize), (128, 256)] {
        let x = rand_vec(&mut r, BATCH * cin);
        let w = rand_vec(&mut r, oc * cin);
        let bias = rand_vec(&mut r, oc);
        let dout = rand_vec(&mut r, BATCH * oc);
        let products = [
            (
                "forward",
                MatmulArgs::forward(BATCH, cin, oc, 0, 0, Some(Activation::Sigmoid)),
                [&x, &w, &bias, &bias],
                BATCH * oc,
            ),
            (
                "input_grad",
                MatmulArgs::input_grad(BATCH, cin, oc, 0, Some(Activation::Sigmoid)),
                [&dout, &w, &bias, &x],
                BATCH * cin,
            ),
            (
                "weight_grad",
                MatmulArgs::weight_grad(BATCH, cin, oc, 0, false),
                [&dout, &x, &bias, &bias],
                oc * cin,
            ),
        ];
        for (name, args, ins, out_len) in products {
            let shape = format!("{name} {BATCH}x{cin}->{oc}");
            g.throughput(Throughput::Elements(args.flops() as u64));
            // CPU twin (`linear_backward` computes the input gradient only together with dW, so the
            // CPU's input gradient is timed as "backward", both products, at twice the FLOPs).
            let mut out = vec![0.0f32; out_len];
            let mut dw = vec![0.0f32; oc * cin];
            let mut db = vec![0.0f32; oc];
            match name {
                "forward" => g.bench_function(BenchmarkId::new("cpu", &shape), |b| {
                    b.iter(|| cpu::linear::linear_forward(&mut out, &x, &w, &bias, BATCH, cin, oc))
                }),
                "weight_grad" => g.bench_function(BenchmarkId::new("cpu", &shape), |b| {
                    b.iter(|| {
                        cpu::linear::linear_backward(None, &mut out, &mut db, &dout, &x, &w, BATCH, cin, oc)
                    })
                }),
                _ => {
                    g.throughput(Throughput::Elements(2 * args.flops() as u64));
                    let id =
                        BenchmarkId::new("cpu", format!("backward (dW + input_grad) {BATCH}x{cin}->{oc}"));
                    g.bench_function(id, |b| {
                        b.iter(|| {
                            cpu::linear::linear_backward(
                                Some(&mut out),
                                &mut dw,
                                &mut db,
                                &dout,
                                &x,
                                &w,
                                BATCH,
                                cin,
                                oc,
                            )
                        })
                    });
                    g.throughput(Throughput::Elements(args.flops() as u64))
                }
            };
            let Some(ctx) = ctx.as_deref() else { continue };
            for v in Variant::ALL {
                let data = [
                    ins[0].clone(),
                    ins[1].clone(),
                    ins[2].clone(),
                    ins[3].clone(),
                    vec![0.0; out_len],
                ];
                let op = MatmulOp {
                    args,
                    batch_dim: BatchDim::M,
                    variant: v,
                };
                let k = bind(
                    ctx,
                    &op,
                    &["a", "b", "bias", "aux", "c"],
                    &data,
                    &testing::launch(args.m),
                );
                bench_gpu(&mut g, BenchmarkId::new(format!("gpu {v:?}"), &shape), ctx, &k);
            }
        }
    }
    g.finish();
}

/// Transport (rows + columns passes), density, softmax cross-entropy and Adam.
fn other_kernels(c: &mut Criterion) {
    let Some(ctx) = gpu() else { return };
    let ctx = ctx.as_ref();
    let mut g = c.benchmark_group("kernels");
    let mut r = ChaCha8Rng::seed_from_u64(2);
    // Transport of layer 4 (128 -> 256): 32768 pairs, both passes.
    let (cin, oc) = (128usize, 256usize);
    let t = transport::TransportArgs {
        c: cin,
        oc,
        w_off: 0,
        pin_off: cin * oc,
        pout_off: cin * oc + 2 * cin,
        partial_off: 0,
        spatial: 0,
    };
    let len = cin * oc + 2 * (cin + oc);
    // One network's hyperparameters: spatial layer 0 as this layer, weighted 1, density weighted 1.
    let mut hyper = HyperLayout { spatial: 1 }.empty_record(0.005);
    HyperLayout::set_transport(&mut hyper, 0, TransportNorm::Paper, WeightNorm::L1, 1.0, cin, oc);
    HyperLayout::set_density(&mut hyper, 0, 1.0, 256);
    let data = [
        rand_vec(&mut r, len),
        vec![0.0; len],
        vec![0.0; oc],
        hyper.clone(),
    ];
    g.throughput(Throughput::Elements((cin * oc) as u64));
    let spatial = ["params", "grads", "partials", "hyper"];
    let at = testing::launch(BATCH);
    let rows = bind(ctx, &transport::TransportRows(t), &spatial, &data, &at);
    bench_gpu(
        &mut g,
        BenchmarkId::new("gpu transport_rows", "128x256 pairs"),
        ctx,
        &rows,
    );
    let cols = bind(ctx, &transport::TransportCols(t), &spatial, &data, &at);
    bench_gpu(
        &mut g,
        BenchmarkId::new("gpu transport_cols", "128x256 pairs"),
        ctx,
        &cols,
    );
    {
        let (w, p) = (data[0][..cin * oc].to_vec(), data[0][cin * oc..].to_vec());
        let (mut dw, mut dpi, mut dpo) = (vec![0.0; cin * oc], vec![0.0; 2 * cin], vec![0.0; 2 * oc]);
        g.bench_function(BenchmarkId::new("cpu transport", "128x256 pairs"), |b| {
            b.iter(|| {
                cpu::transport::transport_forward_backward(
                    &mut dw,
                    &mut dpi,
                    &mut dpo,
                    &w,
                    &p[..2 * cin],
                    &p[2 * cin..],
                    cin,
                    oc,
                    TransportNorm::Paper,
                    WeightNorm::L1,
                    1.0,
                )
            })
        });
    }
    // Density of layer 4: 256² pairs.
    let n = 256;
    g.throughput(Throughput::Elements((n * n) as u64));
    let op = Density {
        n,
        p_off: 0,
        partial_off: 0,
        spatial: 0,
    };
    let data = [
        rand_vec(&mut r, 2 * n),
        vec![0.0; 2 * n],
        vec![0.0; n],
        hyper.clone(),
    ];
    let k = bind(ctx, &op, &spatial, &data, &at);
    bench_gpu(&mut g, BenchmarkId::new("gpu density", "256^2 pairs"), ctx, &k);
    let mut dp = vec![0.0; 2 * n];
    g.bench_function(BenchmarkId::new("cpu density", "256^2 pairs"), |b| {
        b.iter(|| cpu::density::density_forward_backward(&mut dp, &data[0], n, 1.0))
    });
    // Softmax cross-entropy: 256 examples x 2 heads x 10 classes.
    g.throughput(Throughput::Elements(BATCH as u64));
    let logits = rand_vec(&mut r, BATCH * 20);
    let labels: Vec<i32> = (0..BATCH * 2).map(|i| (i % 10) as i32).collect();
    let label_f: Vec<f32> = labels.iter().map(|&l| f32::from_bits(l as u32)).collect();
    let op = SoftmaxXent {
        heads: 2,
        width: 20,
        loss_off: 0,
    };
    let offsets: Vec<f32> = [0u32, 10, 20].iter().map(|&o| f32::from_bits(o)).collect();
    let data = [
        logits.clone(),
        label_f,
        vec![0.0; BATCH * 20],
        vec![0.0; BATCH],
        offsets,
        step_record(BATCH, at.adam),
    ];
    let names = ["logits", "labels", "dlogits", "row_loss", "head_offsets", "steps"];
    let k = bind(ctx, &op, &names, &data, &at);
    bench_gpu(
        &mut g,
        BenchmarkId::new("gpu softmax_xent", "256 examples"),
        ctx,
        &k,
    );
    let mut dl = vec![0.0; BATCH * 20];
    g.bench_function(BenchmarkId::new("cpu softmax_xent", "256 examples"), |b| {
        b.iter(|| {
            cpu::softmax_xent::softmax_xent_forward_backward(&mut dl, &logits, &labels, BATCH, &[0, 10, 20])
        })
    });
    // Adam over the concat network's parameter buffer.
    let np = Params::zeros(&ModelConfig::paper(1568).sizes).data.len();
    g.throughput(Throughput::Elements(np as u64));
    let hp = cpu::adam::AdamStep {
        lr: 0.005,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        step: 3,
    };
    let op = Adam {
        n: np,
        max_workgroups: ctx.caps.max_workgroups,
    };
    let data = [
        rand_vec(&mut r, np),
        rand_vec(&mut r, np),
        vec![0.0; np],
        vec![0.0; np],
        hyper,
        step_record(BATCH, hp),
    ];
    let at = Launch {
        adam: hp,
        ..testing::launch(BATCH)
    };
    let k = bind(
        ctx,
        &op,
        &["grads", "params", "m", "v", "hyper", "steps"],
        &data,
        &at,
    );
    bench_gpu(
        &mut g,
        BenchmarkId::new("gpu adam", format!("{np} params")),
        ctx,
        &k,
    );
    let (mut p, gr, mut m, mut v) = (data[0].clone(), data[1].clone(), vec![0.0; np], vec![0.0; np]);
    g.bench_function(BenchmarkId::new("cpu adam", format!("{np} params")), |b| {
        b.iter(|| cpu::adam::adam_update(&mut p, &gr, &mut m, &mut v, hp))
    });
    g.finish();
}

/// One whole training step of the concat spatial network at batch 256, GPU and CPU.
fn train_step(c: &mut Criterion) {
    let model = ModelConfig::paper(1568);
    let train = TrainConfig {
        batch_size: BATCH,
        ..TrainConfig::default()
    };
    let state = TrainState::new(Params::init(&model, 1));
    let mut r = ChaCha8Rng::seed_from_u64(3);
    let batch = Batch {
        size: BATCH,
        input_dim: 1568,
        inputs: (0..BATCH * 1568).map(|_| r.random::<f32>()).collect(),
        labels: (0..BATCH * 2).map(|_| r.random_range(0..10)).collect(),
    };
    let mut g = c.benchmark_group("train_step");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut cpu_b = CpuBackend::new(model.clone(), train.clone(), state.clone()).unwrap();
    g.bench_function(BenchmarkId::new("cpu", "concat spatial b256"), |b| {
        b.iter(|| cpu_b.train_step(&batch).unwrap())
    });
    if let Some(ctx) = gpu() {
        let t = Instant::now();
        let mut gpu_b = GpuBackend::new(ctx, model, train, state).unwrap();
        eprintln!(
            "GPU backend with autotune built in {:.2} s; matmul variants:",
            t.elapsed().as_secs_f64()
        );
        for (shape, v, choice) in gpu_b.matmul_choices() {
            match choice {
                Some(c) => eprintln!("  {shape}: {v:?}: {}", c.summary()),
                None => eprintln!("  {shape}: {v:?}"),
            }
        }
        gpu_b.train_step(&batch).unwrap();
        gpu_b.sync().unwrap();
        g.bench_function(BenchmarkId::new("gpu", "concat spatial b256"), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    gpu_b.train_step(&batch).unwrap();
                }
                gpu_b.sync().unwrap();
                t.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().sample_size(10).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = matmul_bench, other_kernels, train_step
}
criterion_main!(benches);
