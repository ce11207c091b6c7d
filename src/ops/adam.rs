//! Adam, as `torch.optim.Adam` computes it (no weight decay, no amsgrad), over one flat buffer.
//!
//! With `t` the step number counted from 1:
//! `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//! `p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)`.

use super::{expect_len, OpError};
use crate::config::TrainConfig;

/// Hyper-parameters of one Adam step; `step` is `t`, counted from 1.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub step: u64,
}

impl AdamStep {
    /// Step `step` with the optimiser settings of `train`.
    pub fn of(train: &TrainConfig, step: u64) -> AdamStep {
        AdamStep {
            lr: train.lr,
            beta1: train.beta1,
            beta2: train.beta2,
            eps: train.eps,
            step,
        }
    }

    /// The bias corrections `1 − β1^t` and `1 − β2^t`, computed in f64 so that they are exact to f32
    /// precision for any `t` (the GPU receives them precomputed, the same numbers).
    pub fn corrections(&self) -> (f32, f32) {
        let t = self.step as i32;
        (
            (1.0 - (self.beta1 as f64).powi(t)) as f32,
            (1.0 - (self.beta2 as f64).powi(t)) as f32,
        )
    }
}

/// Parameters, gradients and both moments must have the same length.
pub fn check(params: usize, grads: usize, m: usize, v: usize) -> Result<(), OpError> {
    expect_len("adam", "the gradient", grads, params)?;
    expect_len("adam", "the first moment", m, params)?;
    expect_len("adam", "the second moment", v, params)
}
