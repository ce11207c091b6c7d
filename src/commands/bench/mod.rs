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
    bench_model, bench_train, measure_gemms, probe_cuda, probe_pytorch, reference_batch, run_check,
    write_reference, write_sweep, OurRunner, PyServer, Script, Timing, PAPER_HIDDEN,
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
    /// A runner of this backend training `model` from its initial state (the CPU backend on
    /// `threads` threads).
    pub(super) fn runner<'a>(
        self,
        adapter: Option<&str>,
        threads: usize,
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
            threads,
            crate::gpu::DEFAULT_STEPS_PER_SUBMIT,
            model,
            train.clone(),
            state,
        )?;
        // The CPU backend on one thread: that thread's CPU time is the program's.
        let cpu_clock = self == BenchBackend::Cpu && threads == 1;
        Ok(OurRunner::new(backend, train, data, cpu_clock))
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
    /// Thread counts to race at, comma-separated: our CPU backend and the PyTorch baseline (also
    /// OMP_NUM_THREADS, MKL_NUM_THREADS) at each; PyTorch at its own default thread count races too
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', default_value = "1")]
    pub threads: Vec<usize>,
    /// Where the PyTorch baseline runs: cpu, or cuda (its check in float64 there, then eager
    /// PyTorch and a CUDA graph of the whole step; race it against --backends gpu)
    #[arg(long, value_enum, default_value = "cpu")]
    pub torch_device: TorchDevice,
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
    /// Directory of the raw log of the race (every round's time) and of the sweep's table, CSV and
    /// plots
    #[arg(long, value_name = "DIR", default_value = "bench-out")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TorchDevice {
    Cpu,
    Cuda,
}

impl TorchDevice {
    fn name(self) -> &'static str {
        match self {
            TorchDevice::Cpu => "cpu",
            TorchDevice::Cuda => "cuda",
        }
    }
}

/// One PyTorch program of the race: its server (an index into the servers), the variant it asks
/// for, and how it is labelled.
struct PyProgram {
    server: usize,
    variant: &'static str,
    threads: Option<usize>,
    label_variant: Option<&'static str>,
}

/// The PyTorch side: its servers (one per thread count; CUDA: one) and the programs they run.
#[derive(Default)]
struct Baseline {
    servers: Vec<PyServer>,
    programs: Vec<PyProgram>,
}

/// `--threads`: the counts in the order given, each once, none 0.
fn thread_counts(args: &BenchArgs) -> Result<Vec<usize>> {
    let mut counts: Vec<usize> = Vec::new();
    for &t in &args.threads {
        if t == 0 {
            bail!("--threads 0: give thread counts of at least 1 (PyTorch's own default races anyway)");
        }
        if !counts.contains(&t) {
            counts.push(t);
        }
    }
    if counts.is_empty() {
        bail!("--threads: give at least one thread count");
    }
    Ok(counts)
}

pub fn cmd_bench(args: &BenchArgs) -> Result<i32> {
    if args.steps == 0 || args.repeats == 0 || args.batch_size == 0 {
        bail!("--steps, --repeats and --batch-size must be at least 1");
    }
    let counts = thread_counts(args)?;
    if args.torch_device == TorchDevice::Cuda {
        if args.no_pytorch {
            bail!("--torch-device cuda with --no-pytorch: the device is PyTorch's; give one or the other");
        }
        if let Err(why) = probe_cuda(&args.python) {
            bail!(
                "--torch-device cuda: {why}; run on a machine with an NVIDIA GPU and a CUDA build of torch, or use --torch-device cpu"
            );
        }
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
    let mut machine = Machine {
        cpu_model: cpu_model(),
        logical_cpus: super::all_cores(),
        threads: counts.clone(),
        pytorch_default_threads: None,
        torch_device: args.torch_device.name().into(),
    };
    println!(
        "machine: {} ({} logical CPUs); threads raced: {}; pytorch on {}",
        machine.cpu_model,
        machine.logical_cpus,
        counts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
        args.torch_device.name()
    );
    let mut unavailable: Vec<(String, String)> = Vec::new();

    let (check, mut baseline) = start_baseline(args, &counts, &data, &data_dir, &train, &mut unavailable)?;
    machine.pytorch_default_threads = baseline
        .programs
        .iter()
        .find(|p| p.label_variant == Some("default"))
        .and_then(|p| p.threads);

    // Our programs, one runner per backend (the CPU backend: per thread count) and network.
    let nets = [("spatial", true), ("regular", false)];
    let mut ours: Vec<Ours> = Vec::new();
    let mut backends = args.backends.clone();
    backends.dedup();
    for &which in &backends {
        let per_backend: Vec<Option<usize>> = match which {
            BenchBackend::Cpu => counts.iter().map(|&t| Some(t)).collect(),
            BenchBackend::Gpu => vec![None],
        };
        for threads in per_backend {
            let mut runners = Vec::new();
            for (_, spatial) in nets {
                let model = bench_model(input_dim, &PAPER_HIDDEN, spatial, args.alpha, args.beta);
                match which.runner(
                    args.adapter.as_deref(),
                    threads.unwrap_or(1),
                    model,
                    train.clone(),
                    &data,
                ) {
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
                ours.push(Ours {
                    which,
                    threads,
                    runners,
                });
            }
        }
    }

    let results = race(args, &nets, &mut ours, &mut baseline)?;
    let network_names: Vec<&str> = nets.iter().map(|n| n.0).collect();
    let ratios = ratios(&results, &network_names);
    print_results(&results, &ratios, args.repeats);

    let mut breakdown = Vec::new();
    let gemm = if backends.contains(&BenchBackend::Cpu) {
        for (net, spatial) in nets {
            let model = bench_model(input_dim, &PAPER_HIDDEN, spatial, args.alpha, args.beta);
            let phases = cpu_breakdown(&model, &train, &data, args.steps, counts[0])?;
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
        let mut sweep_backends: Vec<BenchBackend> = ours.iter().map(|o| o.which).collect();
        sweep_backends.dedup();
        sweep = sweep::run_sweep(
            args,
            counts[0],
            &data,
            &sweep_backends,
            baseline.servers.first_mut(),
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

/// One of our programs: a backend (the CPU backend on `threads` threads), a runner per network.
struct Ours<'a> {
    which: BenchBackend,
    threads: Option<usize>,
    runners: Vec<OurRunner<'a>>,
}

impl Ours<'_> {
    fn label(&self) -> String {
        match self.threads {
            Some(t) => format!("{} {t}t", self.which.label()),
            None => self.which.label().to_string(),
        }
    }
}

/// The baseline: available, equal to us on one batch (the check, on `--torch-device`), then started
/// as servers: on the CPU one per thread count and one at PyTorch's own default; on CUDA one, racing
/// eager PyTorch and its CUDA graph. A missing PyTorch is noted in `unavailable`; a check that fails
/// is an error (no race).
fn start_baseline(
    args: &BenchArgs,
    counts: &[usize],
    data: &Datasets,
    data_dir: &Path,
    train: &TrainConfig,
    unavailable: &mut Vec<(String, String)>,
) -> Result<(Option<CheckReport>, Baseline)> {
    let device = args.torch_device.name();
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
            let (passed, output) = run_check(&args.python, &script.path, &path, Some(counts[0]), device)?;
            print!(
                "{}",
                output
                    .lines()
                    .map(|l| format!("check ({device}): {l}\n"))
                    .collect::<String>()
            );
            if args.reference.is_none() {
                let _ = std::fs::remove_file(&path);
            }
            if !passed {
                bail!(
                    "the PyTorch baseline on {device} does not compute what the CPU backend computes; no race"
                );
            }
            check = Some(CheckReport {
                reference: path,
                passed,
                output,
            });
        }
    }
    let mut baseline = Baseline::default();
    let (Some(_), Some(script)) = (&pytorch, &script) else {
        return Ok((check, baseline));
    };
    let start = |threads: Option<usize>| -> Result<PyServer> {
        let server = PyServer::start(&args.python, &script.path, data_dir, threads, device)?;
        println!("pytorch: {}", server.info);
        Ok(server)
    };
    match args.torch_device {
        TorchDevice::Cpu => {
            for &t in counts {
                baseline.programs.push(PyProgram {
                    server: baseline.servers.len(),
                    variant: "eager",
                    threads: Some(t),
                    label_variant: None,
                });
                baseline.servers.push(start(Some(t))?);
            }
            let server = start(None)?;
            baseline.programs.push(PyProgram {
                server: baseline.servers.len(),
                variant: "eager",
                threads: server.threads(),
                label_variant: Some("default"),
            });
            baseline.servers.push(server);
        }
        TorchDevice::Cuda => {
            baseline.servers.push(start(None)?);
            for variant in ["eager", "graph"] {
                baseline.programs.push(PyProgram {
                    server: 0,
                    variant,
                    threads: None,
                    label_variant: Some(variant),
                });
            }
        }
    }
    Ok((check, baseline))
}

/// The race: every program warmed up, then `--repeats` alternating rounds of `--steps` steps on
/// each network (per network: ours on 1 thread, PyTorch on 1 thread, ours on 2, ..., our GPU
/// backend, PyTorch's other programs); each program's measurements. Every round's time also goes
/// to the raw log, `--out`/race-<torch device>.log.
fn race(
    args: &BenchArgs,
    nets: &[(&'static str, bool)],
    ours: &mut [Ours],
    baseline: &mut Baseline,
) -> Result<Vec<Measured>> {
    for o in ours.iter_mut() {
        for r in o.runners.iter_mut() {
            r.run(args.warmup)?;
        }
    }
    // The order within a round: each thread count's pair side by side, then the rest.
    let mut order: Vec<Slot> = Vec::new();
    for (k, o) in ours.iter().enumerate() {
        order.push(Slot::Ours(k));
        if let Some(p) = baseline
            .programs
            .iter()
            .position(|p| p.label_variant.is_none() && p.threads == o.threads && o.which == BenchBackend::Cpu)
        {
            order.push(Slot::Py(p));
        }
    }
    for p in 0..baseline.programs.len() {
        if !order.contains(&Slot::Py(p)) {
            order.push(Slot::Py(p));
        }
    }
    let py_label = |p: &PyProgram| {
        let mut s = "pytorch".to_string();
        if let Some(v) = p.label_variant {
            s = format!("{s} {v}");
        }
        if let Some(t) = p.threads {
            s = format!("{s} {t}t");
        }
        s
    };
    let mut log = format!(
        "# spatial-gpu bench raw log: {} rounds of {} steps of batch {} per program after {} warm-up steps, alternating in the order listed\n\
         # machine: {} ({} logical CPUs); pytorch on {}\n\
         # round network program seconds samples samples_per_second cpu_seconds\n",
        args.repeats,
        args.steps,
        args.batch_size,
        args.warmup,
        cpu_model(),
        super::all_cores(),
        args.torch_device.name()
    );
    let mut timings: HashMap<(Slot, &str), Vec<Timing>> = HashMap::new();
    println!(
        "racing: {} rounds of {} steps of batch {} per program, alternating ({})",
        args.repeats,
        args.steps,
        args.batch_size,
        order
            .iter()
            .map(|s| match *s {
                Slot::Ours(k) => ours[k].label(),
                Slot::Py(p) => py_label(&baseline.programs[p]),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    for round in 0..args.repeats {
        for (k, (net, spatial)) in nets.iter().enumerate() {
            for &slot in &order {
                let (label, t) = match slot {
                    Slot::Ours(o) => (ours[o].label(), ours[o].runners[k].run(args.steps)?),
                    Slot::Py(p) => {
                        let prog = &baseline.programs[p];
                        let t = baseline.servers[prog.server].measure(
                            prog.variant,
                            *spatial,
                            args.batch_size,
                            &PAPER_HIDDEN,
                            args.alpha,
                            args.beta,
                            args.steps,
                            args.warmup,
                        )?;
                        (py_label(prog), t)
                    }
                };
                log.push_str(&format!(
                    "{} {net} {} {:.6} {} {:.1} {}\n",
                    round + 1,
                    label.replace(' ', "-"),
                    t.seconds,
                    t.samples,
                    t.samples_per_second(),
                    t.cpu_seconds.map_or("-".into(), |c| format!("{c:.6}"))
                ));
                timings.entry((slot, net)).or_default().push(t);
            }
        }
        eprintln!("round {}/{} done", round + 1, args.repeats);
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let log_path = args.out.join(format!("race-{}.log", args.torch_device.name()));
    std::fs::write(&log_path, log).with_context(|| format!("cannot write {}", log_path.display()))?;
    println!("raw log: {}", log_path.display());

    let mut results = Vec::new();
    for (k, &(net, _)) in nets.iter().enumerate() {
        for &slot in &order {
            let t = &timings[&(slot, net)];
            results.push(match slot {
                Slot::Ours(o) => Measured::new(
                    ours[o].which.label(),
                    ours[o].runners[k].name(),
                    net,
                    args.batch_size,
                    &PAPER_HIDDEN,
                    t,
                )
                .with(ours[o].threads, None),
                Slot::Py(p) => {
                    let prog = &baseline.programs[p];
                    let server = &baseline.servers[prog.server];
                    Measured::new(
                        "pytorch",
                        server.framework(),
                        net,
                        args.batch_size,
                        &PAPER_HIDDEN,
                        t,
                    )
                    .with(prog.threads, prog.label_variant)
                }
            });
        }
    }
    Ok(results)
}

/// A program's place in a round: one of ours, or one of PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Ours(usize),
    Py(usize),
}
