//! Transport cost of one layer, forward and backward fused.
//!
//! `T(l) = c · Σ_{j,i} φ(W[j,i]) · ‖p_{l-1}(i) − p_l(j)‖` with `c = 1/N_l` (`paper`) or
//! `1/(N_{l-1}·N_l)` (`mean`), and `φ(w) = |w|` (`l1`) or `w²` (`l2`).
//! `weight` is `(OC, C)`, `p_in` is `(C, 2)` (layer `l-1`), `p_out` is `(OC, 2)` (layer `l`).
//!
//! Gradients (`+=`, scaled by `coeff`, the weight of `T` in the total loss):
//! - `dW[j,i]    += coeff · c · φ'(W[j,i]) · d_ji`, with `φ' = sign(w)` (0 at 0) or `2w`;
//! - `dp_out(j)  += coeff · c · Σ_i φ(W[j,i]) · (p_out(j) − p_in(i)) / d_ji`;
//! - `dp_in(i)   −= coeff · c · Σ_j φ(W[j,i]) · (p_out(j) − p_in(i)) / d_ji`;
//!
//! where a zero distance contributes no position gradient (METHOD.md).

use crate::config::{TransportNorm, WeightNorm};

/// The normalising constant `c` of `T(l)`.
pub fn transport_scale(norm: TransportNorm, c: usize, oc: usize) -> f32 {
    match norm {
        TransportNorm::Paper => 1.0 / oc as f32,
        TransportNorm::Mean => 1.0 / (c as f32 * oc as f32),
    }
}

/// Returns `T(l)` and accumulates `coeff · ∂T/∂·` into `dweight`, `dp_in`, `dp_out`.
#[allow(clippy::too_many_arguments)]
pub fn transport_forward_backward(
    dweight: &mut [f32],
    dp_in: &mut [f32],
    dp_out: &mut [f32],
    weight: &[f32],
    p_in: &[f32],
    p_out: &[f32],
    c: usize,
    oc: usize,
    norm: TransportNorm,
    weight_norm: WeightNorm,
    coeff: f32,
) -> f64 {
    let scale = transport_scale(norm, c, oc);
    let g = coeff * scale;
    let mut total = 0.0f64;
    for j in 0..oc {
        let (xj, yj) = (p_out[2 * j], p_out[2 * j + 1]);
        let (mut gxj, mut gyj) = (0.0f32, 0.0f32);
        let mut row_sum = 0.0f32;
        for i in 0..c {
            let w = weight[j * c + i];
            let (dx, dy) = (xj - p_in[2 * i], yj - p_in[2 * i + 1]);
            let d = (dx * dx + dy * dy).sqrt();
            let (phi, dphi) = match weight_norm {
                WeightNorm::L1 => (w.abs(), if w > 0.0 { 1.0 } else if w < 0.0 { -1.0 } else { 0.0 }),
                WeightNorm::L2 => (w * w, 2.0 * w),
            };
            row_sum += phi * d;
            dweight[j * c + i] += g * dphi * d;
            if d > 0.0 {
                let (ux, uy) = (g * phi * dx / d, g * phi * dy / d);
                gxj += ux;
                gyj += uy;
                dp_in[2 * i] -= ux;
                dp_in[2 * i + 1] -= uy;
            }
        }
        total += row_sum as f64;
        dp_out[2 * j] += gxj;
        dp_out[2 * j + 1] += gyj;
    }
    total * scale as f64
}
