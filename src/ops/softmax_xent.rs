//! Multi-head softmax cross-entropy, forward and backward fused.
//!
//! `logits` is `(B, H·K)`: head `h` owns the contiguous block `h·K .. (h+1)·K`. `labels` is `(B, H)`,
//! `labels[r·H + h]` the class of example `r` for head `h`, or a negative value when the example has
//! no label for that head (its loss and gradient are then zero: the sequential mode's mask).
//! The loss is the sum of the labelled heads' cross-entropies, averaged over the `B` examples, and
//! `dlogits = (softmax − onehot) / B`.

use super::{expect_len, OpError};

/// The shape of the loss on a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxXentShape {
    pub batch: usize,
    pub heads: usize,
    pub classes: usize,
}

impl SoftmaxXentShape {
    /// Logits per example.
    pub fn width(&self) -> usize {
        self.heads * self.classes
    }

    /// Logits and labels must have the shape's sizes, and every label must be a class or negative.
    pub fn check(&self, logits: usize, labels: &[i32]) -> Result<(), OpError> {
        expect_len("softmax_xent", "the logits", logits, self.batch * self.width())?;
        expect_len(
            "softmax_xent",
            "the labels",
            labels.len(),
            self.batch * self.heads,
        )?;
        match labels.iter().position(|&l| l >= self.classes as i32) {
            Some(i) => Err(OpError::new(
                "softmax_xent",
                format!(
                    "label {} (example {}, head {}) is not one of the {} classes",
                    labels[i],
                    i / self.heads.max(1),
                    i % self.heads.max(1),
                    self.classes
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
