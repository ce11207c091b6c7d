//! Multi-head softmax cross-entropy, forward and backward fused.
//!
//! `logits` is `(B, W)`: head `h` owns the contiguous block `offsets[h] .. offsets[h+1]` (heads of
//! any sizes; `ops::softmax_xent`). `labels` is `(B, H)`,
//! `labels[r·H + h]` the class of example `r` for head `h`, or a negative value when the example has
//! no label for that head (its loss and gradient are then zero: the sequential mode's mask).
//! The loss is the sum of the labelled heads' cross-entropies, averaged over the `B` examples.

use crate::ops::softmax_xent::inv_batch;

/// Returns the loss and writes `dlogits = dloss/dlogits` (`=`, every element).
pub fn softmax_xent_forward_backward(
    dlogits: &mut [f32],
    logits: &[f32],
    labels: &[i32],
    b: usize,
    offsets: &[usize],
) -> f64 {
    let heads = offsets.len() - 1;
    let width = offsets[heads];
    let inv_b = inv_batch(b);
    let mut loss = 0.0f64;
    for r in 0..b {
        for h in 0..heads {
            let (start, classes) = (offsets[h], offsets[h + 1] - offsets[h]);
            let z = &logits[r * width + start..][..classes];
            let dz = &mut dlogits[r * width + start..][..classes];
            let label = labels[r * heads + h];
            if label < 0 {
                dz.fill(0.0);
                continue;
            }
            // Subtract the max so exp never overflows; each exponential is computed once, kept
            // in `dz` until it becomes the probability.
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for (d, &v) in dz.iter_mut().zip(z) {
                *d = (v - max).exp();
                sum += *d;
            }
            let log_sum = sum.ln();
            loss += (log_sum - (z[label as usize] - max)) as f64;
            for (k, d) in dz.iter_mut().enumerate() {
                let p = *d / sum;
                *d = (p - if k == label as usize { 1.0 } else { 0.0 }) * inv_b;
            }
        }
    }
    loss / b as f64
}
