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
use crate::simd::{sum_lanes, LANES};

pub use crate::ops::transport::transport_scale;

/// `φ(w)` and `φ'(w)` (`sign(w)`, 0 at 0, for `l1`; `2w` for `l2`).
#[inline(always)]
fn phi(w: f32, l1: bool) -> (f32, f32) {
    if l1 {
        (
            w.abs(),
            if w > 0.0 {
                1.0
            } else if w < 0.0 {
                -1.0
            } else {
                0.0
            },
        )
    } else {
        (w * w, 2.0 * w)
    }
}

/// One connection `(j, i)`: returns `φ(w)·d` (its term of `T/c`) and the position gradient
/// `(ux, uy)`, the contribution to `dp_out(j)` (and, negated, to `dp_in(i)`); adds to `dw`.
#[inline(always)]
fn connection(w: f32, dw: &mut f32, dx: f32, dy: f32, g: f32, l1: bool) -> (f32, f32, f32) {
    let d = (dx * dx + dy * dy).sqrt();
    let (phi, dphi) = phi(w, l1);
    *dw += g * dphi * d;
    // A zero distance contributes no position gradient (METHOD.md).
    let s = if d > 0.0 { g * phi / d } else { 0.0 };
    (phi * d, s * dx, s * dy)
}

crate::multiversion! {
    /// Returns `T(l)` and accumulates `coeff · ∂T/∂·` into `dweight`, `dp_in`, `dp_out`.
    ///
    /// One pass over the connections, `LANES` input neurons at a time so that the loop vectorises:
    /// the sums over a row (`T`'s row sum, `dp_out(j)`) keep `LANES` partial sums; `dweight` and
    /// `dp_in` are accumulated entry by entry in the order of the rows. With `coeff = 0` (a regular
    /// network) only the value is computed: every gradient term would be 0.
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
        let l1 = weight_norm == WeightNorm::L1;
        let (weight, dweight, p_in) = (&weight[..oc * c], &mut dweight[..oc * c], &p_in[..2 * c]);
        let dp_in = &mut dp_in[..2 * c];
        let full = c - c % LANES;
        let mut total = 0.0f64;
        for j in 0..oc {
            let (xj, yj) = (p_out[2 * j], p_out[2 * j + 1]);
            let w_row = &weight[j * c..(j + 1) * c];
            let mut acc = [0.0f32; LANES];
            if g == 0.0 {
                for (w, p) in w_row.chunks_exact(LANES).zip(p_in.chunks_exact(2 * LANES)) {
                    for l in 0..LANES {
                        let (dx, dy) = (xj - p[2 * l], yj - p[2 * l + 1]);
                        acc[l] += phi(w[l], l1).0 * (dx * dx + dy * dy).sqrt();
                    }
                }
                for i in full..c {
                    let (dx, dy) = (xj - p_in[2 * i], yj - p_in[2 * i + 1]);
                    acc[i - full] += phi(w_row[i], l1).0 * (dx * dx + dy * dy).sqrt();
                }
                total += sum_lanes(&acc) as f64;
                continue;
            }
            let dw_row = &mut dweight[j * c..(j + 1) * c];
            let (mut ax, mut ay) = ([0.0f32; LANES], [0.0f32; LANES]);
            let blocks = w_row.chunks_exact(LANES).zip(dw_row.chunks_exact_mut(LANES));
            for ((w, dw), (p, dp)) in blocks.zip(p_in.chunks_exact(2 * LANES).zip(dp_in.chunks_exact_mut(2 * LANES))) {
                for l in 0..LANES {
                    let (t, ux, uy) = connection(w[l], &mut dw[l], xj - p[2 * l], yj - p[2 * l + 1], g, l1);
                    acc[l] += t;
                    ax[l] += ux;
                    ay[l] += uy;
                    dp[2 * l] -= ux;
                    dp[2 * l + 1] -= uy;
                }
            }
            for i in full..c {
                let (dx, dy) = (xj - p_in[2 * i], yj - p_in[2 * i + 1]);
                let (t, ux, uy) = connection(w_row[i], &mut dw_row[i], dx, dy, g, l1);
                acc[i - full] += t;
                ax[i - full] += ux;
                ay[i - full] += uy;
                dp_in[2 * i] -= ux;
                dp_in[2 * i + 1] -= uy;
            }
            total += sum_lanes(&acc) as f64;
            dp_out[2 * j] += sum_lanes(&ax);
            dp_out[2 * j + 1] += sum_lanes(&ay);
        }
        total * scale as f64
    }
}

crate::multiversion! {
    /// Rows `first .. first + totals.len()` of [`transport_forward_backward`], for the threaded
    /// pass (`cpu::threads`): the same operations in the same order for each row, but each row's
    /// term of `T/c` goes to `totals` and its input-position gradient terms `(ux, uy)` to `u`
    /// (`2·C` values per row, to be subtracted by [`transport_dp_in`]) instead of into `dp_in`.
    /// `dweight` and `dp_out` hold these rows only. With `g = 0` only `totals` is written.
    pub fn transport_rows(
        totals: &mut [f64],
        u: &mut [f32],
        dweight: &mut [f32],
        dp_out: &mut [f32],
        weight: &[f32],
        p_in: &[f32],
        p_out: &[f32],
        c: usize,
        first: usize,
        g: f32,
        l1: bool,
    ) {
        let p_in = &p_in[..2 * c];
        let full = c - c % LANES;
        for (k, total) in totals.iter_mut().enumerate() {
            let j = first + k;
            let (xj, yj) = (p_out[2 * j], p_out[2 * j + 1]);
            let w_row = &weight[j * c..(j + 1) * c];
            let mut acc = [0.0f32; LANES];
            if g == 0.0 {
                for (w, p) in w_row.chunks_exact(LANES).zip(p_in.chunks_exact(2 * LANES)) {
                    for l in 0..LANES {
                        let (dx, dy) = (xj - p[2 * l], yj - p[2 * l + 1]);
                        acc[l] += phi(w[l], l1).0 * (dx * dx + dy * dy).sqrt();
                    }
                }
                for i in full..c {
                    let (dx, dy) = (xj - p_in[2 * i], yj - p_in[2 * i + 1]);
                    acc[i - full] += phi(w_row[i], l1).0 * (dx * dx + dy * dy).sqrt();
                }
                *total = sum_lanes(&acc) as f64;
                continue;
            }
            let dw_row = &mut dweight[k * c..(k + 1) * c];
            let u_row = &mut u[2 * k * c..2 * (k + 1) * c];
            let (mut ax, mut ay) = ([0.0f32; LANES], [0.0f32; LANES]);
            let blocks = w_row.chunks_exact(LANES).zip(dw_row.chunks_exact_mut(LANES));
            for ((w, dw), (p, du)) in blocks.zip(p_in.chunks_exact(2 * LANES).zip(u_row.chunks_exact_mut(2 * LANES))) {
                for l in 0..LANES {
                    let (t, ux, uy) = connection(w[l], &mut dw[l], xj - p[2 * l], yj - p[2 * l + 1], g, l1);
                    acc[l] += t;
                    ax[l] += ux;
                    ay[l] += uy;
                    du[2 * l] = ux;
                    du[2 * l + 1] = uy;
                }
            }
            for i in full..c {
                let (dx, dy) = (xj - p_in[2 * i], yj - p_in[2 * i + 1]);
                let (t, ux, uy) = connection(w_row[i], &mut dw_row[i], dx, dy, g, l1);
                acc[i - full] += t;
                ax[i - full] += ux;
                ay[i - full] += uy;
                u_row[2 * i] = ux;
                u_row[2 * i + 1] = uy;
            }
            *total = sum_lanes(&acc) as f64;
            dp_out[2 * k] += sum_lanes(&ax);
            dp_out[2 * k + 1] += sum_lanes(&ay);
        }
    }
}

/// `dp_in -= Σ_j u[j]` for the position values `first .. first + dp_in.len()` of `dp_in`, the rows `j`
/// of `u` (`2·C` values each) subtracted in order, as [`transport_forward_backward`] does.
pub fn transport_dp_in(dp_in: &mut [f32], u: &[f32], c: usize, first: usize) {
    let n = dp_in.len();
    for row in u.chunks_exact(2 * c) {
        for (d, &v) in dp_in.iter_mut().zip(&row[first..first + n]) {
            *d -= v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loops of the first version of this file (one connection at a time, sums in order), in
    /// f64: what the vectorised pass must agree with at sizes that use its blocks and its tail.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        w: &[f32],
        p_in: &[f32],
        p_out: &[f32],
        c: usize,
        oc: usize,
        norm: TransportNorm,
        wn: WeightNorm,
        coeff: f32,
    ) -> (f64, Vec<f64>, Vec<f64>, Vec<f64>) {
        let scale = transport_scale(norm, c, oc) as f64;
        let g = coeff as f64 * scale;
        let (mut dw, mut dpi, mut dpo) = (vec![0.0; oc * c], vec![0.0; 2 * c], vec![0.0; 2 * oc]);
        let mut total = 0.0;
        for j in 0..oc {
            for i in 0..c {
                let w = w[j * c + i] as f64;
                let (dx, dy) = (
                    p_out[2 * j] as f64 - p_in[2 * i] as f64,
                    p_out[2 * j + 1] as f64 - p_in[2 * i + 1] as f64,
                );
                let d = (dx * dx + dy * dy).sqrt();
                let (phi, dphi) = match wn {
                    WeightNorm::L1 => (w.abs(), w.signum() * (w != 0.0) as i32 as f64),
                    WeightNorm::L2 => (w * w, 2.0 * w),
                };
                total += phi * d;
                dw[j * c + i] += g * dphi * d;
                if d > 0.0 {
                    for (k, u) in [dx, dy].into_iter().enumerate() {
                        dpo[2 * j + k] += g * phi * u / d;
                        dpi[2 * i + k] -= g * phi * u / d;
                    }
                }
            }
        }
        (total * scale, dw, dpi, dpo)
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() <= 1e-5 * scale + 1e-5 * w.abs(),
                "{what}[{k}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn vectorised_pass_matches_the_formulas() {
        let mut state = 12345u32;
        let mut rnd = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        };
        for (c, oc) in [(128, 128), (256, 20), (37, 129), (16, 3), (1, 17)] {
            let w: Vec<f32> = (0..oc * c)
                .map(|k| if k % 11 == 0 { 0.0 } else { rnd() })
                .collect();
            let mut p_in: Vec<f32> = (0..2 * c).map(|_| 2.0 * rnd()).collect();
            let p_out: Vec<f32> = (0..2 * oc).map(|_| 2.0 * rnd()).collect();
            // A coincident pair: zero distance, no position gradient.
            p_in[0] = p_out[0];
            p_in[1] = p_out[1];
            for norm in [TransportNorm::Paper, TransportNorm::Mean] {
                for wn in [WeightNorm::L1, WeightNorm::L2] {
                    let (t, dw, dpi, dpo) = naive(&w, &p_in, &p_out, c, oc, norm, wn, 0.7);
                    let (mut gw, mut gi, mut go) = (vec![0.0; oc * c], vec![0.0; 2 * c], vec![0.0; 2 * oc]);
                    let got = transport_forward_backward(
                        &mut gw, &mut gi, &mut go, &w, &p_in, &p_out, c, oc, norm, wn, 0.7,
                    );
                    assert!((got - t).abs() <= 1e-5 * t.abs(), "T {got} vs {t} ({c}x{oc})");
                    close(&gw, &dw, "dW");
                    close(&gi, &dpi, "dp_in");
                    close(&go, &dpo, "dp_out");
                    // The value alone (coeff 0) is the same number, and touches no gradient.
                    let (mut zw, mut zi, mut zo) = (vec![0.0; oc * c], vec![0.0; 2 * c], vec![0.0; 2 * oc]);
                    let value = transport_forward_backward(
                        &mut zw, &mut zi, &mut zo, &w, &p_in, &p_out, c, oc, norm, wn, 0.0,
                    );
                    assert_eq!(value.to_bits(), got.to_bits());
                    assert!(zw.iter().chain(&zi).chain(&zo).all(|&v| v == 0.0));
                }
            }
        }
    }
}
