//! Density cost of one layer, forward and backward fused.
//!
//! `V(l) = (1/N²) Σ_{j,k} exp(−‖p(j) − p(k)‖)` over all ordered pairs, self-pairs included (each
//! adds the constant 1 and no gradient). `p` is `(N, 2)`. Each unordered pair appears twice, so
//! `∂V/∂p(j) = (1/N²) Σ_k −2 · exp(−d_jk) · (p(j) − p(k)) / d_jk`, a zero distance adding nothing.

/// Returns `V(l)` and accumulates `coeff · ∂V/∂p` into `dp`.
pub fn density_forward_backward(dp: &mut [f32], p: &[f32], n: usize, coeff: f32) -> f64 {
    let inv_n2 = 1.0 / (n as f32 * n as f32);
    let g = coeff * inv_n2;
    let mut total = 0.0f64;
    for j in 0..n {
        let (xj, yj) = (p[2 * j], p[2 * j + 1]);
        let (mut gx, mut gy) = (0.0f32, 0.0f32);
        let mut row_sum = 0.0f32;
        for k in 0..n {
            let (dx, dy) = (xj - p[2 * k], yj - p[2 * k + 1]);
            let d = (dx * dx + dy * dy).sqrt();
            let e = (-d).exp();
            row_sum += e;
            if d > 0.0 {
                gx -= 2.0 * e * dx / d;
                gy -= 2.0 * e * dy / d;
            }
        }
        total += row_sum as f64;
        dp[2 * j] += g * gx;
        dp[2 * j + 1] += g * gy;
    }
    total * inv_n2 as f64
}
