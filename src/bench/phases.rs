//! Where a CPU training step's time goes: the real step of [`CpuBackend`], timed phase by phase
//! through its [`PhaseHook`].

use super::median;
use crate::backend::Backend;
use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::{CpuBackend, PhaseHook, StepPhase};
use crate::data::batches::{epoch_order, Batch};
use crate::data::Datasets;
use crate::model::{Params, TrainState};
use anyhow::Result;
use serde::Serialize;
use std::time::Instant;

/// One phase of a CPU training step and its median time.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub phase: String,
    pub micros: f64,
}

/// The reported phases, in report order.
const NAMES: [&str; 12] = [
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
const ASSEMBLY: usize = 0;
const REST: usize = 10;
const WHOLE: usize = 11;

/// Where each phase's time goes in [`NAMES`]. The divergence guard is part of "the rest", which is
/// the whole step less the named phases.
fn slot(phase: StepPhase) -> usize {
    match phase {
        StepPhase::ForwardGemm => 1,
        StepPhase::Activation => 2,
        StepPhase::SoftmaxXent => 3,
        StepPhase::ZeroGradient => 4,
        StepPhase::BackwardGemm => 5,
        StepPhase::ActivationBackward => 6,
        StepPhase::Transport => 7,
        StepPhase::Density => 8,
        StepPhase::Adam => 9,
        StepPhase::Guard => REST,
    }
}

/// Adds the time since the last phase ended to the phase that just ended.
struct PhaseClock {
    last: Instant,
    micros: [f64; NAMES.len()],
}

impl PhaseClock {
    fn lap(&mut self, slot: usize) {
        let now = Instant::now();
        self.micros[slot] += (now - self.last).as_secs_f64() * 1e6;
        self.last = now;
    }
}

impl PhaseHook for PhaseClock {
    fn phase_done(&mut self, phase: StepPhase) {
        self.lap(slot(phase));
    }
}

/// Times the phases of the CPU backend's training step (median over `steps` steps on real
/// batches, after 3 untimed ones): batch assembly, then the backend's own `train_step` with a clock
/// at every phase boundary. The last entry is the whole `train_step` (batch assembly excluded); the
/// "rest" entry is what it spends beyond the named phases (its divergence checks, the loss meter).
pub fn cpu_breakdown(
    model: &ModelConfig,
    train: &TrainConfig,
    data: &Datasets,
    steps: usize,
    threads: usize,
) -> Result<Vec<Phase>> {
    let b = train.batch_size;
    let state = TrainState::new(Params::init(model, train.seed));
    let mut backend = CpuBackend::new(model.clone(), train.clone(), state)?.with_threads(threads)?;
    let order = epoch_order(train.mode, data, train.seed, 0);
    let mut batch = Batch::with_capacity(b, data.input_dim(train.mode));
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    let nb = order.num_batches(b);
    for s in 0..steps + 3 {
        let mut clock = PhaseClock {
            last: Instant::now(),
            micros: [0.0; NAMES.len()],
        };
        order.fill_batch(data, train.mode, s % nb, b, &mut batch);
        clock.lap(ASSEMBLY);
        let start = clock.last;
        backend.train_step_hooked(&batch, &mut clock)?;
        let mut acc = clock.micros;
        acc[WHOLE] = start.elapsed().as_secs_f64() * 1e6;
        acc[REST] = (acc[WHOLE] - acc[1..REST].iter().sum::<f64>()).max(0.0);
        if s >= 3 {
            for (v, a) in t.iter_mut().zip(acc) {
                v.push(a);
            }
        }
    }
    backend.take_losses()?;
    Ok(NAMES
        .iter()
        .zip(&t)
        .map(|(n, v)| Phase {
            phase: n.to_string(),
            micros: median(v),
        })
        .collect())
}

/// Prints [`cpu_breakdown`]'s phases with their shares of the step.
pub fn print_breakdown(phases: &[Phase], b: usize) {
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
