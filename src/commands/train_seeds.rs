//! `train --seeds 1,2,3`: one network per seed, each in `OUT/seed-<seed>`, a run directory like any
//! other (resume one with `train --resume OUT/seed-<seed>`). On the GPU the networks are a
//! population (`gpu::population`): trained in the same dispatches, each through its own training
//! loop on a thread of its own, each ending exactly where it would have alone. On the CPU they run
//! one after another.

use super::config_file::Applied;
use super::train::{check_fits_data, invocation, plot_curves, run_log, train_with, TrainArgs};
use super::{interrupt_flag, open_gpu, shell_word, uses_gpu};
use crate::checkpoint::Progress;
use crate::data;
use crate::gpu::population::Population;
use crate::gpu::GpuOptions;
use crate::model::{Params, TrainState};
use crate::run_dir::prepare_out_dir;
use crate::train::{self, Outcome, RunOptions};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// The directory of seed `seed`'s run under `out`.
pub fn seed_dir(out: &std::path::Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

pub fn train_seeds(args: &TrainArgs, seeds: &[u64], applied: &Applied) -> Result<i32> {
    if seeds.is_empty() {
        bail!("--seeds: give at least one seed");
    }
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        bail!("--seeds: seed {} is given twice", w[0]);
    }
    let (model, cfg) = args.overrides().configs()?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "{}-{}-seeds",
            cfg.mode,
            if model.is_spatial() { "spatial" } else { "regular" }
        ))
    });
    let one = |seed: u64| TrainArgs {
        seeds: None,
        seed: Some(seed),
        out: Some(seed_dir(&out, seed)),
        tensorboard: args.tensorboard.as_ref().map(|d| seed_dir(d, seed)),
        ..args.clone()
    };
    if !uses_gpu(args.backend, args.adapter.as_deref()) {
        // The CPU backend: one run after another (each is `train --seed N --out OUT/seed-N`).
        for (i, &seed) in seeds.iter().enumerate() {
            println!("seed {seed} ({} of {}):", i + 1, seeds.len());
            let code = train_with(&one(seed), applied)?;
            if code != 0 {
                return Ok(code);
            }
        }
        return Ok(0);
    }

    // The GPU: a population.
    let names = args.data.task_names(args.tasks.tasks.as_deref())?;
    let data = args.data.load(&names)?;
    let (model, cfg) = args.overrides().configs_for(&data.shape())?;
    check_fits_data(&model, &cfg, &data, args)?;
    let dirs: Vec<PathBuf> = seeds.iter().map(|&s| seed_dir(&out, s)).collect();
    let _locks = dirs
        .iter()
        .map(|d| prepare_out_dir(d))
        .collect::<Result<Vec<_>>>()?;
    let trains: Vec<_> = seeds
        .iter()
        .map(|&seed| crate::config::TrainConfig { seed, ..cfg.clone() })
        .collect();
    let states = trains
        .iter()
        .map(|t| TrainState::new(Params::init(&model, t.seed)))
        .collect();
    let ctx = open_gpu(args.adapter.as_deref())?;
    let stop = interrupt_flag("saving every network's checkpoint at the next chunk boundary");
    let opts = GpuOptions {
        steps_per_submit: args.steps_per_submit,
        ..GpuOptions::default()
    };
    let t0 = std::time::Instant::now();
    let models = vec![model.clone(); trains.len()];
    let pop = Population::new(ctx, models, trains.clone(), states, opts, Some(stop))?;
    eprintln!("tuned in {:.1} s", t0.elapsed().as_secs_f64());
    let data_dir = data::resolve_data_dir(args.data.data_dir.as_deref());
    println!(
        "training {} {} {} networks (seeds {}) as one population on {}, sizes {:?}, alpha {}, beta {}, \
         {} epoch{}, up to {} steps per submit; saved in {}/seed-<seed>",
        seeds.len(),
        cfg.mode,
        if model.is_spatial() { "spatial" } else { "regular" },
        seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        pop.name(),
        model.sizes,
        model.alpha,
        model.beta,
        cfg.epochs,
        if cfg.epochs == 1 { "" } else { "s" },
        args.steps_per_submit,
        out.display()
    );
    let members = (0..pop.len())
        .map(|k| pop.member(k))
        .collect::<Result<Vec<_>>>()?;
    let outcomes: Vec<Result<Outcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = members
            .into_iter()
            .enumerate()
            .map(|(k, mut member)| {
                let run_args = one(seeds[k]);
                let dir = dirs[k].clone();
                let (model, train_k) = (&model, &trains[k]);
                let data = &data;
                let invocation = invocation(args, &data_dir);
                s.spawn(move || -> Result<Outcome> {
                    let opts = RunOptions {
                        out: dir.clone(),
                        progress: false,
                        verbose: false,
                        checkpoint_every: run_args.checkpoint_every,
                        stop: Some(member.stop_flag()),
                        invocation,
                    };
                    let mut log = run_log(&run_args, model, train_k, &dir, Progress::default())?;
                    // The member leaves the population when this thread ends, so that a failed
                    // run never holds the others up.
                    train::train_observed(&mut member, data, &opts, Progress::default(), &mut log)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the run's thread panicked")))
            })
            .collect()
    });
    let mut code = 0;
    for ((seed, dir), outcome) in seeds.iter().zip(&dirs).zip(outcomes) {
        match outcome {
            Ok(Outcome::Finished(s)) => {
                if !args.no_plot {
                    plot_curves(dir);
                }
                println!(
                    "seed {seed}: full accuracy {:.4}, {:.2} s/epoch, {:.0} samples/s; saved in {}",
                    s.full_accuracy,
                    s.seconds_per_epoch,
                    s.samples_per_second,
                    dir.display()
                );
            }
            Ok(Outcome::Interrupted(p)) => {
                eprintln!(
                    "seed {seed}: interrupted, checkpoint {} {}; resume with: spatial-gpu train --resume {}",
                    train::checkpoint_path(dir).display(),
                    train::describe_progress(p),
                    shell_word(dir)
                );
                code = code.max(130);
            }
            Err(e) => {
                eprintln!("seed {seed}: FAILED: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}
