//! The `spatial-gpu` command line. `main.rs` only calls [`run`]; everything lives in the library.

use crate::backend::Backend;
use crate::checkpoint::{self, Progress};
use crate::config::{Init, InputMode, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use crate::cpu::CpuBackend;
use crate::data;
use crate::model::{Params, TrainState};
use crate::train::{self, Outcome, RunOptions};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Pixels of one 28x28 image.
const IMAGE_PIXELS: usize = 28 * 28;

/// Set to 1 to never download the datasets automatically (tests, offline machines).
pub const ENV_NO_FETCH: &str = "SPATIAL_GPU_NO_FETCH";

#[derive(Parser, Debug)]
#[command(
    name = "spatial-gpu",
    version,
    about = "Train spatial neural networks (MNIST + Fashion-MNIST) on a WGSL GPU engine or the CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a network on both tasks and save metrics, summary and checkpoint in --out.
    Train(TrainArgs),
    /// Manage the datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Show the compute adapters wgpu finds and which one the GPU backend would use.
    Info,
    /// Split a trained model into per-task subnetworks and evaluate them.
    Split(crate::split::SplitArgs),
    /// Draw Figures 1 and 2 of the paper for a trained model.
    Figure(crate::figure::FigureArgs),
    /// Measure training throughput of each backend (and the PyTorch baseline when available).
    Bench(crate::bench::BenchArgs),
    /// Train and split the paper's grid (modes x regular/spatial x seeds) and write Table 1.
    Reproduce(crate::reproduce::ReproduceArgs),
    /// Train a grid of settings (transport norm x weight norm x init x alpha x beta) and tabulate them.
    Sweep(crate::reproduce::SweepArgs),
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download MNIST and Fashion-MNIST into the data directory, verifying every file's SHA-256.
    Fetch {
        #[command(flatten)]
        data: DataDirArg,
    },
}

#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// Directory holding mnist/ and fashion-mnist/ [env: SPATIAL_GPU_DATA; default: the user cache dir]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Cpu,
    Gpu,
    /// The GPU if a hardware adapter is present, else the CPU.
    Auto,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Input mode [default: concat]
    #[arg(long, value_enum)]
    pub mode: Option<InputMode>,
    /// Weight initialisation [default: xavier]
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// Normalisation of the transport cost: paper (1/N_l) or mean (1/(N_{l-1} N_l), the authors' code) [default: paper]
    #[arg(long, value_enum)]
    pub transport_norm: Option<TransportNorm>,
    /// Weight term of the transport cost: l1 (|w|, the paper) or l2 (w^2) [default: l1]
    #[arg(long, value_enum)]
    pub weight_norm: Option<WeightNorm>,
    /// Weight of the transport cost [default: 0.01]
    #[arg(long, conflicts_with = "regular")]
    pub alpha: Option<f32>,
    /// Weight of the density cost [default: 3]
    #[arg(long, conflicts_with = "regular")]
    pub beta: Option<f32>,
    /// A regular network: alpha = beta = 0.
    #[arg(long)]
    pub regular: bool,
    /// Hidden layer sizes, comma-separated [default: 128,128,128,256]
    #[arg(long, value_delimiter = ',', value_name = "N,N,..")]
    pub hidden: Option<Vec<usize>>,
    /// Number of epochs (with --resume: train until this many epochs in total) [default: 50]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of everything random [default: 1]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Examples per batch [default: 256]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 0.005]
    #[arg(long)]
    pub lr: Option<f32>,
    /// Compute backend
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// GPU adapter to use: a substring of its name (see `spatial-gpu info`) [env: SPATIAL_GPU_ADAPTER]
    #[arg(long)]
    pub adapter: Option<String>,
    /// Output directory [default: runs/<mode>-<spatial|regular>-seed<seed>]
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run saved in DIR (its options are kept; --epochs may extend it)
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Also save a checkpoint every N steps (a checkpoint is always saved at each epoch's end)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub checkpoint_every: usize,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl TrainArgs {
    /// The configuration these options describe (defaults from METHOD.md where not given).
    pub fn configs(&self) -> Result<(ModelConfig, TrainConfig)> {
        let mut train = TrainConfig::default();
        if let Some(m) = self.mode {
            train.mode = m;
        }
        if let Some(v) = self.epochs {
            train.epochs = v;
        }
        if let Some(v) = self.seed {
            train.seed = v;
        }
        if let Some(v) = self.batch_size {
            train.batch_size = v;
        }
        if let Some(v) = self.lr {
            train.lr = v;
        }
        let mut model = ModelConfig::defaults(train.mode.input_dim(IMAGE_PIXELS));
        if let Some(h) = &self.hidden {
            let mut sizes = vec![model.sizes[0]];
            sizes.extend(h);
            sizes.push(model.output_dim());
            model.sizes = sizes;
            // The spatial layers stay "the third hidden layer on", clipped to the network's depth.
            let last = model.num_layers();
            model.spatial_layers = (3.min(last)..=last).collect();
        }
        if let Some(v) = self.init {
            model.init = v;
        }
        if let Some(v) = self.transport_norm {
            model.transport_norm = v;
        }
        if let Some(v) = self.weight_norm {
            model.weight_norm = v;
        }
        if let Some(v) = self.alpha {
            model.alpha = v;
        }
        if let Some(v) = self.beta {
            model.beta = v;
        }
        if self.regular {
            model.alpha = 0.0;
            model.beta = 0.0;
        }
        model.validate()?;
        train.validate()?;
        Ok((model, train))
    }

    /// Options that define the run and so cannot change on --resume.
    fn fixed_options_given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let pairs: [(&'static str, bool); 12] = [
            ("--mode", self.mode.is_some()),
            ("--init", self.init.is_some()),
            ("--transport-norm", self.transport_norm.is_some()),
            ("--weight-norm", self.weight_norm.is_some()),
            ("--alpha", self.alpha.is_some()),
            ("--beta", self.beta.is_some()),
            ("--regular", self.regular),
            ("--hidden", self.hidden.is_some()),
            ("--seed", self.seed.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--lr", self.lr.is_some()),
            ("--out", self.out.is_some()),
        ];
        for (name, given) in pairs {
            if given {
                v.push(name);
            }
        }
        v
    }
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Train(args) => cmd_train(&args),
        Command::Data {
            command: DataCommand::Fetch { data },
        } => {
            let dir = data::resolve_data_dir(data.data_dir.as_deref());
            let report = data::fetch::fetch(&dir, &data::fetch::MIRRORS, true)?;
            println!(
                "data in {}: {} file(s) downloaded, {} already present and verified",
                dir.display(),
                report.downloaded.len(),
                report.present.len()
            );
            Ok(0)
        }
        Command::Bench(args) => crate::bench::cmd_bench(&args),
        Command::Split(args) => crate::split::cmd_split(&args),
        Command::Figure(args) => crate::figure::cmd_figure(&args),
        Command::Reproduce(args) => crate::reproduce::cmd_reproduce(&args),
        Command::Sweep(args) => crate::reproduce::cmd_sweep(&args),
        Command::Info => {
            println!("{}", gpu_adapter_report());
            Ok(0)
        }
    }
}

/// Loads the datasets, fetching them first if they are missing and the network is reachable.
pub fn load_data(option: Option<&Path>) -> Result<data::Datasets> {
    let dir = data::resolve_data_dir(option);
    match data::load(&dir) {
        Ok(d) => Ok(d),
        Err(e @ data::idx::DataError::MissingData { .. }) => {
            let mirrors = data::fetch::MIRRORS;
            let no_fetch = std::env::var(ENV_NO_FETCH).is_ok_and(|v| v == "1");
            if no_fetch || !data::fetch::network_reachable(&mirrors) {
                return Err(e.into());
            }
            eprintln!(
                "{e}\nthe network is reachable: fetching the datasets into {}",
                dir.display()
            );
            data::fetch::fetch(&dir, &mirrors, true)?;
            Ok(data::load(&dir)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes sure `out` can hold a new run: creates it, refuses one that holds another run, and checks
/// that it is writable, all before any training starts.
pub fn prepare_out_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    for existing in [
        train::checkpoint_path(out),
        train::summary_path(out),
        train::metrics_path(out),
    ] {
        if existing.exists() {
            bail!(
                "--out {}: the directory already holds a run ({} exists); continue it with `spatial-gpu train --resume {}` or choose another --out",
                out.display(),
                existing.display(),
                out.display()
            );
        }
    }
    check_writable(out, "--out")
}

/// Fails unless a file can be created in `dir` (`option` names the option in the message).
pub fn check_writable(dir: &Path, option: &str) -> Result<()> {
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| {
        format!(
            "{option} {}: cannot create a file in the directory",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Builds the backend `choice` names for a model and its starting state.
pub fn make_backend(
    choice: BackendChoice,
    adapter: Option<&str>,
    model: ModelConfig,
    train: TrainConfig,
    state: TrainState,
) -> Result<Box<dyn Backend>> {
    let use_gpu = match choice {
        BackendChoice::Cpu => false,
        BackendChoice::Gpu => true,
        BackendChoice::Auto => gpu_hardware_adapter_available(),
    };
    if use_gpu {
        gpu_backend(adapter, model, train, state)
    } else {
        Ok(Box::new(CpuBackend::new(model, train, state)?))
    }
}

fn cmd_train(args: &TrainArgs) -> Result<i32> {
    let (model, train_cfg, state, start, out) = if let Some(dir) = &args.resume {
        let given = args.fixed_options_given();
        if !given.is_empty() {
            bail!("--resume {}: {} cannot change when resuming (the run keeps its own options; only --epochs, --backend, --data-dir, --adapter, --checkpoint-every may be given)", dir.display(), given.join(", "));
        }
        if dir.is_file() {
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            bail!(
                "--resume {}: give the run's directory, not a file (e.g. --resume {})",
                dir.display(),
                parent.display()
            );
        }
        if !dir.is_dir() {
            bail!("--resume {}: no such directory", dir.display());
        }
        let path = train::checkpoint_path(dir);
        if !path.exists() {
            bail!(
                "--resume {}: no checkpoint {} in that directory (a run saves one at the end of its first epoch)",
                dir.display(),
                path.display()
            );
        }
        let ck = checkpoint::load(&path)?;
        let mut train_cfg = ck.train.clone();
        if let Some(e) = args.epochs {
            if e < ck.progress.epoch {
                bail!(
                    "--epochs {e}: the run in {} has already finished {} epochs",
                    dir.display(),
                    ck.progress.epoch
                );
            }
            train_cfg.epochs = e;
        }
        train_cfg.validate()?;
        let finished = ck.progress.epoch == train_cfg.epochs && ck.progress.batch == 0;
        if finished && train::summary_path(dir).exists() {
            println!(
                "nothing to do: the run in {} has finished its {} epochs (give --epochs N to extend it to N epochs)",
                dir.display(),
                train_cfg.epochs
            );
            return Ok(0);
        }
        check_writable(dir, "--resume")?;
        // Only this process saves into `dir` now: temporary files of a killed one can go.
        checkpoint::remove_stale_temps(&path);
        // Metrics of a partly finished epoch were never written; those of later epochs are dropped.
        (ck.model, train_cfg, ck.state, ck.progress, dir.clone())
    } else {
        let (model, train_cfg) = args.configs()?;
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(format!(
                "{}-{}-seed{}",
                train_cfg.mode,
                if model.is_spatial() { "spatial" } else { "regular" },
                train_cfg.seed
            ))
        });
        prepare_out_dir(&out)?;
        let state = TrainState::new(Params::init(&model, train_cfg.seed));
        (model, train_cfg, state, Progress::default(), out)
    };
    let data = load_data(args.data.data_dir.as_deref())?;
    check_fits_data(&model, &train_cfg, &data, args)?;
    let mut backend = make_backend(
        args.backend,
        args.adapter.as_deref(),
        model.clone(),
        train_cfg.clone(),
        state,
    )?;
    println!(
        "training {} {} network, sizes {:?}, alpha {} beta {}, {} epochs from epoch {} on {} -> {}",
        train_cfg.mode,
        if model.is_spatial() { "spatial" } else { "regular" },
        model.sizes,
        model.alpha,
        model.beta,
        train_cfg.epochs,
        start.epoch,
        backend.name(),
        out.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C kills the process as usual.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: saving a checkpoint at the next step boundary (Ctrl-C again to abort)");
        });
    }
    let opts = RunOptions {
        out: out.clone(),
        progress: !args.no_progress,
        verbose: true,
        checkpoint_every: args.checkpoint_every,
        stop: Some(stop),
    };
    match train::train(backend.as_mut(), &data, &opts, start)? {
        Outcome::Finished(s) => {
            println!(
                "done: full accuracy {:.4} (mnist {:.4}, fashion {:.4}), {:.2} s/epoch, {:.0} samples/s; saved in {}",
                s.full_accuracy,
                s.task_accuracy[0],
                s.task_accuracy.get(1).copied().unwrap_or(f64::NAN),
                s.seconds_per_epoch,
                s.samples_per_second,
                out.display()
            );
            Ok(0)
        }
        Outcome::Interrupted(p) => {
            let mut resume = format!("spatial-gpu train --resume {}", shell_word(&out));
            if let Some(d) = &args.data.data_dir {
                resume.push_str(&format!(" --data-dir {}", shell_word(d)));
            }
            if args.backend != BackendChoice::Auto {
                resume.push_str(&format!(
                    " --backend {}",
                    args.backend
                        .to_possible_value()
                        .expect("no skipped variants")
                        .get_name()
                ));
            }
            eprintln!(
                "interrupted: checkpoint {} {} (of {} epochs).\nResume with: {resume}",
                train::checkpoint_path(&out).display(),
                train::describe_progress(p),
                train_cfg.epochs
            );
            Ok(130)
        }
    }
}

/// Checks the model and batch size against the data before anything is allocated for them.
fn check_fits_data(
    model: &ModelConfig,
    cfg: &TrainConfig,
    data: &data::Datasets,
    args: &TrainArgs,
) -> Result<()> {
    let input = data.input_dim(cfg.mode);
    if model.sizes[0] != input {
        let what = match &args.resume {
            Some(dir) => format!(
                "--resume {}: the checkpoint {}",
                dir.display(),
                train::checkpoint_path(dir).display()
            ),
            None => "the model".to_string(),
        };
        bail!(
            "{what} has {} inputs, but the {} input of the data has {input} values per example",
            model.sizes[0],
            cfg.mode
        );
    }
    let examples = data::epoch_order(cfg.mode, data, cfg.seed, 0).len();
    if cfg.batch_size > examples {
        bail!(
            "invalid --batch-size: {} is more than the {examples} training examples of an epoch in {} mode",
            cfg.batch_size,
            cfg.mode
        );
    }
    Ok(())
}

/// A path as one shell word: as it is when it has nothing a shell would split or expand, else in
/// single quotes.
fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// GPU glue: the engine lives in `crate::gpu`.
fn gpu_adapter_report() -> String {
    crate::gpu::adapter_report()
}
/// `auto` takes the GPU only for a hardware adapter: on Mesa's lavapipe a training step measured
/// ~28x slower than the CPU backend (docs/GPU.md), so a software adapter is never preferred.
fn gpu_hardware_adapter_available() -> bool {
    crate::gpu::hardware_adapter_available()
}
fn gpu_backend(
    adapter: Option<&str>,
    m: ModelConfig,
    t: TrainConfig,
    s: TrainState,
) -> Result<Box<dyn Backend>> {
    let ctx = crate::gpu::GpuContext::new(adapter).context("--backend gpu: no usable GPU adapter")?;
    Ok(Box::new(crate::gpu::GpuBackend::new(ctx, m, t, s)?))
}
