//! Dense layer: `out = inp · Wᵀ + bias`, and its backward.
//!
//! Shapes: `inp` is `(B, C)`, `weight` is `(OC, C)`, `bias` is `(OC)`, `out` is `(B, OC)`, all
//! row-major. The three products go through `matrixmultiply::sgemm`, which takes arbitrary strides,
//! so the transposes cost nothing. Parameter gradients are accumulated with `+=`; the input
//! gradient is written with `=`.

/// `c (m×n) = alpha · a (m×k) · b (k×n) + beta · c`, with explicit row/column strides (public for
/// the GEMM roofline of `spatial-gpu bench` and `benches/cpu_gemm.rs`).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    // The strided views must fit inside their slices; checked here once so the unsafe call is sound.
    let last = |rows: usize, cols: usize, (rs, cs): (usize, usize)| (rows - 1) * rs + (cols - 1) * cs;
    if k > 0 {
        assert!(last(m, k, a_strides) < a.len() && last(k, n, b_strides) < b.len());
    }
    assert!(c.len() >= m * n);
    // SAFETY: every element addressed by the strides was bounds-checked above; `c` does not alias.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            a_strides.0 as isize,
            a_strides.1 as isize,
            b.as_ptr(),
            b_strides.0 as isize,
            b_strides.1 as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Forward: `out (B, OC) = inp (B, C) · weight (OC, C)ᵀ + bias (OC)`.
pub fn linear_forward(
    out: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    b: usize,
    c: usize,
    oc: usize,
) {
    for row in out[..b * oc].chunks_exact_mut(oc) {
        row.copy_from_slice(bias);
    }
    // weight viewed as (C, OC): element (k, j) at j * C + k.
    gemm(b, c, oc, 1.0, inp, (c, 1), weight, (1, c), 1.0, out);
}

/// Backward of [`linear_forward`] given `dout (B, OC)`:
/// `dweight (OC, C) += doutᵀ · inp`, `dbias (OC) += Σ_rows dout`, and, when asked,
/// `dinp (B, C) = dout · weight`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    dinp: Option<&mut [f32]>,
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    b: usize,
    c: usize,
    oc: usize,
) {
    // dout viewed as (OC, B): element (j, r) at r * OC + j.
    gemm(oc, b, c, 1.0, dout, (1, oc), inp, (c, 1), 1.0, dweight);
    add_rows(dbias, &dout[..b * oc]);
    if let Some(dinp) = dinp {
        gemm(b, oc, c, 1.0, dout, (oc, 1), weight, (c, 1), 0.0, dinp);
    }
}

crate::multiversion! {
    /// `acc (N) += Σ_rows rows (B, N)`, row after row (vectorised along the row: each sum keeps
    /// its sequential order).
    fn add_rows(acc: &mut [f32], rows: &[f32]) {
        let n = acc.len();
        for row in rows.chunks_exact(n) {
            for (a, &d) in acc.iter_mut().zip(row) {
                *a += d;
            }
        }
    }
}
