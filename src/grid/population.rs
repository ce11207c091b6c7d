//! A grid on the GPU trains the runs that differ only in what the networks of a population may
//! differ in (seed, initialisation, learning rate, alpha, beta, both norms, epochs, and the mixed
//! against the sequential input: the seeds of a cell, and the cells that differ in those, such as
//! Table 1's regular and spatial networks of the mixed and the sequential input) as one population
//! (`gpu::population`): one engine, the same dispatches, each run through its own training loop,
//! split and record on a thread of its own, exactly as `execute` does alone (the population hands
//! each run its member instead of a backend of its own). The runs of a group may start anywhere
//! (new, or resumed at any step: each network has its own step); a run that is the only one of its
//! kind, or is finished, goes to the grid's pool.

use super::runner::{catch_run, execute, run_state, GridContext, RunError, RunState, TestSets};
use super::{RunRecord, RunSpec};
use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, Progress};
use crate::config::{ModelConfig, TrainConfig};
use crate::model::{Params, TrainState};
use anyhow::anyhow;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// What must be equal for two runs to share a population (`gpu::hyper::population_key`).
fn group_key(spec: &RunSpec) -> String {
    let key = crate::gpu::hyper::population_key(&spec.model, &spec.train);
    serde_json::to_string(&key).unwrap_or_default()
}

/// Where run `spec` starts, if it can join a population, and its checkpoint when it resumes
/// (`None`: a new run): `None` for a run that is finished (or only needs its split), or whose
/// directory cannot be read (it runs alone and reports why).
fn start_of(spec: &RunSpec, ctx: &GridContext) -> Option<(Progress, Option<Box<Checkpoint>>)> {
    let dir = ctx.out.join(&spec.name);
    match run_state(&dir, spec, ctx.split).ok()? {
        RunState::Fresh => Some((Progress::default(), None)),
        RunState::Resume(ck) if ck.progress.epoch < spec.train.epochs => Some((ck.progress, Some(ck))),
        _ => None,
    }
}

/// Training steps run `spec` has left from `at`: a mixed epoch has half the batches of a sequential
/// one, so in a population of both the mixed runs finish first.
fn steps_left(spec: &RunSpec, at: Progress, ctx: &GridContext) -> usize {
    let order = crate::data::batches::epoch_order(spec.train.mode, ctx.data, spec.train.seed, 0);
    let per_epoch = order.num_batches(spec.train.batch_size.max(1));
    (spec.train.epochs * per_epoch).saturating_sub(at.epoch * per_epoch + at.batch)
}

/// The state run `spec` starts from: its checkpoint's, or a new network's.
fn starting_state(spec: &RunSpec, ck: Option<Box<Checkpoint>>) -> TrainState {
    ck.map_or_else(
        || TrainState::new(Params::init(&spec.model, spec.train.seed)),
        |ck| ck.state,
    )
}

/// Trains every group of two or more runs that may share a population, a population at a time,
/// reporting each run through `report`; returns the runs it took.
pub(super) fn run_populations(
    specs: &[RunSpec],
    ctx: &GridContext,
    tests: &TestSets,
    report: &(dyn Fn(usize, Result<(RunRecord, bool), RunError>) + Sync),
) -> HashSet<usize> {
    let mut taken = HashSet::new();
    let Some(factory) = ctx.population else {
        return taken;
    };
    if ctx.tabulate_only {
        return taken;
    }
    // Groups by what must be equal, each group's runs in grid order. (Only whether each run has
    // training left is looked at here: a group's states are read when it trains, so that a large
    // grid does not hold every run's state at once.)
    let mut groups: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        if let Some((at, _)) = start_of(spec, ctx) {
            let left = steps_left(spec, at, ctx);
            groups.entry(group_key(spec)).or_default().push((i, left));
        }
    }
    for mut group in groups.into_values().filter(|g| g.len() > 1) {
        // The runs with the most steps left first (stable: grid order among equals), so that the
        // networks that finish early are the trailing ones, which a step leaves out of its
        // dispatches once they sit out (`gpu::kernel::Launch::networks`).
        group.sort_by_key(|&(_, left)| std::cmp::Reverse(left));
        let members: Vec<usize> = group.into_iter().map(|(i, _)| i).collect();
        if ctx.stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let states: Option<Vec<TrainState>> = members
            .iter()
            .map(|&i| start_of(&specs[i], ctx).map(|(_, ck)| starting_state(&specs[i], ck)))
            .collect();
        let Some(states) = states else {
            continue;
        };
        let models: Vec<ModelConfig> = members.iter().map(|&i| specs[i].model.clone()).collect();
        let trains: Vec<TrainConfig> = members.iter().map(|&i| specs[i].train.clone()).collect();
        let names: Vec<&str> = members.iter().map(|&i| specs[i].name.as_str()).collect();
        let pop = match factory(models, trains, states, ctx.stop.clone()) {
            Ok(pop) => pop,
            Err(e) => {
                // Not a failure of the runs (a population of many networks may not fit a device
                // that holds each one): they train one by one in the grid's pool, which reports
                // any error of their own.
                println!(
                    "could not train {} runs as one population ({e:#}): they train one by one: {}",
                    members.len(),
                    names.join(", ")
                );
                continue;
            }
        };
        taken.extend(members.iter().copied());
        println!(
            "training {} runs as one population: {}",
            members.len(),
            names.join(", ")
        );
        std::thread::scope(|s| {
            for (k, &i) in members.iter().enumerate() {
                let member = pop.member(k);
                s.spawn(move || {
                    let result = match member {
                        Ok(member) => run_member(&specs[i], member, ctx, tests),
                        Err(e) => Err(RunError::Failed(e)),
                    };
                    report(i, result);
                });
            }
        });
    }
    taken
}

/// `execute` for one run of a population: its backend is the population's member.
fn run_member(
    spec: &RunSpec,
    member: crate::gpu::population::Member,
    ctx: &GridContext,
    tests: &TestSets,
) -> Result<(RunRecord, bool), RunError> {
    let stop = member.stop_flag();
    let slot = Arc::new(Mutex::new(Some(member)));
    let (held, name) = (slot.clone(), spec.name.clone());
    let hand_out = move |_: ModelConfig, _: TrainConfig, _: TrainState| -> anyhow::Result<Box<dyn Backend>> {
        held.lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|m| Box::new(m) as Box<dyn Backend>)
            .ok_or_else(|| anyhow!("{name}: the population's network was asked for twice"))
    };
    let own = GridContext {
        out: ctx.out.clone(),
        data: ctx.data,
        make_backend: &hand_out,
        jobs: 1,
        split: ctx.split,
        checkpoint_every: ctx.checkpoint_every,
        stop,
        verbose: false,
        tabulate_only: false,
        figure_seed: ctx.figure_seed,
        invocation: ctx.invocation.clone(),
        population: None,
    };
    let result = catch_run(|| execute(spec, &ctx.out, &own, tests));
    // A member never handed out (the run failed before training) leaves now, not at the end.
    drop(slot.lock().unwrap_or_else(|p| p.into_inner()).take());
    result
}
