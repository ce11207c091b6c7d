//! Density cost of one layer: `V(l) = (1/N²) Σ_{j,k} exp(−‖p(j) − p(k)‖)` over all ordered pairs,
//! self-pairs included; `p` is `(N, 2)`.

use super::{expect_at_least, OpError};

/// `1/N²`, the normalising constant of `V(l)` (f32, the same number on both backends).
pub fn density_scale(n: usize) -> f32 {
    1.0 / (n as f32 * n as f32)
}

/// The positions of `n` neurons at `p_off` must lie inside the parameter buffer.
pub fn check(n: usize, p_off: usize, params: usize) -> Result<(), OpError> {
    expect_at_least("density", "the parameter buffer", params, p_off + 2 * n)
}
