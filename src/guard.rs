//! The divergence guard: finds NaNs and infinities in losses, gradients, parameters and Adam's
//! moments, and names where they are. Both the CPU backend (every step) and the training loop (each
//! epoch and before every save) use it, so it lives beside them rather than in either.

use crate::backend::Losses;
use crate::config::ModelConfig;
use crate::model::{Layout, TrainState};

/// Training produced a NaN or an infinity: at which step, in which layer, in which quantity.
///
/// The CPU backend checks its losses, gradients, parameters and moments after every step and reports
/// the exact step; other backends are checked at the end of each epoch and before every save (the
/// state read back), which gives a range of steps. No checkpoint is ever written from such a state.
#[derive(Clone, Debug, PartialEq)]
pub struct Diverged {
    /// The step (1-based Adam step) whose computation produced it, or the last step before the check.
    pub step: u64,
    /// For a check that runs less often than every step: the first step it may have happened at.
    pub since: Option<u64>,
    /// What is not finite, e.g. `layer 3 weight gradient`.
    pub what: String,
    /// Where in the run (epoch and batch); filled in by [`crate::train::train`].
    pub place: String,
    /// What became of the checkpoint and what to try; filled in by [`crate::train::train`].
    pub note: String,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.since {
            Some(s) if s < self.step => write!(f, "training diverged between steps {s} and {}", self.step)?,
            _ => write!(f, "training diverged at step {}", self.step)?,
        }
        if !self.place.is_empty() {
            write!(f, " ({})", self.place)?;
        }
        write!(f, ": {} is not finite{}", self.what, self.note)
    }
}

impl std::error::Error for Diverged {}

impl Diverged {
    pub fn at(step: u64, what: impl Into<String>) -> Diverged {
        Diverged {
            step,
            since: None,
            what: what.into(),
            place: String::new(),
            note: String::new(),
        }
    }
}

/// The exponent bits of an `f32`: all set for NaN and the infinities.
const EXP_BITS: u32 = 0x7f80_0000;
/// Exponent bits of 2^64: a value at least this large has a square that overflows `f32`.
const SQUARE_OVERFLOW_BITS: u32 = (64 + 127) << 23;

crate::multiversion! {
    /// True when every value's exponent bits are below `limit`: a branch-free scan, compiled per
    /// instruction set (src/simd.rs) because the CPU backend runs it over its gradient and
    /// parameters every step; the AVX-512 version takes half the baseline's time.
    fn all_below(data: &[f32], limit: u32) -> bool {
        data.chunks(1024).all(|c| {
            c.iter()
                .fold(0u32, |acc, v| acc | ((v.to_bits() & EXP_BITS >= limit) as u32))
                == 0
        })
    }
}

/// True when no value is a NaN or an infinity.
pub fn all_finite(data: &[f32]) -> bool {
    all_below(data, EXP_BITS)
}

/// The first tensor of `data` (a buffer of `layout`) with a value whose exponent bits reach `limit`,
/// named like `layer 3 weight`.
fn first_tensor_reaching(layout: &Layout, data: &[f32], limit: u32) -> Option<String> {
    if all_below(data, limit) {
        return None;
    }
    for l in 1..layout.sizes.len() {
        for (what, range) in [
            ("weight", &layout.weights[l - 1]),
            ("bias", &layout.biases[l - 1]),
        ] {
            if !all_below(&data[range.clone()], limit) {
                return Some(format!("layer {l} {what}"));
            }
        }
    }
    for (l, range) in layout.positions.iter().enumerate() {
        if !all_below(&data[range.clone()], limit) {
            return Some(format!("layer {l} position"));
        }
    }
    None
}

/// The first tensor of `data` (a buffer of `layout`) that holds a NaN or an infinity, named like
/// `layer 3 weight`; `None` if all are finite.
pub fn non_finite_tensor(layout: &Layout, data: &[f32]) -> Option<String> {
    first_tensor_reaching(layout, data, EXP_BITS)
}

/// What in a gradient would make Adam's step non-finite: a NaN or an infinity (`layer 3 weight
/// gradient`), or a value of 2^64 or more, whose square overflows Adam's second moment (`layer 3
/// weight gradient's square (Adam's second moment)`). One scan; `None` if the gradient is safe.
pub fn bad_gradient(layout: &Layout, grads: &[f32]) -> Option<String> {
    let t = first_tensor_reaching(layout, grads, SQUARE_OVERFLOW_BITS)?;
    Some(match non_finite_tensor(layout, grads) {
        Some(t) => format!("{t} gradient"),
        None => format!("{t} gradient's square (Adam's second moment)"),
    })
}

/// The terms of `losses` that are not finite, named with their layer (empty if all are finite).
pub fn non_finite_losses(model: &ModelConfig, losses: &Losses) -> Vec<String> {
    let mut what = Vec::new();
    if !losses.task.is_finite() {
        what.push(format!(
            "the task loss (cross-entropy of output layer {})",
            model.num_layers()
        ));
    }
    for (k, &l) in model.spatial_layers.iter().enumerate() {
        if losses.transport.get(k).is_some_and(|v| !v.is_finite()) {
            what.push(format!("the transport cost T({l}) of layer {l}"));
        }
        if losses.density.get(k).is_some_and(|v| !v.is_finite()) {
            what.push(format!("the density cost V({l}) of layer {l}"));
        }
    }
    if what.is_empty() && !losses.is_finite() {
        what.push("the total loss".into());
    }
    what
}

/// Joins the names of several non-finite quantities: the first, then the others in parentheses.
pub fn describe_non_finite(what: &[String]) -> String {
    match what {
        [] => String::new(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {})", rest.join(", ")),
    }
}

/// The first tensor of a state holding a NaN or an infinity: parameters, then Adam's moments.
pub fn non_finite_state(state: &TrainState) -> Option<String> {
    let layout = &state.params.layout;
    if let Some(t) = non_finite_tensor(layout, &state.params.data) {
        return Some(t);
    }
    if let Some(t) = non_finite_tensor(layout, &state.adam_m) {
        return Some(format!("Adam's first moment of {t}"));
    }
    non_finite_tensor(layout, &state.adam_v).map(|t| format!("Adam's second moment of {t}"))
}
