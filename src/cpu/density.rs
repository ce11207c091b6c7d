//! Density cost of one layer, forward and backward fused.
//!
//! `V(l) = (1/N²) Σ_{j,k} exp(−‖p(j) − p(k)‖)` over all ordered pairs, self-pairs included (each
//! adds the constant 1 and no gradient). `p` is `(N, 2)`. Each unordered pair appears twice, so
//! `∂V/∂p(j) = (1/N²) Σ_k −2 · exp(−d_jk) · (p(j) − p(k)) / d_jk`, a zero distance adding nothing.

use crate::ops::density::density_scale;
use crate::simd::{exp, sum_lanes, LANES};

/// Returns `V(l)` and accumulates `coeff · ∂V/∂p` into `dp`.
///
/// One pass over the ordered pairs: [`density_rows`] one row at a time (its loop vectorises, the
/// row sums keep `LANES` partial sums), the rows' sums added in order. With `coeff = 0` (a regular
/// network) only the value is computed and `dp` may be empty.
pub fn density_forward_backward(dp: &mut [f32], p: &[f32], n: usize, coeff: f32) -> f64 {
    let mut total = 0.0f64;
    for j in 0..n {
        let mut row = [0.0f64];
        let dp_j: &mut [f32] = if coeff == 0.0 {
            &mut []
        } else {
            &mut dp[2 * j..2 * j + 2]
        };
        density_rows(&mut row, dp_j, p, n, coeff, j);
        total += row[0];
    }
    total * density_scale(n) as f64
}

crate::multiversion! {
    /// Rows `first .. first + totals.len()` of [`density_forward_backward`], for the threaded pass
    /// (`cpu::threads`): the same operations in the same order for each row; each row's sum goes to
    /// `totals` (to be added up in order, then scaled by `1/N²`) and, with `coeff ≠ 0`, its
    /// gradient into `dp`, which holds these rows only.
    pub fn density_rows(totals: &mut [f64], dp: &mut [f32], p: &[f32], n: usize, coeff: f32, first: usize) {
        let g = coeff * density_scale(n);
        let p = &p[..2 * n];
        let full = n - n % LANES;
        for (k, total) in totals.iter_mut().enumerate() {
            let j = first + k;
            let (xj, yj) = (p[2 * j], p[2 * j + 1]);
            let (mut acc, mut gx, mut gy) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
            let pair = |dx: f32, dy: f32| {
                let d = (dx * dx + dy * dy).sqrt();
                let e = exp(-d);
                let s = if d > 0.0 { 2.0 * e / d } else { 0.0 };
                (e, s * dx, s * dy)
            };
            for q in p[..2 * full].chunks_exact(2 * LANES) {
                for l in 0..LANES {
                    let (e, ux, uy) = pair(xj - q[2 * l], yj - q[2 * l + 1]);
                    acc[l] += e;
                    gx[l] -= ux;
                    gy[l] -= uy;
                }
            }
            for m in full..n {
                let (e, ux, uy) = pair(xj - p[2 * m], yj - p[2 * m + 1]);
                acc[m - full] += e;
                gx[m - full] -= ux;
                gy[m - full] -= uy;
            }
            *total = sum_lanes(&acc) as f64;
            if g != 0.0 {
                dp[2 * k] += g * sum_lanes(&gx);
                dp[2 * k + 1] += g * sum_lanes(&gy);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectorised_pass_matches_the_formula() {
        let mut state = 777u32;
        let mut rnd = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
        };
        for n in [256usize, 129, 20, 16, 5, 1] {
            let mut p: Vec<f32> = (0..2 * n).map(|_| rnd()).collect();
            if n > 2 {
                // Two coincident neurons: a zero distance, no gradient.
                p[2] = p[0];
                p[3] = p[1];
            }
            let mut total = 0.0f64;
            let mut want = vec![0.0f64; 2 * n];
            for j in 0..n {
                for k in 0..n {
                    let (dx, dy) = (
                        p[2 * j] as f64 - p[2 * k] as f64,
                        p[2 * j + 1] as f64 - p[2 * k + 1] as f64,
                    );
                    let d = (dx * dx + dy * dy).sqrt();
                    total += (-d).exp();
                    if d > 0.0 {
                        want[2 * j] -= 1.3 * 2.0 * (-d).exp() * dx / d / (n * n) as f64;
                        want[2 * j + 1] -= 1.3 * 2.0 * (-d).exp() * dy / d / (n * n) as f64;
                    }
                }
            }
            total /= (n * n) as f64;
            let mut dp = vec![0.0f32; 2 * n];
            let got = density_forward_backward(&mut dp, &p, n, 1.3);
            assert!(
                (got - total).abs() <= 1e-6 * total,
                "V {got} vs {total} (n = {n})"
            );
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (k, (&g, &w)) in dp.iter().zip(&want).enumerate() {
                assert!(
                    (g as f64 - w).abs() <= 1e-5 * scale,
                    "dp[{k}] {g} vs {w} (n = {n})"
                );
            }
            let value = density_forward_backward(&mut [], &p, n, 0.0);
            assert_eq!(value.to_bits(), got.to_bits());
        }
    }
}
