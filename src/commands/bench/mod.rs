//! `spatial-gpu bench`: training throughput of our backends against the PyTorch baseline, measured
//! side by side in one invocation; the batch/width sweep; the GEMM roofline. The measuring itself is
//! in [`crate::bench`], whose documentation says how the race is run and why.

mod sweep;

use super::{load_data, make_backend, BackendChoice, DataDirArg};
use crate::bench::phases::{cpu_breakdown, print_breakdown};
use crate::bench::report::{
    cpu_model, gpu_step_breakdown, print_gemm, print_results, ratios, BenchReport, CheckReport, Machine,
    Measured, NetworkBreakdown,
};
use crate::bench::{
    bench_model, bench_train, measure_gemms, probe_pytorch, reference_batch, run_check, write_reference,
    write_sweep, OurRunner, PyServer, Script, Timing, PAPER_HIDDEN,
};
use crate::config::{InputMode, ModelConfig, TrainConfig, IMAGE_PIXELS};
use crate::data::Datasets;
use crate::model::{Params, TrainState};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    Cpu,
    Gpu,
}

impl BenchBackend {
    /// A runner of this backend training `model` from its initial state.
    pub(super) fn runner<'a>(
        self,
        adapter: Option<&str>,
        model: ModelConfig,
        train: TrainConfig,
        data: &'a Datasets,
    ) -> Result<OurRunner<'a>> {
        let choice = match self {
            BenchBackend::Cpu => BackendChoice::Cpu,
            BenchBackend::Gpu => BackendChoice::Gpu,
        };
        let state = TrainState::new(Params::init(&model, train.seed));
        let backend = make_backend(
            choice,
            adapter,
            crate::gpu::DEFAULT_STEPS_PER_SUBMIT,
            model,
            train.clone(),
            state,
        )?;
        // The CPU backend is single-threaded: its thread's CPU time is the program's.
        Ok(OurRunner::new(backend, train, data, self == BenchBackend::Cpu))
    }
    pub(super) fn label(self) -> &'static str {
        match self {
            BenchBackend::Cpu => "cpu",
            BenchBackend::Gpu => "gpu",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Timed training steps per measurement
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Untimed training steps before the first measurement of each program
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Rounds of measurements, alternating between the programs; each program's median is reported
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Our backends to measure (a GPU that cannot start is reported as unavailable)
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cpu,gpu")]
    pub backends: Vec<BenchBackend>,
    /// Do not run the PyTorch baseline
    #[arg(long)]
    pub no_pytorch: bool,
    /// Python interpreter with torch, numpy and safetensors
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: PathBuf,
    /// Baseline script [default: the copy of bench/pytorch_baseline.py built into this binary]
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Threads of the PyTorch baseline (also OMP_NUM_THREADS, MKL_NUM_THREADS); our CPU backend uses one
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Examples per batch
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Weight of the transport cost of the spatial network
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f32,
    /// Weight of the density cost of the spatial network
    #[arg(long, default_value_t = 3.0)]
    pub beta: f32,
    /// GPU adapter: a substring of its name (see `spatial-gpu info`)
    #[arg(long)]
    pub adapter: Option<String>,
    /// Write every figure as JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the reference file of the baseline's check (parameters, one batch, our loss and
    /// gradients) to FILE [default: a temporary file, when the baseline runs]
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,
    /// Also measure step time against batch size (64..4096) and width (x1, x2, x4)
    #[arg(long)]
    pub sweep: bool,
    /// Directory of the sweep's table, CSV and plots
    #[arg(long, value_name = "DIR", default_value = "bench-out")]
    pub out: PathBuf,
}

pub fn cmd_bench(args: &BenchArgs) -> Result<i32> {
    if args.steps == 0 || args.repeats == 0 || args.batch_size == 0 || args.threads == 0 {
        bail!("--steps, --repeats, --batch-size and --threads must be at least 1");
    }
    if let Some(spec) = args.data.task.first() {
        bail!(
            "--task {spec}: bench always measures the paper's two tasks, MNIST and Fashion-MNIST (the PyTorch baseline has two equal heads)"
        );
    }
    let data = load_data(args.data.data_dir.as_deref())?;
    let data_dir = crate::data::resolve_data_dir(args.data.data_dir.as_deref());
    let input_dim = data.input_dim(InputMode::Concat);
    if input_dim != 2 * IMAGE_PIXELS {
        eprintln!("note: images of {} pixels, not 28x28", data.image_pixels());
    }
    let train = bench_train(args.batch_size);
    let machine = Machine {
        cpu_model: cpu_model(),
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        our_threads: 1,
        pytorch_threads: args.threads,
    };
    println!(
        "machine: {} ({} logical CPUs); ours: 1 thread; pytorch: --threads {}",
        machine.cpu_model, machine.logical_cpus, args.threads
    );
    let mut unavailable: Vec<(String, String)> = Vec::new();

    let (check, mut server) = start_baseline(args, &data, &data_dir, &train, &mut unavailable)?;

    // Our programs, one runner per backend and network.
    let nets = [("spatial", true), ("regular", false)];
    let mut ours: Vec<(BenchBackend, Vec<OurRunner>)> = Vec::new();
    let mut backends = args.backends.clone();
    backends.dedup();
    for &which in &backends {
        let mut runners = Vec::new();
        for (_, spatial) in nets {
            let model = bench_model(input_dim, &PAPER_HIDDEN, spatial, args.alpha, args.beta);
            match which.runner(args.adapter.as_deref(), model, train.clone(), &data) {
                Ok(r) => runners.push(r),
                Err(e) => {
                    let why = format!("{e:#}");
                    println!("{}: unavailable ({why})", which.label());
                    unavailable.push((which.label().into(), why));
                    break;
                }
            }
        }
        if runners.len() == nets.len() {
            ours.push((which, runners));
        }
    }

    let results = race(args, &nets, &mut ours, server.as_mut())?;
    let network_names: Vec<&str> = nets.iter().map(|n| n.0).collect();
    let ratios = ratios(&results, &network_names);
    print_results(&results, &ratios, args.repeats);

    let mut breakdown = Vec::new();
    let gemm = if backends.contains(&BenchBackend::Cpu) {
        for (net, spatial) in nets {
            let model = bench_model(input_dim, &PAPER_HIDDEN, spatial, args.alpha, args.beta);
            let phases = cpu_breakdown(&model, &train, &data, args.steps)?;
            print!("{net} network: ");
            print_breakdown(&phases, args.batch_size);
            breakdown.push(NetworkBreakdown {
                network: net.into(),
                phases,
            });
        }
        let sizes = bench_model(input_dim, &PAPER_HIDDEN, true, 0.0, 0.0).sizes;
        let g = measure_gemms(&sizes, args.batch_size, 20);
        print_gemm(&g, &results);
        Some(g)
    } else {
        None
    };

    // The GPU's budget: a whole step within 1.3x of its matmul kernels alone.
    let mut gpu_breakdown = Vec::new();
    if backends.contains(&BenchBackend::Gpu) && !unavailable.iter().any(|(p, _)| p == "gpu") {
        for (net, spatial) in nets {
            let model = bench_model(input_dim, &PAPER_HIDDEN, spatial, args.alpha, args.beta);
            match gpu_step_breakdown(args.adapter.as_deref(), &model, &train, &data, args.steps.min(50)) {
                Ok(bd) => {
                    println!(
                        "gpu {net} step: {:.3} ms, its {} matmul dispatches alone {:.3} ms (of {} dispatches): step = {:.2}x matmuls",
                        bd.step_seconds * 1e3,
                        bd.matmuls,
                        bd.matmul_seconds * 1e3,
                        bd.dispatches,
                        bd.step_seconds / bd.matmul_seconds
                    );
                    gpu_breakdown.push((net.to_string(), bd));
                }
                Err(e) => println!("gpu {net} step breakdown: unavailable ({e:#})"),
            }
        }
    }

    let mut sweep = Vec::new();
    if args.sweep {
        sweep = sweep::run_sweep(
            args,
            &data,
            &ours.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
            server.as_mut(),
        )?;
        write_sweep(&args.out, &sweep)?;
    }

    let report = BenchReport {
        machine,
        statistic: format!(
            "median (and best) of {} alternating rounds of {} steps after {} warm-up steps",
            args.repeats, args.steps, args.warmup
        ),
        steps: args.steps,
        warmup: args.warmup,
        repeats: args.repeats,
        batch_size: args.batch_size,
        alpha: args.alpha,
        beta: args.beta,
        check,
        unavailable,
        results,
        ratios,
        gemm,
        breakdown,
        gpu_breakdown,
        sweep,
    };
    if let Some(path) = &args.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(0)
}

/// The baseline: available, equal to us on one batch (the check), then started as a server. A
/// missing PyTorch is noted in `unavailable`; a check that fails is an error (no race).
fn start_baseline(
    args: &BenchArgs,
    data: &Datasets,
    data_dir: &Path,
    train: &TrainConfig,
    unavailable: &mut Vec<(String, String)>,
) -> Result<(Option<CheckReport>, Option<PyServer>)> {
    let pytorch = if args.no_pytorch {
        None
    } else {
        match probe_pytorch(&args.python) {
            Ok(v) => Some(v),
            Err(why) => {
                println!("pytorch: unavailable ({why})");
                unavailable.push(("pytorch".into(), why));
                None
            }
        }
    };
    let script = if pytorch.is_some() {
        Some(Script::new(args.script.as_deref())?)
    } else {
        None
    };
    let mut check = None;
    if args.reference.is_some() || pytorch.is_some() {
        let path = args.reference.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "spatial-gpu-reference-{}.safetensors",
                std::process::id()
            ))
        });
        let model = bench_model(
            data.input_dim(InputMode::Concat),
            &PAPER_HIDDEN,
            true,
            args.alpha,
            args.beta,
        );
        let params = Params::init(&model, train.seed);
        let losses = write_reference(&path, &model, &params, &reference_batch(data, train))?;
        if args.reference.is_some() {
            println!("reference: {} (loss {:.6}) written", path.display(), losses.total);
        }
        if let (Some(_), Some(script)) = (&pytorch, &script) {
            let (passed, output) = run_check(&args.python, &script.path, &path, args.threads)?;
            print!(
                "{}",
                output
                    .lines()
                    .map(|l| format!("check: {l}\n"))
                    .collect::<String>()
            );
            if args.reference.is_none() {
                let _ = std::fs::remove_file(&path);
            }
            if !passed {
                bail!("the PyTorch baseline does not compute what the CPU backend computes; no race");
            }
            check = Some(CheckReport {
                reference: path,
                passed,
                output,
            });
        }
    }
    let server = match (&pytorch, &script) {
        (Some(_), Some(script)) => Some(PyServer::start(
            &args.python,
            &script.path,
            data_dir,
            args.threads,
        )?),
        _ => None,
    };
    if let Some(s) = &server {
        println!("pytorch: {}", s.info);
    }
    Ok((check, server))
}

/// The race: every program warmed up, then `--repeats` alternating rounds of `--steps` steps on
/// each network; each program's measurements.
fn race(
    args: &BenchArgs,
    nets: &[(&'static str, bool)],
    ours: &mut [(BenchBackend, Vec<OurRunner>)],
    mut server: Option<&mut PyServer>,
) -> Result<Vec<Measured>> {
    // Warm-up, then alternating rounds.
    for (_, runners) in ours.iter_mut() {
        for r in runners.iter_mut() {
            r.run(args.warmup)?;
        }
    }
    let mut timings: HashMap<(String, &str), Vec<Timing>> = HashMap::new();
    println!(
        "racing: {} rounds of {} steps of batch {} per program, alternating (ours, pytorch, ...)",
        args.repeats, args.steps, args.batch_size
    );
    for round in 0..args.repeats {
        for (k, (net, spatial)) in nets.iter().enumerate() {
            for (which, runners) in ours.iter_mut() {
                let t = runners[k].run(args.steps)?;
                timings
                    .entry((which.label().to_string(), net))
                    .or_default()
                    .push(t);
            }
            if let Some(s) = server.as_deref_mut() {
                let t = s.measure(
                    *spatial,
                    args.batch_size,
                    &PAPER_HIDDEN,
                    args.alpha,
                    args.beta,
                    args.steps,
                    args.warmup,
                )?;
                timings.entry(("pytorch".to_string(), net)).or_default().push(t);
            }
        }
        eprintln!("round {}/{} done", round + 1, args.repeats);
    }

    let mut results = Vec::new();
    for &(net, _) in nets {
        for (which, runners) in ours.iter() {
            let k = nets.iter().position(|n| n.0 == net).unwrap();
            let t = &timings[&(which.label().to_string(), net)];
            results.push(Measured::new(
                which.label(),
                runners[k].name(),
                net,
                args.batch_size,
                &PAPER_HIDDEN,
                t,
            ));
        }
        if let Some(s) = server.as_deref() {
            let t = &timings[&("pytorch".to_string(), net)];
            results.push(Measured::new(
                "pytorch",
                s.framework(),
                net,
                args.batch_size,
                &PAPER_HIDDEN,
                t,
            ));
        }
    }
    Ok(results)
}
