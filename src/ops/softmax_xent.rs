//! Multi-head softmax cross-entropy, forward and backward fused, with heads of any sizes.
//!
//! `logits` is `(B, W)`: head `h` owns the contiguous block `offsets[h] .. offsets[h+1]` (its task's
//! classes; `offsets` has `H + 1` entries, `offsets[0] = 0`, `offsets[H] = W`). `labels` is
//! `(B, H)`, `labels[r·H + h]` the class of example `r` for head `h` (in `0..offsets[h+1] -
//! offsets[h]`), or a negative value when the example has no label for that head (its loss and
//! gradient are then zero: the sequential mode's mask). The loss is the sum of the labelled heads'
//! cross-entropies, averaged over the `B` examples, and `dlogits = (softmax − onehot) / B`.

use super::{expect_len, OpError};

/// The shape of the loss on a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxXentShape<'a> {
    pub batch: usize,
    /// Where each head starts, and the width last (`ModelConfig::head_offsets`).
    pub offsets: &'a [usize],
}

impl SoftmaxXentShape<'_> {
    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Logits per example.
    pub fn width(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// Classes of head `h`.
    pub fn classes(&self, h: usize) -> usize {
        self.offsets[h + 1] - self.offsets[h]
    }

    /// The offsets must start at 0 and grow (every head has a class); logits and labels must have
    /// the shape's sizes, and every label must be one of its head's classes or negative.
    pub fn check(&self, logits: usize, labels: &[i32]) -> Result<(), OpError> {
        if self.offsets.first() != Some(&0) || self.offsets.windows(2).any(|w| w[1] <= w[0]) {
            return Err(OpError::new(
                "softmax_xent",
                format!(
                    "head offsets {:?} must start at 0 and increase (every head needs a class)",
                    self.offsets
                ),
            ));
        }
        let heads = self.heads();
        expect_len("softmax_xent", "the logits", logits, self.batch * self.width())?;
        expect_len("softmax_xent", "the labels", labels.len(), self.batch * heads)?;
        match labels
            .iter()
            .enumerate()
            .position(|(i, &l)| l >= self.classes(i % heads) as i32)
        {
            Some(i) => Err(OpError::new(
                "softmax_xent",
                format!(
                    "label {} (example {}, head {}) is not one of the {} classes",
                    labels[i],
                    i / heads,
                    i % heads,
                    self.classes(i % heads)
                ),
            )),
            None => Ok(()),
        }
    }
}

/// `1/B`: the mean over the batch, applied to the gradient and to the summed loss.
pub fn inv_batch(batch: usize) -> f32 {
    1.0 / batch as f32
}
