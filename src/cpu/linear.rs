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
    weight_grad_rows(dweight, dbias, dout, inp, b, c, oc, 0);
    if let Some(dinp) = dinp {
        input_grad(dinp, dout, weight, b, c, oc);
    }
}

/// The weight and bias gradients of output neurons `first .. first + dbias.len()` only:
/// `dweight` holds those rows of `dW (OC, C)`, `dbias` those entries (the same bits as the whole).
#[allow(clippy::too_many_arguments)]
pub fn weight_grad_rows(
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    b: usize,
    c: usize,
    oc: usize,
    first: usize,
) {
    let rows = dbias.len();
    if b == 0 || rows == 0 {
        return;
    }
    // dout viewed as (OC, B): element (j, r) at r * OC + j.
    gemm(
        rows,
        b,
        c,
        1.0,
        &dout[first..],
        (1, oc),
        inp,
        (c, 1),
        1.0,
        dweight,
    );
    add_rows(dbias, &dout[first..b * oc], oc);
}

/// `dinp (B, C) = dout (B, OC) · weight (OC, C)`, for any `B` rows (a block of the batch).
pub fn input_grad(dinp: &mut [f32], dout: &[f32], weight: &[f32], b: usize, c: usize, oc: usize) {
    gemm(b, oc, c, 1.0, dout, (oc, 1), weight, (c, 1), 0.0, dinp);
}

crate::multiversion! {
    /// `acc (N) += Σ_rows rows[.., ..N]`, rows `stride` apart, row after row (vectorised along the
    /// row: each sum keeps its sequential order).
    fn add_rows(acc: &mut [f32], rows: &[f32], stride: usize) {
        let n = acc.len();
        for row in rows.chunks(stride) {
            for (a, &d) in acc.iter_mut().zip(&row[..n]) {
                *a += d;
            }
        }
    }
}
