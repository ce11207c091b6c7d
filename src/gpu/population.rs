//! Populations: several networks of one shape trained by one [`GpuBackend`] in the same
//! dispatches, each seen by the training loop as a [`Backend`] of its own ([`Member`]), so that
//! each run keeps its own loop, metrics, checkpoints and summary, in a run directory identical in
//! format to a single run's. The networks may differ in seed, initialisation, learning rate, alpha,
//! beta and both norms (each network's own values sit in its record of `hyper`, `gpu/hyper.rs`),
//! in epochs, in where they start, and in input mode where the width is the same (mixed and
//! sequential); they share shape, tasks, batch size and Adam's betas.
//!
//! The members run their training loops on threads of their own, in rounds: a member's
//! `train_batches` waits until every member still training has asked for its next batches, and the
//! last one to ask records them all at once: each network its own batches of its own epoch, as
//! many steps as the longest request, a network with fewer sitting out the rest (the step table,
//! `gpu/step_table.rs`). So a mixed network, whose epoch is 235 batches, runs through its epochs
//! beside a sequential one's 469, each on its own schedule. Ctrl-C is turned into every member's
//! own stop flag at a round, so all stop after the same round, each at its own point. Evaluation,
//! state and losses are each member's own (under the lock).

use super::{GpuBackend, GpuContext, GpuOptions};
use crate::backend::{Backend, Losses};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::batches::{Batch, EpochOrder};
use crate::data::Datasets;
use crate::model::{NeuronMask, TrainState};
use anyhow::{anyhow, bail, Result};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What the members share: the engine and the round of chunk requests.
struct Shared {
    engine: GpuBackend,
    /// Whether member `k` still trains (a member that finished or failed leaves), and whether
    /// its [`Member`] was handed out (once only: dropping it is leaving).
    active: Vec<bool>,
    taken: Vec<bool>,
    /// The requests of this round: each member's epoch order and batches (the batches may differ).
    asked: Vec<Option<(EpochOrder, Range<usize>)>>,
    /// Rounds done, and the outcome of the last one.
    round: u64,
    outcome: Result<(), String>,
}

/// A population on one device (see the module documentation).
pub struct Population {
    shared: Mutex<Shared>,
    turn: Condvar,
    /// Set by Ctrl-C; copied into every member's stop flag at a round.
    stop: Option<Arc<AtomicBool>>,
    stops: Vec<Arc<AtomicBool>>,
    /// The configurations of each member.
    trains: Vec<TrainConfig>,
    models: Vec<ModelConfig>,
}

impl Population {
    /// The population whose member `k` is a network of `models[k]` trained with `trains[k]` from
    /// `states[k]` (each at its own step; what may differ: [`super::hyper::check_population`]).
    /// `stop` is the flag Ctrl-C sets.
    pub fn new(
        ctx: Arc<GpuContext>,
        models: Vec<ModelConfig>,
        trains: Vec<TrainConfig>,
        states: Vec<TrainState>,
        opts: GpuOptions,
        stop: Option<Arc<AtomicBool>>,
    ) -> Result<Arc<Population>> {
        let engine = GpuBackend::build(ctx, models.clone(), trains.clone(), states, opts)?;
        let n = trains.len();
        Ok(Arc::new(Population {
            shared: Mutex::new(Shared {
                engine,
                active: vec![true; n],
                taken: vec![false; n],
                asked: vec![None; n],
                round: 0,
                outcome: Ok(()),
            }),
            turn: Condvar::new(),
            stop,
            stops: (0..n).map(|_| Arc::new(AtomicBool::new(false))).collect(),
            trains,
            models,
        }))
    }

    /// Networks in the population.
    pub fn len(&self) -> usize {
        self.trains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trains.is_empty()
    }

    /// Member `k`'s view, a [`Backend`], handed out once (dropping it leaves the population); its
    /// training loop must use [`Member::stop_flag`] as its stop flag.
    pub fn member(self: &Arc<Self>, k: usize) -> Result<Member> {
        let mut sh = self.lock();
        if k >= self.trains.len() || sh.taken[k] {
            bail!("network {k} of a population of {} is not free", self.trains.len());
        }
        sh.taken[k] = true;
        Ok(Member {
            pop: self.clone(),
            k,
            train: self.trains[k].clone(),
        })
    }

    /// Evaluation passes run on the device's test set ([`GpuBackend::evaluation_passes`]): the
    /// members' evaluations without a mask at the same step share one.
    pub fn evaluation_passes(&self) -> u64 {
        self.lock().engine.evaluation_passes()
    }

    /// The engine's name (`gpu (adapter)`).
    pub fn name(&self) -> String {
        self.lock().engine.name()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the round once every active member has asked: one chunk for all. `data` is `None` when
    /// the last asker is a member leaving (the sets are on the device by then, or the round fails).
    fn run_round(&self, sh: &mut Shared, data: Option<&Datasets>) {
        let outcome = (|| -> Result<()> {
            if sh.asked.iter().all(|a| a.is_none()) {
                bail!("a round with no request");
            }
            // A member that asked nothing (it left: its run is over) sits the round out.
            let orders: Vec<Option<&EpochOrder>> =
                sh.asked.iter().map(|a| a.as_ref().map(|(o, _)| o)).collect();
            let ranges: Vec<Range<usize>> = sh
                .asked
                .iter()
                .map(|a| a.as_ref().map_or(0..0, |(_, r)| r.clone()))
                .collect();
            let data = match data {
                Some(d) => d,
                None if sh.engine.device_data_status() == Ok(true) => {
                    return sh.engine.train_resident(&orders, &ranges);
                }
                None => bail!("a member of the population left before the training sets were on the device"),
            };
            if !sh.engine.train_orders(data, &orders, &ranges)? {
                bail!(
                    "a population needs the training sets on the device: {}",
                    sh.engine.device_data_status().err().unwrap_or_default()
                );
            }
            Ok(())
        })();
        sh.outcome = outcome.map_err(|e| format!("{e:#}"));
        if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            for s in &self.stops {
                s.store(true, Ordering::SeqCst);
            }
        }
        sh.asked.iter_mut().for_each(|a| *a = None);
        sh.round += 1;
        self.turn.notify_all();
    }
}

/// One network of a [`Population`], as a [`Backend`].
pub struct Member {
    pop: Arc<Population>,
    k: usize,
    train: TrainConfig,
}

impl Member {
    /// The stop flag the member's training loop must watch: set for every member at once.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.pop.stops[self.k].clone()
    }

    /// The member's number in the population.
    pub fn index(&self) -> usize {
        self.k
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut sh = self.pop.lock();
        sh.active[self.k] = false;
        sh.asked[self.k] = None;
        let waiting = sh.asked.iter().flatten().count();
        let active = sh.active.iter().filter(|a| **a).count();
        if waiting > 0 && waiting == active {
            self.pop.run_round(&mut sh, None);
        }
    }
}

impl Backend for Member {
    fn name(&self) -> String {
        self.pop.lock().engine.name()
    }
    fn model_config(&self) -> &ModelConfig {
        &self.pop.models[self.k]
    }
    fn train_config(&self) -> &TrainConfig {
        &self.train
    }
    fn steps(&self) -> u64 {
        self.pop.lock().engine.steps_of(self.k)
    }
    fn train_step(&mut self, _batch: &Batch) -> Result<()> {
        bail!("a network of a population trains on batches gathered on the device (train_batches)")
    }
    fn take_losses(&mut self) -> Result<Option<Losses>> {
        self.pop.lock().engine.take_losses_of(self.k)
    }
    fn logits(&mut self, inputs: &[f32], count: usize, keep: Option<&NeuronMask>) -> Result<Vec<f32>> {
        self.pop.lock().engine.logits_of(self.k, inputs, count, keep)
    }
    fn count_correct(
        &mut self,
        test: &crate::data::batches::TestSet,
        keep: Option<&NeuronMask>,
    ) -> Result<Vec<(u64, u64)>> {
        self.pop.lock().engine.count_correct_of(self.k, test, keep)
    }
    fn state(&mut self) -> Result<TrainState> {
        self.pop.lock().engine.state_of(self.k)
    }
    fn set_state(&mut self, state: &TrainState) -> Result<()> {
        self.pop.lock().engine.set_state_of(self.k, state)
    }
    fn synchronize(&mut self) -> Result<()> {
        self.pop.lock().engine.synchronize()
    }
    fn steps_per_submit(&self) -> usize {
        self.pop.lock().engine.steps_per_submit()
    }
    fn train_batches(
        &mut self,
        data: &Datasets,
        order: &EpochOrder,
        batches: Range<usize>,
        _scratch: &mut Batch,
    ) -> Result<()> {
        let pop = &self.pop;
        let mut sh = pop.lock();
        if !sh.active[self.k] {
            bail!("network {} has left its population", self.k);
        }
        sh.asked[self.k] = Some((order.clone(), batches));
        let round = sh.round;
        let waiting = sh.asked.iter().flatten().count();
        let active = sh.active.iter().filter(|a| **a).count();
        if waiting == active {
            pop.run_round(&mut sh, Some(data));
        } else {
            while sh.round == round {
                sh = pop.turn.wait(sh).unwrap_or_else(|p| p.into_inner());
            }
        }
        sh.outcome.clone().map_err(|e| anyhow!("{e}"))
    }
}
