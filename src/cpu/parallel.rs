//! The threaded versions of the step's passes (`cpu::threads` says how the work is split and why
//! the results are the bits of one thread). Called by `cpu/mod.rs` when more than one thread works.

use super::threads::{Threads, MIN_CHUNK, ROW_ALIGN};
use super::{activation, density, linear, transport, Workspace};
use crate::config::{Activation, ModelConfig, WeightNorm};
use crate::ops::adam::AdamStep;

/// The shape of a dense layer's pass: batch rows, inputs, outputs.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub b: usize,
    pub c: usize,
    pub oc: usize,
}

/// Splits `data` at the ends of `blocks` (consecutive, from 0).
fn split_blocks<'a, T>(
    mut data: &'a mut [T],
    blocks: &[std::ops::Range<usize>],
    width: usize,
) -> Vec<&'a mut [T]> {
    blocks
        .iter()
        .map(|r| {
            let (chunk, tail) = std::mem::take(&mut data).split_at_mut(r.len() * width);
            data = tail;
            chunk
        })
        .collect()
}

/// A dense layer's backward on the threads: the weight and bias gradients split over output
/// neurons, the input gradient (and the previous layer's activation derivative, from its output
/// `a_prev`) over batch rows; all of it in one parallel region.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    threads: &Threads,
    act: Activation,
    dinp: Option<&mut [f32]>,
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    a_prev: &[f32],
    weight: &[f32],
    Shape { b, c, oc }: Shape,
) {
    let out_blocks: Vec<_> = threads.blocks(oc, ROW_ALIGN).collect();
    let row_blocks: Vec<_> = threads.blocks(b, ROW_ALIGN).collect();
    let dw = split_blocks(dweight, &out_blocks, c);
    let db = split_blocks(dbias, &out_blocks, 1);
    threads.scope(|s| {
        for ((r, dw), db) in out_blocks.iter().zip(dw).zip(db) {
            let first = r.start;
            s.spawn(move |_| linear::weight_grad_rows(dw, db, dout, inp, b, c, oc, first));
        }
        if let Some(dinp) = dinp {
            for (r, chunk) in row_blocks.iter().zip(split_blocks(dinp, &row_blocks, c)) {
                let (d, a) = (&dout[r.start * oc..r.end * oc], &a_prev[r.start * c..r.end * c]);
                let n = r.len();
                s.spawn(move |_| {
                    linear::input_grad(chunk, d, weight, n, c, oc);
                    activation::activation_backward(act, chunk, a);
                });
            }
        }
    });
}

/// One spatial layer's transport cost on the threads: rows (output neurons) split among them, each
/// row's sum added up in order afterwards; then the input-position gradient, split over input
/// neurons, from the terms the rows left in `ws.transport_u`.
#[allow(clippy::too_many_arguments)]
pub fn transport(
    threads: &Threads,
    ws: &mut Workspace,
    [dw, dp_in, dp_out]: [&mut [f32]; 3],
    [weight, p_in, p_out]: [&[f32]; 3],
    c: usize,
    oc: usize,
    model: &ModelConfig,
    coeff: f32,
) -> f64 {
    let scale = transport::transport_scale(model.transport_norm, c, oc);
    let g = coeff * scale;
    let l1 = model.weight_norm == WeightNorm::L1;
    ws.row_totals.resize(oc, 0.0);
    let u_len = if g == 0.0 { 0 } else { 2 * oc * c };
    ws.transport_u.resize(u_len, 0.0);
    let blocks: Vec<_> = threads.blocks(oc, 1).collect();
    let totals = split_blocks(&mut ws.row_totals[..oc], &blocks, 1);
    let us = if g == 0.0 {
        blocks.iter().map(|_| &mut [][..]).collect()
    } else {
        split_blocks(&mut ws.transport_u[..u_len], &blocks, 2 * c)
    };
    let (dws, dpos) = if g == 0.0 {
        let none = || blocks.iter().map(|_| &mut [][..]).collect::<Vec<_>>();
        (none(), none())
    } else {
        (
            split_blocks(&mut dw[..oc * c], &blocks, c),
            split_blocks(&mut dp_out[..2 * oc], &blocks, 2),
        )
    };
    threads.scope(|s| {
        for ((((r, t), u), dw), dpo) in blocks.iter().zip(totals).zip(us).zip(dws).zip(dpos) {
            let first = r.start;
            s.spawn(move |_| transport::transport_rows(t, u, dw, dpo, weight, p_in, p_out, c, first, g, l1));
        }
    });
    if g != 0.0 {
        let u = &ws.transport_u[..u_len];
        threads.rows_mut(&mut dp_in[..2 * c], 2, 1, |first, d| {
            transport::transport_dp_in(d, u, c, 2 * first)
        });
    }
    let mut total = 0.0f64;
    for &t in &ws.row_totals[..oc] {
        total += t;
    }
    total * scale as f64
}

/// One spatial layer's density cost and its gradient (`coeff ≠ 0`) on the threads: rows split
/// among them, each row's sum added up in order afterwards.
pub fn density(
    threads: &Threads,
    ws: &mut Workspace,
    dp: &mut [f32],
    p: &[f32],
    n: usize,
    coeff: f32,
) -> f64 {
    ws.row_totals.resize(n, 0.0);
    let blocks: Vec<_> = threads.blocks(n, 1).collect();
    let totals = split_blocks(&mut ws.row_totals[..n], &blocks, 1);
    let dps = split_blocks(&mut dp[..2 * n], &blocks, 2);
    threads.scope(|s| {
        for ((r, t), d) in blocks.iter().zip(totals).zip(dps) {
            let first = r.start;
            s.spawn(move |_| density::density_rows(t, d, p, n, coeff, first));
        }
    });
    let mut total = 0.0f64;
    for &t in &ws.row_totals[..n] {
        total += t;
    }
    total * crate::ops::density::density_scale(n) as f64
}

/// Adam over chunks of the parameters (element-wise: the same bits in any split).
pub fn adam(
    threads: &Threads,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    hp: AdamStep,
) {
    let align = MIN_CHUNK.max(params.len().div_ceil(threads.count()));
    let blocks: Vec<_> = threads.blocks(params.len(), align).collect();
    let ps = split_blocks(params, &blocks, 1);
    let ms = split_blocks(m, &blocks, 1);
    let vs = split_blocks(v, &blocks, 1);
    threads.scope(|s| {
        for (((r, p), m), v) in blocks.iter().zip(ps).zip(ms).zip(vs) {
            let g = &grads[r.clone()];
            s.spawn(move |_| super::adam::adam_update(p, g, m, v, hp));
        }
    });
}
