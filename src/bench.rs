//! `spatial-gpu bench`: training throughput of our backends against the PyTorch baseline
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

use crate::backend::{Backend, Losses};
use crate::cli::{self, BackendChoice, DataDirArg};
use crate::config::{Init, InputMode, ModelConfig, TrainConfig};
use crate::cpu::{self, linear, Workspace};
use crate::data::batches::{epoch_order, Batch, EpochOrder};
use crate::data::Datasets;
use crate::model::{Params, TrainState};
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

/// The baseline script, built into the binary so `bench` works from any directory.
pub const BASELINE_SCRIPT: &str = include_str!("../bench/pytorch_baseline.py");
/// METHOD.md's hidden layers.
pub const PAPER_HIDDEN: [usize; 4] = [128, 128, 128, 256];
/// Batch sizes and width factors of `--sweep`.
pub const SWEEP_BATCHES: [usize; 7] = [64, 128, 256, 512, 1024, 2048, 4096];
pub const SWEEP_WIDTHS: [usize; 3] = [1, 2, 4];
/// Pixels of one 28x28 image, and so the concat input's width is twice this.
const IMAGE_PIXELS: usize = 28 * 28;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchBackend {
    Cpu,
    Gpu,
}

impl BenchBackend {
    fn choice(self) -> BackendChoice {
        match self {
            BenchBackend::Cpu => BackendChoice::Cpu,
            BenchBackend::Gpu => BackendChoice::Gpu,
        }
    }
    fn label(self) -> &'static str {
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

// ---------------------------------------------------------------------------------------------
// The reference file of the baseline's check
// ---------------------------------------------------------------------------------------------

/// The batch of the check: batch 0 of epoch 0 of the run seeded `train.seed`.
pub fn reference_batch(data: &Datasets, train: &TrainConfig) -> Batch {
    let order = epoch_order(train.mode, data, train.seed, 0);
    let mut batch = Batch::with_capacity(train.batch_size, data.input_dim(train.mode));
    order.fill_batch(data, train.mode, 0, train.batch_size, &mut batch);
    batch
}

/// Writes the check file read by `pytorch_baseline.py --check`: `params` as `layer{l}.weight`
/// `(N_l, N_{l-1})`, `layer{l}.bias` `(N_l)`, `layer{l}.position` `(N_l, 2)`; `batch.inputs`
/// `(B, N_0)` f32 and `batch.labels` `(B, heads)` i32 (-1: no label); the CPU backend's gradient of
/// the total loss as `grad.` + the same names; metadata `model` (the configuration as JSON),
/// `loss_total`, `loss_task`, `transport` and `density` (JSON lists). Returns the losses.
pub fn write_reference(path: &Path, model: &ModelConfig, params: &Params, batch: &Batch) -> Result<Losses> {
    let b = batch.size;
    if batch.input_dim != model.sizes[0] || b == 0 {
        bail!(
            "the reference batch ({b} x {}) does not fit the model ({:?})",
            batch.input_dim,
            model.sizes
        );
    }
    let mut ws = Workspace::new(&model.sizes, b);
    let mut grads = vec![0.0; params.data.len()];
    let losses = cpu::forward_backward(
        model,
        params,
        &mut ws,
        &mut grads,
        &batch.inputs[..b * batch.input_dim],
        &batch.labels[..b * model.heads],
        b,
    );
    let layout = &params.layout;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (prefix, data) in [("", &params.data), ("grad.", &grads)] {
        for l in 1..model.sizes.len() {
            let (c, oc) = (model.sizes[l - 1], model.sizes[l]);
            let w = &data[layout.weights[l - 1].clone()];
            let bias = &data[layout.biases[l - 1].clone()];
            tensors.push((
                format!("{prefix}layer{l}.weight"),
                Dtype::F32,
                vec![oc, c],
                f32_bytes(w),
            ));
            tensors.push((
                format!("{prefix}layer{l}.bias"),
                Dtype::F32,
                vec![oc],
                f32_bytes(bias),
            ));
        }
        for (l, r) in layout.positions.iter().enumerate() {
            let p = &data[r.clone()];
            tensors.push((
                format!("{prefix}layer{l}.position"),
                Dtype::F32,
                vec![model.sizes[l], 2],
                f32_bytes(p),
            ));
        }
    }
    tensors.push((
        "batch.inputs".into(),
        Dtype::F32,
        vec![b, batch.input_dim],
        f32_bytes(&batch.inputs[..b * batch.input_dim]),
    ));
    let labels: Vec<u8> = batch.labels[..b * model.heads]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    tensors.push(("batch.labels".into(), Dtype::I32, vec![b, model.heads], labels));
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).expect("shape matches data"),
            )
        })
        .collect();
    let meta: HashMap<String, String> = [
        ("format".to_string(), "spatial-gpu-reference".to_string()),
        ("model".to_string(), serde_json::to_string(model)?),
        ("loss_total".to_string(), format!("{:.17e}", losses.total)),
        ("loss_task".to_string(), format!("{:.17e}", losses.task)),
        ("transport".to_string(), serde_json::to_string(&losses.transport)?),
        ("density".to_string(), serde_json::to_string(&losses.density)?),
    ]
    .into_iter()
    .collect();
    let bytes = safetensors::serialize(views, Some(meta)).context("serialising the reference tensors")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(losses)
}

// ---------------------------------------------------------------------------------------------
// The programs: our backends, and the baseline process
// ---------------------------------------------------------------------------------------------

/// The time of some training steps: wall clock, and CPU time of the thread that ran them.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    pub seconds: f64,
    /// Seconds the measuring thread was on a CPU (`CLOCK_THREAD_CPUTIME_ID`; PyTorch's
    /// `time.thread_time()`, or `process_time()` with several threads). On a shared machine the
    /// wall clock also counts the time other processes had the core; this does not.
    pub cpu_seconds: Option<f64>,
    pub samples: usize,
}

impl Timing {
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-12)
    }
    pub fn samples_per_cpu_second(&self) -> Option<f64> {
        self.cpu_seconds.map(|c| self.samples as f64 / c.max(1e-12))
    }
}

/// CPU time of the calling thread, in seconds (64-bit Linux; `None` elsewhere).
pub fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `ts` is a valid `struct timespec` (two 64-bit fields on 64-bit Linux).
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Some(ts.sec as f64 + ts.nsec as f64 * 1e-9);
        }
    }
    None
}

/// One of our backends training one network on the concat stream of batches, epoch after epoch.
pub struct OurRunner<'a> {
    backend: Box<dyn Backend>,
    data: &'a Datasets,
    order: EpochOrder,
    epoch: usize,
    next: usize,
    batch: Batch,
    train: TrainConfig,
    /// Whether this thread's CPU time is the program's (the single-threaded CPU backend).
    cpu_clock: bool,
}

impl<'a> OurRunner<'a> {
    pub fn new(
        which: BenchBackend,
        adapter: Option<&str>,
        model: ModelConfig,
        train: TrainConfig,
        data: &'a Datasets,
    ) -> Result<Self> {
        let state = TrainState::new(Params::init(&model, train.seed));
        let backend = cli::make_backend(which.choice(), adapter, model, train.clone(), state)?;
        let order = epoch_order(train.mode, data, train.seed, 0);
        let batch = Batch::with_capacity(train.batch_size, data.input_dim(train.mode));
        Ok(OurRunner {
            backend,
            data,
            order,
            epoch: 0,
            next: 0,
            batch,
            train,
            cpu_clock: which == BenchBackend::Cpu,
        })
    }

    pub fn name(&self) -> String {
        self.backend.name()
    }

    /// Times `steps` training steps (batch assembly included); the clock stops after the losses
    /// are read back.
    pub fn run(&mut self, steps: usize) -> Result<Timing> {
        let bs = self.train.batch_size;
        let cpu0 = thread_cpu_seconds();
        let t0 = Instant::now();
        let mut samples = 0;
        for _ in 0..steps {
            if self.next == self.order.num_batches(bs) {
                self.epoch += 1;
                self.order = epoch_order(self.train.mode, self.data, self.train.seed, self.epoch);
                self.next = 0;
            }
            self.order
                .fill_batch(self.data, self.train.mode, self.next, bs, &mut self.batch);
            self.backend.train_step(&self.batch)?;
            self.next += 1;
            samples += self.batch.size;
        }
        let losses = self.backend.take_losses()?;
        let seconds = t0.elapsed().as_secs_f64();
        // A GPU backend works in other threads too (a driver's, or lavapipe's): no CPU time then.
        let cpu_seconds = thread_cpu_seconds()
            .zip(cpu0)
            .map(|(b, a)| b - a)
            .filter(|_| self.cpu_clock);
        if let Some(l) = losses {
            if !l.is_finite() {
                bail!("{}: the loss is not finite ({l:?})", self.backend.name());
            }
        }
        Ok(Timing {
            seconds,
            cpu_seconds,
            samples,
        })
    }
}

/// Whether `python` can import torch, numpy and safetensors: `Ok(torch version)` or why not.
pub fn probe_pytorch(python: &Path) -> std::result::Result<String, String> {
    let out = Command::new(python)
        .args(["-c", "import torch, numpy, safetensors; print(torch.__version__)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed")
            .trim();
        Err(format!(
            "{} cannot import torch, numpy and safetensors: {last}",
            python.display()
        ))
    }
}

/// The baseline script on disk: `--script`, or the built-in copy written to a temporary file
/// (removed on drop).
pub struct Script {
    pub path: PathBuf,
    temporary: bool,
}

impl Script {
    pub fn new(given: Option<&Path>) -> Result<Script> {
        if let Some(p) = given {
            return Ok(Script {
                path: p.to_path_buf(),
                temporary: false,
            });
        }
        let path =
            std::env::temp_dir().join(format!("spatial-gpu-pytorch-baseline-{}.py", std::process::id()));
        std::fs::write(&path, BASELINE_SCRIPT).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Script {
            path,
            temporary: true,
        })
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn python_command(python: &Path, threads: usize) -> Command {
    let mut cmd = Command::new(python);
    let t = threads.to_string();
    for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"] {
        cmd.env(var, &t);
    }
    cmd
}

/// Runs `pytorch_baseline.py --check reference`: `(passed, its output)`.
pub fn run_check(python: &Path, script: &Path, reference: &Path, threads: usize) -> Result<(bool, String)> {
    let out = python_command(python, threads)
        .arg(script)
        .arg("--check")
        .arg(reference)
        .arg("--threads")
        .arg(threads.to_string())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// The baseline as a server process (`--serve`): one request per measurement.
pub struct PyServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub info: serde_json::Value,
}

#[derive(Serialize)]
struct PyRequest<'a> {
    spatial: bool,
    batch_size: usize,
    hidden: &'a [usize],
    alpha: f32,
    beta: f32,
    steps: usize,
    warmup: usize,
}

impl PyServer {
    pub fn start(python: &Path, script: &Path, data_dir: &Path, threads: usize) -> Result<PyServer> {
        let mut child = python_command(python, threads)
            .arg(script)
            .arg("--serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--threads")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", python.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut server = PyServer {
            child,
            stdin: Some(stdin),
            stdout,
            info: serde_json::Value::Null,
        };
        server.info = server
            .read_reply()
            .context("the PyTorch baseline did not start")?;
        Ok(server)
    }

    fn read_reply(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("the PyTorch baseline exited (see its messages above)");
            }
            // Anything that is not a JSON object (a library's warning) is passed on.
            if line.trim_start().starts_with('{') {
                return Ok(serde_json::from_str(&line)?);
            }
            eprint!("pytorch: {line}");
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        spatial: bool,
        batch_size: usize,
        hidden: &[usize],
        alpha: f32,
        beta: f32,
        steps: usize,
        warmup: usize,
    ) -> Result<Timing> {
        let req = PyRequest {
            spatial,
            batch_size,
            hidden,
            alpha,
            beta,
            steps,
            warmup,
        };
        let stdin = self.stdin.as_mut().expect("open until drop");
        writeln!(stdin, "{}", serde_json::to_string(&req)?)?;
        stdin.flush()?;
        let v = self.read_reply()?;
        let seconds = v["seconds"]
            .as_f64()
            .ok_or_else(|| anyhow!("bad reply from the baseline: {v}"))?;
        let samples = v["samples"]
            .as_u64()
            .ok_or_else(|| anyhow!("bad reply from the baseline: {v}"))? as usize;
        Ok(Timing {
            seconds,
            cpu_seconds: v["cpu_seconds"].as_f64(),
            samples,
        })
    }

    pub fn framework(&self) -> String {
        self.info["framework"].as_str().unwrap_or("pytorch").to_string()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // Closing stdin ends the server's loop; wait for it so no process is left behind.
        drop(self.stdin.take());
        let _ = self.child.wait_timeout_or_kill();
    }
}

trait WaitOrKill {
    fn wait_timeout_or_kill(&mut self) -> std::io::Result<()>;
}

impl WaitOrKill for Child {
    fn wait_timeout_or_kill(&mut self) -> std::io::Result<()> {
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < 5.0 {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.kill()?;
        self.wait().map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and results
// ---------------------------------------------------------------------------------------------

fn median(v: &[f64]) -> f64 {
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

/// One program's measurements of one network.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// `cpu`, `gpu` or `pytorch`.
    pub program: String,
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
    fn new(
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
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub network: String,
    pub program: String,
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
    pub our_threads: usize,
    pub pytorch_threads: usize,
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
fn gpu_step_breakdown(
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

fn cpu_model() -> String {
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

// ---------------------------------------------------------------------------------------------
// GEMM roofline
// ---------------------------------------------------------------------------------------------

/// One GEMM of a training step: `c (m×n) = a (m×k) · b (k×n)` with the CPU backend's strides.
#[derive(Clone, Debug)]
pub struct GemmCall {
    /// `forward l`, `dW l` or `dX l`.
    pub what: String,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a_strides: (usize, usize),
    pub b_strides: (usize, usize),
}

impl GemmCall {
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }
}

/// The GEMMs of one training step of a network of `sizes` at batch `b`, as `cpu::linear` issues them.
pub fn step_gemms(sizes: &[usize], b: usize) -> Vec<GemmCall> {
    let mut v = Vec::new();
    for l in 1..sizes.len() {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        v.push(GemmCall {
            what: format!("forward {l}"),
            m: b,
            k: c,
            n: oc,
            a_strides: (c, 1),
            b_strides: (1, c),
        });
    }
    for l in (1..sizes.len()).rev() {
        let (c, oc) = (sizes[l - 1], sizes[l]);
        v.push(GemmCall {
            what: format!("dW {l}"),
            m: oc,
            k: b,
            n: c,
            a_strides: (1, oc),
            b_strides: (c, 1),
        });
        if l > 1 {
            v.push(GemmCall {
                what: format!("dX {l}"),
                m: b,
                k: oc,
                n: c,
                a_strides: (oc, 1),
                b_strides: (c, 1),
            });
        }
    }
    v
}

/// Measures the GEMMs of one training step (best of several rounds, after a warm-up).
pub fn measure_gemms(sizes: &[usize], b: usize, rounds: usize) -> GemmReport {
    let calls = step_gemms(sizes, b);
    let fill = |n: usize| {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect::<Vec<f32>>()
    };
    let bufs: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = calls
        .iter()
        .map(|g| (fill(g.m * g.k), fill(g.k * g.n), vec![0.0; g.m * g.n]))
        .collect();
    let mut bufs = bufs;
    let mut best = vec![f64::INFINITY; calls.len()];
    let mut best_step = f64::INFINITY;
    for round in 0..rounds + 1 {
        let t_step = Instant::now();
        for (i, (g, (a, bb, c))) in calls.iter().zip(bufs.iter_mut()).enumerate() {
            let t = Instant::now();
            linear::gemm(g.m, g.k, g.n, 1.0, a, g.a_strides, bb, g.b_strides, 1.0, c);
            let dt = t.elapsed().as_secs_f64();
            if round > 0 {
                best[i] = best[i].min(dt);
            }
        }
        if round > 0 {
            best_step = best_step.min(t_step.elapsed().as_secs_f64());
        }
    }
    let flops = GemmCall::flops;
    let shapes: Vec<GemmShapeReport> = calls
        .iter()
        .zip(&best)
        .map(|(g, &t)| GemmShapeReport {
            what: g.what.clone(),
            mkn: [g.m, g.k, g.n],
            gflops: flops(g) / t * 1e-9,
        })
        .collect();
    let step_flops: f64 = calls.iter().map(flops).sum();
    let peak = shapes.iter().map(|s| s.gflops).fold(0.0, f64::max);
    let per_epoch = 60000.0 * matmul_flops_per_example(sizes);
    GemmReport {
        batch_size: b,
        sizes: sizes.to_vec(),
        shapes,
        step_seconds: best_step,
        step_gflops: step_flops / best_step * 1e-9,
        peak_gflops: peak,
        flops_per_epoch: per_epoch,
        floor_seconds_per_epoch_at_peak: per_epoch / (peak * 1e9),
        floor_seconds_per_epoch: best_step * 60000.0 / b as f64,
    }
}

// ---------------------------------------------------------------------------------------------
// Where a CPU step's time goes
// ---------------------------------------------------------------------------------------------

/// One phase of a CPU training step and its median time.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub phase: String,
    pub micros: f64,
}

/// Times the phases of the CPU backend's training step one by one: the same calls as
/// `cpu::forward_backward_into` and `CpuBackend::train_step`, in the same order, each wrapped in a
/// clock (median over `steps` steps, real batches). The last entry is a whole `train_step` (batch
/// assembly excluded) measured alongside, to show that the phases cover it.
pub fn cpu_breakdown(
    model: &ModelConfig,
    train: &TrainConfig,
    data: &Datasets,
    steps: usize,
) -> Result<Vec<Phase>> {
    use crate::cpu::{adam, density, sigmoid, softmax_xent, transport};
    let b = train.batch_size;
    let sizes = &model.sizes;
    let last = model.num_layers();
    let mut state = TrainState::new(Params::init(model, train.seed));
    let layout = state.params.layout.clone();
    let mut backend = cpu::CpuBackend::new(model.clone(), train.clone(), state.clone())?;
    let mut ws = Workspace::new(sizes, b);
    let mut grads = vec![0.0f32; layout.len];
    let order = epoch_order(train.mode, data, train.seed, 0);
    let mut batch = Batch::with_capacity(b, data.input_dim(train.mode));
    let names = [
        "batch assembly (u8 -> f32)",
        "forward GEMMs (bias in C)",
        "sigmoid",
        "softmax cross-entropy",
        "zero the gradient",
        "backward GEMMs + bias grad",
        "sigmoid backward",
        "transport T (3 layers)",
        "density V (3 layers)",
        "Adam",
        "rest of train_step (checks, meter)",
        "whole train_step (for comparison)",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let n_spatial = model.spatial_layers.len().max(1) as f32;
    let (ct, cv) = (model.alpha / n_spatial, model.beta / n_spatial);
    let nb = order.num_batches(b);
    for s in 0..steps + 3 {
        let mut acc = [0.0f64; 12];
        let mut clock = Instant::now();
        let mut lap = |k: usize, clock: &mut Instant| {
            acc[k] += clock.elapsed().as_secs_f64() * 1e6;
            *clock = Instant::now();
        };
        order.fill_batch(data, train.mode, s % nb, b, &mut batch);
        let b = batch.size;
        lap(0, &mut clock);
        let params = &state.params;
        for l in 1..=last {
            let (c, oc) = (sizes[l - 1], sizes[l]);
            let (before, after) = ws.acts.split_at_mut(l);
            let inp: &[f32] = if l == 1 { &batch.inputs } else { &before[l - 1] };
            linear::linear_forward(
                &mut after[0][..b * oc],
                inp,
                params.weight(l),
                params.bias(l),
                b,
                c,
                oc,
            );
            lap(1, &mut clock);
            if l < last {
                sigmoid::sigmoid_forward(&mut after[0][..b * oc]);
                lap(2, &mut clock);
            }
        }
        let n_out = b * sizes[last];
        let (hs, heads) = (model.head_size(), model.heads);
        softmax_xent::softmax_xent_forward_backward(
            &mut ws.deltas[last][..n_out],
            &ws.acts[last][..n_out],
            &batch.labels,
            b,
            heads,
            hs,
        );
        lap(3, &mut clock);
        grads.fill(0.0);
        lap(4, &mut clock);
        {
            let mut g = layout.split_mut(&mut grads);
            for l in (1..=last).rev() {
                let (c, oc) = (sizes[l - 1], sizes[l]);
                let (d_before, d_after) = ws.deltas.split_at_mut(l);
                let dout = &d_after[0][..b * oc];
                let inp: &[f32] = if l == 1 {
                    &batch.inputs
                } else {
                    &ws.acts[l - 1][..b * c]
                };
                let dinp = if l > 1 {
                    Some(&mut d_before[l - 1][..b * c])
                } else {
                    None
                };
                let w = params.weight(l);
                clock = Instant::now();
                linear::linear_backward(
                    dinp,
                    &mut g.weights[l - 1][..],
                    &mut g.biases[l - 1][..],
                    dout,
                    inp,
                    w,
                    b,
                    c,
                    oc,
                );
                lap(5, &mut clock);
                if l > 1 {
                    sigmoid::sigmoid_backward(&mut d_before[l - 1][..b * c], &ws.acts[l - 1][..b * c]);
                    lap(6, &mut clock);
                }
            }
            for &l in &model.spatial_layers {
                let (c, oc) = (sizes[l - 1], sizes[l]);
                let (p_lo, p_hi) = g.positions.split_at_mut(l);
                let (pin, pout) = (params.position(l - 1), params.position(l));
                clock = Instant::now();
                transport::transport_forward_backward(
                    &mut g.weights[l - 1][..],
                    &mut p_lo[l - 1][..],
                    &mut p_hi[0][..],
                    params.weight(l),
                    pin,
                    pout,
                    c,
                    oc,
                    model.transport_norm,
                    model.weight_norm,
                    ct,
                );
                lap(7, &mut clock);
                // As the backend does: a regular network's V comes from its cache (here: skipped).
                if cv != 0.0 {
                    density::density_forward_backward(&mut p_hi[0][..], pout, oc, cv);
                }
                lap(8, &mut clock);
            }
        }
        clock = Instant::now();
        state.step += 1;
        let hp = adam::AdamStep {
            lr: train.lr,
            beta1: train.beta1,
            beta2: train.beta2,
            eps: train.eps,
            step: state.step,
        };
        adam::adam_update(
            &mut state.params.data,
            &grads,
            &mut state.adam_m,
            &mut state.adam_v,
            hp,
        );
        lap(9, &mut clock);
        backend.train_step(&batch)?;
        lap(11, &mut clock);
        // What the whole step spends beyond the phases above (its divergence checks, the loss
        // meter), from the same iteration.
        acc[10] = (acc[11] - acc[1..10].iter().sum::<f64>()).max(0.0);
        if s >= 3 {
            for (v, a) in t.iter_mut().zip(acc) {
                v.push(a);
            }
        }
    }
    backend.take_losses()?;
    Ok(names
        .iter()
        .zip(&t)
        .map(|(n, v)| Phase {
            phase: n.to_string(),
            micros: median(v),
        })
        .collect())
}

fn print_breakdown(phases: &[Phase], b: usize) {
    let (whole, parts) = phases.split_last().expect("phases");
    let sum: f64 = parts.iter().map(|p| p.micros).sum();
    println!("where a CPU step's time goes (batch {b}, median per step):");
    for p in parts {
        println!(
            "  {:<34} {:8.1} us {:5.1}%",
            p.phase,
            p.micros,
            100.0 * p.micros / sum
        );
    }
    println!("  {:<34} {:8.1} us", "sum of the phases", sum);
    println!(
        "  {:<34} {:8.1} us (+ batch assembly = {:.1} us)",
        whole.phase,
        whole.micros,
        whole.micros + parts[0].micros
    );
}

// ---------------------------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------------------------

pub fn cmd_bench(args: &BenchArgs) -> Result<i32> {
    if args.steps == 0 || args.repeats == 0 || args.batch_size == 0 || args.threads == 0 {
        bail!("--steps, --repeats, --batch-size and --threads must be at least 1");
    }
    let data = cli::load_data(args.data.data_dir.as_deref())?;
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

    // The baseline: available, equal to us on one batch, then started as a server.
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
        let model = bench_model(input_dim, &PAPER_HIDDEN, true, args.alpha, args.beta);
        let params = Params::init(&model, train.seed);
        let losses = write_reference(&path, &model, &params, &reference_batch(&data, &train))?;
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
    let mut server = match (&pytorch, &script) {
        (Some(_), Some(script)) => Some(PyServer::start(
            &args.python,
            &script.path,
            &data_dir,
            args.threads,
        )?),
        _ => None,
    };
    if let Some(s) = &server {
        println!("pytorch: {}", s.info);
    }

    // Our programs, one runner per backend and network.
    let nets = [("spatial", true), ("regular", false)];
    let mut ours: Vec<(BenchBackend, Vec<OurRunner>)> = Vec::new();
    let mut backends = args.backends.clone();
    backends.dedup();
    for &which in &backends {
        let mut runners = Vec::new();
        for (_, spatial) in nets {
            let model = bench_model(input_dim, &PAPER_HIDDEN, spatial, args.alpha, args.beta);
            match OurRunner::new(which, args.adapter.as_deref(), model, train.clone(), &data) {
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
            if let Some(s) = server.as_mut() {
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
    for (net, _) in nets {
        for (which, runners) in &ours {
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
        if let Some(s) = &server {
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
    let mut ratios = Vec::new();
    for (net, _) in nets {
        let py = results
            .iter()
            .find(|m| m.network == net && m.program == "pytorch");
        for m in results
            .iter()
            .filter(|m| m.network == net && m.program != "pytorch")
        {
            if let Some(py) = py {
                ratios.push(Ratio {
                    network: net.into(),
                    program: m.program.clone(),
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

    // The GPU budget of issue 6: a whole step within 1.3x of its matmul kernels alone.
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
        sweep = run_sweep(
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

fn print_results(results: &[Measured], ratios: &[Ratio], repeats: usize) {
    println!();
    println!(
        "{:<8} {:<8} {:>13} {:>9} {:>8} {:>8} {:>11}  samples/s of each round",
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
            "{:<8} {:<8} {:>13.0} {:>9.0} {:>8.3} {:>8.3} {:>11}  {}",
            m.network,
            m.program,
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
            "ratio {} / pytorch, {} network: {:.2}x (medians), {:.2}x (bests){}",
            r.program,
            r.network,
            r.median_ratio,
            r.best_ratio,
            r.cpu_time_ratio
                .map_or(String::new(), |c| format!(", {c:.2}x (per CPU second)"))
        );
    }
}

fn print_gemm(g: &GemmReport, results: &[Measured]) {
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
            "cpu backend, {} network: {:.3} s/epoch = {:.2}x the GEMM floor",
            m.network,
            m.seconds_per_epoch,
            m.seconds_per_epoch / g.floor_seconds_per_epoch
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sweep
// ---------------------------------------------------------------------------------------------

/// Steps per sweep measurement: about 16384 examples at width x1, fewer as the width grows, and at
/// least 2 steps.
fn sweep_steps(batch: usize, width: usize) -> usize {
    (16384 / width).div_ceil(batch).max(2)
}

fn run_sweep(
    args: &BenchArgs,
    data: &Datasets,
    backends: &[BenchBackend],
    mut server: Option<&mut PyServer>,
) -> Result<Vec<SweepPoint>> {
    let input_dim = data.input_dim(InputMode::Concat);
    let rounds = args.repeats.min(3);
    let mut points: Vec<SweepPoint> = Vec::new();
    // A program whose next round is predicted to take longer than this is left out of the rest
    // of the sweep (a software GPU such as lavapipe would otherwise run for hours).
    const ROUND_LIMIT_S: f64 = 15.0;
    let predicted_round_s =
        |points: &[SweepPoint], program: &str, width: usize, batch: usize, steps: usize| {
            points
                .iter()
                .rev()
                .find(|p| p.program == program)
                .map_or(0.0, |p| {
                    let scale =
                        (batch as f64 / p.batch_size as f64) * (width as f64 / p.width as f64).powi(2);
                    p.step_ms * 1e-3 * scale * steps as f64
                })
        };
    let mut dropped: Vec<String> = Vec::new();
    println!();
    println!("sweep: spatial network, median of {rounds} alternating rounds per point");
    for &width in &SWEEP_WIDTHS {
        let hidden: Vec<usize> = PAPER_HIDDEN.iter().map(|h| h * width).collect();
        for &batch in &SWEEP_BATCHES {
            let steps = sweep_steps(batch, width);
            let mut keep = |program: &str| {
                if dropped.iter().any(|d| d == program) {
                    return false;
                }
                let t = predicted_round_s(&points, program, width, batch, steps);
                if t > ROUND_LIMIT_S {
                    println!("  {program}: left out from x{width} batch {batch} on (a round would take about {t:.0} s)");
                    dropped.push(program.to_string());
                    return false;
                }
                true
            };
            let model = bench_model(input_dim, &hidden, true, args.alpha, args.beta);
            let mut runners = Vec::new();
            for &w in backends {
                if !keep(w.label()) {
                    continue;
                }
                let train = bench_train(batch);
                let mut r = OurRunner::new(w, args.adapter.as_deref(), model.clone(), train, data)?;
                r.run(2)?;
                runners.push((w.label().to_string(), r, Vec::new()));
            }
            let use_py = server.is_some() && keep("pytorch");
            let mut py_timings = Vec::new();
            for _ in 0..rounds {
                for (_, r, timings) in runners.iter_mut() {
                    timings.push(r.run(steps)?);
                }
                if let Some(s) = server.as_deref_mut().filter(|_| use_py) {
                    py_timings.push(s.measure(true, batch, &hidden, args.alpha, args.beta, steps, 2)?);
                }
            }
            let mut measured: Vec<(String, Vec<Timing>)> =
                runners.into_iter().map(|(n, _, t)| (n, t)).collect();
            if use_py {
                measured.push(("pytorch".into(), py_timings));
            }
            for (program, timings) in measured {
                let sps = median(&timings.iter().map(Timing::samples_per_second).collect::<Vec<_>>());
                let p = SweepPoint {
                    program,
                    width,
                    batch_size: batch,
                    step_ms: 1000.0 * batch as f64 / sps,
                    samples_per_second: sps,
                };
                println!(
                    "  x{width} batch {batch:>5} {:<8} {:9.3} ms/step {:9.0} samples/s",
                    p.program, p.step_ms, p.samples_per_second
                );
                points.push(p);
            }
        }
    }
    Ok(points)
}

/// The sweep as a Markdown table: one row per batch size, one column per program and width.
pub fn sweep_markdown(points: &[SweepPoint]) -> String {
    let mut programs: Vec<&str> = Vec::new();
    for p in points {
        if !programs.contains(&p.program.as_str()) {
            programs.push(&p.program);
        }
    }
    let mut cols: Vec<(&str, usize)> = Vec::new();
    for &w in &SWEEP_WIDTHS {
        for &p in &programs {
            cols.push((p, w));
        }
    }
    let mut s = String::from("Step time in ms (samples/s in thousands), spatial network.\n\n| batch |");
    for (p, w) in &cols {
        s.push_str(&format!(" {p} x{w} |"));
    }
    s.push_str("\n| ---: |");
    s.push_str(&" ---: |".repeat(cols.len()));
    s.push('\n');
    for &b in &SWEEP_BATCHES {
        s.push_str(&format!("| {b} |"));
        for (p, w) in &cols {
            match points
                .iter()
                .find(|q| q.program == *p && q.width == *w && q.batch_size == b)
            {
                Some(q) => s.push_str(&format!(
                    " {:.2} ({:.0}k) |",
                    q.step_ms,
                    q.samples_per_second / 1000.0
                )),
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    s
}

pub fn write_sweep(out: &Path, points: &[SweepPoint]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let md = sweep_markdown(points);
    println!();
    print!("{md}");
    std::fs::write(out.join("sweep.md"), &md)?;
    let mut csv = String::from("program,width,batch_size,step_ms,samples_per_second\n");
    for p in points {
        csv.push_str(&format!(
            "{},{},{},{:.6},{:.1}\n",
            p.program, p.width, p.batch_size, p.step_ms, p.samples_per_second
        ));
    }
    std::fs::write(out.join("sweep.csv"), csv)?;
    plot_sweep(&out.join("sweep.png"), &out.join("sweep.svg"), points)?;
    println!(
        "wrote {}/sweep.md, sweep.csv, sweep.png, sweep.svg",
        out.display()
    );
    Ok(())
}

/// Step time against batch size, log-log, one line per program and width.
fn plot_sweep(png: &Path, svg: &Path, points: &[SweepPoint]) -> Result<()> {
    use plotters::prelude::*;
    let _ = plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        include_bytes!("../assets/DejaVuSans.ttf"),
    );
    fn draw<DB: DrawingBackend>(
        root: DrawingArea<DB, plotters::coord::Shift>,
        points: &[SweepPoint],
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
        let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.step_ms), hi.max(p.step_ms))
        });
        let (lo, hi) = if points.is_empty() {
            (0.1, 1.0)
        } else {
            (lo * 0.8, hi * 1.25)
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Training step time vs batch size (spatial network)",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((48f64..5400f64).log_scale(), (lo..hi).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("batch size")
            .y_desc("ms per step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.2}")
                }
            })
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        let mut programs: Vec<&str> = Vec::new();
        for p in points {
            if !programs.contains(&p.program.as_str()) {
                programs.push(&p.program);
            }
        }
        let colours = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
            RGBColor(148, 103, 189),
        ];
        for (pi, prog) in programs.iter().enumerate() {
            for (wi, &w) in SWEEP_WIDTHS.iter().enumerate() {
                let line: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| p.program == *prog && p.width == w)
                    .map(|p| (p.batch_size as f64, p.step_ms))
                    .collect();
                if line.is_empty() {
                    continue;
                }
                let colour = colours[pi % colours.len()];
                let style = ShapeStyle {
                    color: colour.to_rgba(),
                    filled: true,
                    stroke_width: 1 + wi as u32,
                };
                chart
                    .draw_series(LineSeries::new(line.clone(), style))
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(format!("{prog} x{w}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                chart
                    .draw_series(line.iter().map(|&(x, y)| Circle::new((x, y), 3, colour.filled())))
                    .map_err(|e| anyhow!("{e:?}"))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        root.present().map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    }
    draw(BitMapBackend::new(png, (900, 600)).into_drawing_area(), points)?;
    draw(SVGBackend::new(svg, (900, 600)).into_drawing_area(), points)?;
    Ok(())
}
