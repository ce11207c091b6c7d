//! `spatial-gpu train`: one run, new (`--out`) or continued (`--resume`).

use super::config_file::{self, Applied};
use super::{check_writable, interrupt_flag, make_backend, prepare_out_dir, shell_word};
use super::{BackendChoice, DataDirArg, TasksArg};
use crate::checkpoint::{self, Progress};
use crate::config::{
    layer_list, Activation, Init, InputMode, ModelConfig, Overrides, TrainConfig, TransportNorm, WeightNorm,
};
use crate::data::{self, Datasets};
use crate::history::HistoryOptions;
use crate::model::{Params, TrainState};
use crate::provenance::Invocation;
use crate::run_dir::{lock_run_dir, LOCK_FILE};
use crate::run_log::RunLog;
use crate::train::{self, Outcome, RunOptions};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(flatten)]
    pub tasks: TasksArg,
    /// Input mode [default: concat]
    #[arg(long, value_parser = super::choice::<InputMode>())]
    pub mode: Option<InputMode>,
    /// Weight initialisation [default: xavier]
    #[arg(long, value_parser = super::choice::<Init>())]
    pub init: Option<Init>,
    /// Normalisation of the transport cost: paper (1/N_l) or mean (1/(N_{l-1} N_l), the authors' code) [default: paper]
    #[arg(long, value_parser = super::choice::<TransportNorm>())]
    pub transport_norm: Option<TransportNorm>,
    /// Weight term of the transport cost: l1 (|w|, the paper) or l2 (w^2) [default: l1]
    #[arg(long, value_parser = super::choice::<WeightNorm>())]
    pub weight_norm: Option<WeightNorm>,
    /// Activation of the hidden layers [default: sigmoid]
    #[arg(long, value_parser = super::choice::<Activation>())]
    pub activation: Option<Activation>,
    /// Layers with the spatial costs, and split: strictly increasing, ending at the output layer
    /// (layer 0 is the input) [default: 3,4,5; with --hidden, the third hidden layer on]
    #[arg(long, value_delimiter = ',', value_name = "L,L,..")]
    pub spatial_layers: Option<Vec<usize>>,
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
    #[command(flatten)]
    pub threads: super::ThreadsArg,
    /// GPU: training steps recorded and submitted at once, with no host wait between them;
    /// checkpoints, Ctrl-C and --history-every act between such chunks
    #[arg(long, default_value_t = crate::gpu::DEFAULT_STEPS_PER_SUBMIT, value_parser = super::at_least_one)]
    pub steps_per_submit: usize,
    /// Train one network per seed, each in DIR/seed-<seed> (a run directory of its own): on the
    /// GPU all of them in the same dispatches (a population), on the CPU one after another
    #[arg(long, value_delimiter = ',', value_name = "SEED,..", conflicts_with_all = ["seed", "resume"])]
    pub seeds: Option<Vec<u64>>,
    /// Output directory [default: runs/<mode>-<spatial|regular>-seed<seed>; with --seeds,
    /// runs/<mode>-<spatial|regular>-seeds]
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
    /// Record the history (history.safetensors) every N steps as well as at every epoch's end (0 = epochs only)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub history_every: usize,
    /// Store every weight matrix in full in the history (large)
    #[arg(long)]
    pub history_weights: bool,
    /// Also write TensorBoard event files (scalars per epoch, the configuration as text) into DIR
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
    /// Do not draw the training curves (curves.png/.svg, metrics.csv) at the end
    #[arg(long)]
    pub no_plot: bool,
    /// Take options from FILE: TOML whose keys are these long option names (alpha = 0.01), or a
    /// run's summary.json to run that run again; options given here override the file's
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The command line, program first (set by `cli::parse`; empty: this process's). Recorded in
    /// the run's provenance; `--config` learns from it which options were given explicitly.
    #[arg(skip)]
    pub argv: Vec<OsString>,
}

impl TrainArgs {
    /// The changes to the default configuration these options ask for.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            mode: self.mode,
            init: self.init,
            transport_norm: self.transport_norm,
            weight_norm: self.weight_norm,
            activation: self.activation,
            spatial_layers: self.spatial_layers.clone(),
            alpha: self.alpha,
            beta: self.beta,
            regular: self.regular,
            hidden: self.hidden.clone(),
            epochs: self.epochs,
            seed: self.seed,
            batch_size: self.batch_size,
            lr: self.lr,
        }
    }

    /// The run-defining options given with --resume whose value differs from the run's, each as
    /// `--option GIVEN (the run's is RUN)`: options that repeat the run's own values are accepted.
    fn options_changed(&self, model: &ModelConfig, cfg: &TrainConfig) -> Vec<String> {
        fn name<T: crate::config::Choice + PartialEq>(v: &T) -> String {
            v.choice_name().to_string()
        }
        let mut changed = Vec::new();
        let mut check = |option: &str, given: Option<String>, run: String| {
            if let Some(given) = given.filter(|g| *g != run) {
                changed.push(format!("{option} {given} (the run's is {run})"));
            }
        };
        check("--mode", self.mode.as_ref().map(name), name(&cfg.mode));
        check("--init", self.init.as_ref().map(name), name(&model.init));
        check(
            "--transport-norm",
            self.transport_norm.as_ref().map(name),
            name(&model.transport_norm),
        );
        check(
            "--weight-norm",
            self.weight_norm.as_ref().map(name),
            name(&model.weight_norm),
        );
        check(
            "--activation",
            self.activation.as_ref().map(name),
            name(&model.activation),
        );
        check(
            "--spatial-layers",
            self.spatial_layers.as_deref().map(layer_list),
            layer_list(&model.spatial_layers),
        );
        check(
            "--alpha",
            self.alpha.map(|v| v.to_string()),
            model.alpha.to_string(),
        );
        check("--beta", self.beta.map(|v| v.to_string()), model.beta.to_string());
        let list = |v: &[usize]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        let hidden = &model.sizes[1..model.sizes.len() - 1];
        check("--hidden", self.hidden.as_deref().map(list), list(hidden));
        check("--seed", self.seed.map(|v| v.to_string()), cfg.seed.to_string());
        check(
            "--batch-size",
            self.batch_size.map(|v| v.to_string()),
            cfg.batch_size.to_string(),
        );
        check("--lr", self.lr.map(|v| v.to_string()), cfg.lr.to_string());
        check(
            "--tasks",
            self.tasks.tasks.as_ref().map(|t| t.join(",")),
            model.task_names().join(","),
        );
        if self.regular && (model.alpha != 0.0 || model.beta != 0.0) {
            changed.push("--regular (the run's network is spatial)".to_string());
        }
        changed
    }
}

pub fn cmd_train(given: &TrainArgs) -> Result<i32> {
    let (args, applied) = config_file::apply(given)?;
    let applied = applied.unwrap_or_default();
    if let Some(seeds) = args.seeds.clone() {
        return super::train_seeds::train_seeds(&args, &seeds, &applied).map_err(|e| applied.explain_any(e));
    }
    train_with(&args, &applied).map_err(|e| applied.explain_any(e))
}

/// `train` with these options, `applied` from `--config`.
pub(super) fn train_with(args: &TrainArgs, applied: &Applied) -> Result<i32> {
    let threads = args.threads.count()?;
    let (model, train_cfg, state, start, out, _lock, created, recorded) = if let Some(dir) = &args.resume {
        config_file::check_rerun_out(applied, dir, true)?;
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
        let lock = lock_run_dir(dir, "--resume")?;
        let path = train::checkpoint_path(dir);
        if !path.exists() {
            bail!(
                "--resume {}: no checkpoint {} in that directory (a run saves one at the end of its first epoch); \
                 a run that stopped before that has nothing to resume: start it afresh with `spatial-gpu train --out {}`",
                dir.display(),
                path.display(),
                shell_word(dir)
            );
        }
        let ck = checkpoint::load(&path)?;
        let changed = args.options_changed(&ck.model, &ck.train);
        if !changed.is_empty() {
            bail!(
                "--resume {}: a run keeps its own options, and these differ from the run's: {} \
                 (leave them out, or give the run's values; --epochs may extend the run)",
                dir.display(),
                changed.join(", ")
            );
        }
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
        (
            ck.model,
            train_cfg,
            Some(ck.state),
            ck.progress,
            dir.clone(),
            lock,
            Vec::new(),
            ck.data,
        )
    } else {
        // Checked before anything is created; the tasks' heads and input width come with the data.
        let (model, train_cfg) = args.overrides().configs()?;
        let names = args.data.task_names(args.tasks.tasks.as_deref())?;
        data::resolve_tasks(&names, &args.data.custom_tasks()?)?;
        let out = args.out.clone().unwrap_or_else(|| {
            PathBuf::from("runs").join(format!(
                "{}-{}-seed{}",
                train_cfg.mode,
                if model.is_spatial() { "spatial" } else { "regular" },
                train_cfg.seed
            ))
        });
        config_file::check_rerun_out(applied, &out, false)?;
        // The directories this run creates, `out` first: a run that cannot start removes them.
        let created: Vec<PathBuf> = out
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        let lock = prepare_out_dir(&out)?;
        (
            model,
            train_cfg,
            None,
            Progress::default(),
            out,
            lock,
            created,
            None,
        )
    };
    let data_dir = data::resolve_data_dir(args.data.data_dir.as_deref());
    let new_run = args.resume.is_none();
    let loaded = (|| -> Result<_> {
        let names = if new_run {
            args.data.task_names(args.tasks.tasks.as_deref())?
        } else {
            model.task_names()
        };
        let data = args.data.load(&names)?;
        // A rerun's data must be its run's (checked here, so that a refused run leaves no directory).
        config_file::check_rerun_data(applied, &data, &data_dir)?;
        if let Some(state) = state {
            return Ok((data, model, train_cfg, state));
        }
        // A new run: one head per task with its class count, the input width of the tasks' images.
        let (model, train_cfg) = args.overrides().configs_for(&data.shape())?;
        let state = TrainState::new(Params::init(&model, train_cfg.seed));
        Ok((data, model, train_cfg, state))
    })();
    let (data, model, train_cfg, state) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            // A run that could not start leaves no directory behind (one it did not create stays).
            if !created.is_empty() {
                let _ = std::fs::remove_file(out.join(LOCK_FILE));
                // `out` and the parents created for it (as `runs/`), while empty.
                for dir in &created {
                    if std::fs::remove_dir(dir).is_err() {
                        break;
                    }
                }
            }
            return Err(e);
        }
    };
    if let Some(recorded) = recorded.as_deref() {
        checkpoint::check_data_digests(recorded, &data)
            .map_err(|e| data_error(e, args.data.data_dir.as_deref()))?;
    }
    check_fits_data(&model, &train_cfg, &data, args)?;
    let mut backend = make_backend(
        args.backend,
        args.adapter.as_deref(),
        threads,
        args.steps_per_submit,
        model.clone(),
        train_cfg.clone(),
        state,
    )?;
    let epochs = match (start.epoch + 1, train_cfg.epochs) {
        (first, last) if first == last => format!("epoch {last}"),
        (first, last) => format!("epochs {first} to {last}"),
    };
    println!(
        "training a {} {} network, sizes {:?}, alpha {}, beta {}\n{} activation, spatial layers {}\n\
         {epochs} on {}, saved in {}\ntasks: {}",
        train_cfg.mode,
        if model.is_spatial() { "spatial" } else { "regular" },
        model.sizes,
        model.alpha,
        model.beta,
        model.activation,
        layer_list(&model.spatial_layers),
        backend.name(),
        out.display(),
        model
            .task_names()
            .iter()
            .zip(model.head_sizes())
            .map(|(name, n)| format!("{name} ({n} classes)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let stop = interrupt_flag("saving a checkpoint at the next step boundary");
    let opts = RunOptions {
        out: out.clone(),
        progress: !args.no_progress,
        verbose: true,
        checkpoint_every: args.checkpoint_every,
        stop: Some(stop),
        invocation: invocation(args, &data_dir),
    };
    let mut log = run_log(args, &model, &train_cfg, &out, start)?;
    match train::train_observed(backend.as_mut(), &data, &opts, start, &mut log)? {
        Outcome::Finished(s) => {
            if !args.no_plot {
                plot_curves(&out);
            }
            let per_task: Vec<String> = s
                .tasks
                .iter()
                .zip(&s.task_accuracy)
                .map(|(name, a)| format!("{name} {a:.4}"))
                .collect();
            println!(
                "done: full accuracy {:.4} ({}), {:.2} s/epoch, {:.0} samples/s; saved in {}",
                s.full_accuracy,
                per_task.join(", "),
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

/// What is running, for the run's provenance.
pub(super) fn invocation(args: &TrainArgs, data_dir: &Path) -> Invocation {
    let config = args.config.as_deref();
    if args.argv.is_empty() {
        return Invocation::from_env(Some(data_dir), config);
    }
    let argv = args
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Invocation::new(argv, Some(data_dir), config)
}

/// A data mismatch, with the data directory it was found in.
pub fn data_error(e: checkpoint::DataMismatch, option: Option<&Path>) -> anyhow::Error {
    let dir = data::resolve_data_dir(option);
    // The message starts with the file's path under the data directory.
    anyhow::anyhow!("{}/{e}", dir.display())
}

/// Checks the model and batch size against the data before anything is allocated for them.
pub(super) fn check_fits_data(
    model: &ModelConfig,
    cfg: &TrainConfig,
    data: &Datasets,
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

/// The history and TensorBoard logging the options ask for.
pub(super) fn run_log(
    args: &TrainArgs,
    model: &ModelConfig,
    cfg: &TrainConfig,
    out: &Path,
    start: Progress,
) -> Result<RunLog> {
    let mut log = RunLog::default();
    let options = HistoryOptions {
        weights: args.history_weights,
        ..HistoryOptions::default()
    };
    log.record_history(out, model, args.history_every, options, start)?;
    if let Some(dir) = &args.tensorboard {
        log.tensorboard(dir, &model.spatial_layers, &(model, cfg))?;
    }
    Ok(log)
}

/// Draws the training curves of a finished run; a failure is reported but does not fail the run.
pub(super) fn plot_curves(out: &Path) {
    match crate::curves::plot_run(out) {
        Ok(paths) => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            println!("curves: {}", names.join(", "));
        }
        Err(e) => eprintln!(
            "warning: could not draw the training curves in {}: {e:#}",
            out.display()
        ),
    }
}
