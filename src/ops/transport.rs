//! Transport cost of one layer: `T(l) = c · Σ_{j,i} φ(W[j,i]) · ‖p_{l-1}(i) − p_l(j)‖` with
//! `c = 1/N_l` (`paper`) or `1/(N_{l-1}·N_l)` (`mean`), and `φ(w) = |w|` (`l1`) or `w²` (`l2`).
//! `weight` is `(OC, C)`, `p_in` is `(C, 2)` (layer `l-1`), `p_out` is `(OC, 2)` (layer `l`).

use super::{expect_len, OpError};
use crate::config::TransportNorm;

/// The normalising constant `c` of `T(l)`.
pub fn transport_scale(norm: TransportNorm, c: usize, oc: usize) -> f32 {
    match norm {
        TransportNorm::Paper => 1.0 / oc as f32,
        TransportNorm::Mean => 1.0 / (c as f32 * oc as f32),
    }
}

/// The weight and both position tensors must have the layer's sizes.
pub fn check(c: usize, oc: usize, weight: usize, p_in: usize, p_out: usize) -> Result<(), OpError> {
    expect_len("transport", "the weight", weight, oc * c)?;
    expect_len("transport", "the input positions", p_in, 2 * c)?;
    expect_len("transport", "the output positions", p_out, 2 * oc)
}
