//! Every GPU kernel against its CPU twin (`src/cpu/*.rs`) on random data, at the network's shapes
//! (batch 256; 1568/784 → 128 → 128 → 128 → 256 → 20) and at awkward ones (1, 7, 37, 129, 1568, a
//! batch smaller than a tile). Seeds are fixed (written in each test).
//!
//! Tolerances are `abs + rel·|ref|` per element:
//! - matmul: both sides sum K products in f32 in different orders (GPU sequential or in tiles,
//!   `matrixmultiply` in blocks with FMA). With A in [-1, 1) and B scaled by 1/sqrt(K) the outputs
//!   are O(1) and the rounding error of either sum is about sqrt(K)·2^-24·O(1) ≈ 2.4e-6 at K = 1568
//!   (typical), so abs 2e-5 (8x headroom) + rel 1e-4. The fused activations (sigmoid, relu, tanh:
//!   slope ≤ 1, one exp within 3 ulp on the GPU and 2 ulp on the CPU) and their derivatives (the
//!   same aux on both sides) add a few ulps and keep that tolerance.
//! - softmax cross-entropy: per-element exp/log on the GPU is within a few ulp (Vulkan allows
//!   3 ulp for exp): rel 1e-5 of the probabilities (≈ 1/B in dlogits) and abs 1e-7.
//! - transport and density: the GPU sums each row/column in a tree of 64 partial sums, the CPU
//!   sequentially; sums with cancellation are compared against the tensor's scale:
//!   abs 1e-5·max|ref| + rel 1e-4.
//! - Adam: the same formula per element, only sqrt/division rounding differ (≤ 2.5 ulp in WGSL):
//!   abs 1e-7 + rel 1e-5.
//! - bias gradient: the same sequential sum in the same order: abs 1e-6 (it is exact in practice).
//! - accuracy: counts of comparisons of the same f32 values: exact.

#[path = "common/gpu.rs"]
mod common;

use common::{check, context, rng, uniform, Failures};
use spatial_gpu::config::{Activation, TransportNorm, WeightNorm};
use spatial_gpu::cpu;
use spatial_gpu::gpu::matmul::{MatmulArgs, Variant};
use spatial_gpu::gpu::{testing, transport};
use spatial_gpu::metrics;

/// Checks the three products of a dense layer `(b, c) -> (b, oc)` for `variant`.
fn check_layer(
    ctx: &spatial_gpu::gpu::GpuContext,
    v: Variant,
    b: usize,
    c: usize,
    oc: usize,
    seed: u64,
    fails: &mut Failures,
) {
    let mut r = rng(seed);
    let x = uniform(&mut r, b * c, -1.0, 1.0);
    let s = 1.0 / (c as f32).sqrt();
    let w = uniform(&mut r, oc * c, -s, s);
    let bias = uniform(&mut r, oc, -s, s);
    let dout = uniform(&mut r, b * oc, -1.0, 1.0);
    // Pre-activations of the input layer, for the derivative's aux (the activations f(z)).
    let z_in = uniform(&mut r, b * c, -3.0, 3.0);
    let tag = |what: &str| format!("{v:?} {what} b={b} c={c} oc={oc}");

    // Forward with bias and each activation, and without (logits).
    for act in [None].into_iter().chain(Activation::ALL.map(Some)) {
        let mut want = vec![0.0; b * oc];
        cpu::linear::linear_forward(&mut want, &x, &w, &bias, b, c, oc);
        if let Some(act) = act {
            cpu::activation::activation_forward(act, &mut want);
        }
        let args = MatmulArgs::forward(b, c, oc, 0, 0, act);
        let got =
            testing::matmul(ctx, v, &args, &x, &w, &bias, &[], &vec![0.0; b * oc]).expect("forward runs");
        let what = act.map_or("forward".to_string(), |a| format!("forward+{a}"));
        fails.add(check(&tag(&what), &got, &want, 2e-5, 1e-4));
    }

    // Weight and input gradients (the CPU computes both in linear_backward).
    let mut dw = vec![0.0; oc * c];
    let mut db = vec![0.0; oc];
    let mut dinp = vec![0.0; b * c];
    cpu::linear::linear_backward(Some(&mut dinp), &mut dw, &mut db, &dout, &x, &w, b, c, oc);
    let got = testing::matmul(
        ctx,
        v,
        &MatmulArgs::weight_grad(b, c, oc, 0, false),
        &dout,
        &x,
        &[],
        &[],
        &vec![0.0; oc * c],
    )
    .expect("weight grad runs");
    fails.add(check(&tag("weight grad"), &got, &dw, 2e-5, 1e-4));
    let got = testing::matmul(
        ctx,
        v,
        &MatmulArgs::input_grad(b, c, oc, 0, None),
        &dout,
        &w,
        &[],
        &[],
        &vec![0.0; b * c],
    )
    .expect("input grad runs");
    fails.add(check(&tag("input grad"), &got, &dinp, 2e-5, 1e-4));
    // Input gradient with each activation's derivative fused, at that activation's outputs.
    for act in Activation::ALL {
        let mut a_in = z_in.clone();
        cpu::activation::activation_forward(act, &mut a_in);
        let mut dz = dinp.clone();
        cpu::activation::activation_backward(act, &mut dz, &a_in);
        let got = testing::matmul(
            ctx,
            v,
            &MatmulArgs::input_grad(b, c, oc, 0, Some(act)),
            &dout,
            &w,
            &[],
            &a_in,
            &vec![0.0; b * c],
        )
        .expect("input grad runs");
        fails.add(check(&tag(&format!("input grad+{act}'")), &got, &dz, 2e-5, 1e-4));
    }
}

/// Every variant, every product, the network's shapes at batch 256 and awkward shapes. One test
/// so that each pipeline compiles once.
#[test]
fn matmul_variants_match_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    let network: &[(usize, usize, usize)] = &[
        (256, 1568, 100),
        (256, 1568, 128),
        (256, 784, 128),
        (256, 128, 128),
        (256, 128, 256),
        (256, 256, 20),
    ];
    let awkward: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 7, 37),
        (7, 37, 1),
        (37, 129, 7),
        (3, 1568, 20),
        (129, 7, 129),
        (5, 37, 1568),
        (70, 129, 65),
        // Aligned to 4 floats (the vec4 kernels run) but not to any tile, K not a multiple of 64.
        (37, 132, 20),
        (5, 36, 1564),
        (130, 4, 8),
    ];
    for (vi, &v) in Variant::ALL.iter().enumerate() {
        for (si, &(b, c, oc)) in network.iter().chain(awkward).enumerate() {
            check_layer(&ctx, v, b, c, oc, 1000 + 100 * vi as u64 + si as u64, &mut fails);
        }
    }
    // ACCUMULATE adds to what is there.
    let mut r = rng(7);
    let (b, c, oc) = (9, 13, 11);
    let dout = uniform(&mut r, b * oc, -1.0, 1.0);
    let x = uniform(&mut r, b * c, -1.0, 1.0);
    let init = uniform(&mut r, oc * c, -1.0, 1.0);
    let mut want = init.clone();
    let (mut db, w) = (vec![0.0; oc], vec![0.0; oc * c]);
    cpu::linear::linear_backward(None, &mut want, &mut db, &dout, &x, &w, b, c, oc);
    for v in Variant::ALL {
        let got = testing::matmul(
            &ctx,
            v,
            &MatmulArgs::weight_grad(b, c, oc, 0, true),
            &dout,
            &x,
            &[],
            &[],
            &init,
        )
        .unwrap();
        fails.add(check(&format!("{v:?} accumulate"), &got, &want, 2e-5, 1e-4));
    }
    fails.assert_none();
}

/// The vec4 kernels run only where every operand is aligned to 4 floats, and run their scalar twin
/// elsewhere: no adapter needed.
#[test]
fn vec4_variants_run_only_on_aligned_operands() {
    use spatial_gpu::config::Activation::Sigmoid;
    let aligned = [
        MatmulArgs::forward(256, 1568, 100, 0, 156_800, Some(Sigmoid)),
        MatmulArgs::forward(37, 132, 20, 4, 0, None),
        MatmulArgs::input_grad(256, 1568, 100, 8, Some(Sigmoid)),
        MatmulArgs::weight_grad(256, 1568, 100, 3, true),
    ];
    let unaligned = [
        MatmulArgs::forward(256, 1567, 100, 0, 0, None),
        MatmulArgs::forward(256, 1568, 100, 2, 0, None),
        MatmulArgs::input_grad(256, 1566, 100, 0, None),
        MatmulArgs::input_grad(256, 1568, 98, 0, None),
        MatmulArgs::weight_grad(256, 1568, 99, 0, false),
        MatmulArgs::weight_grad(256, 1569, 100, 0, false),
    ];
    for a in aligned {
        assert!(a.vec4_ok(), "{}", a.shape_key());
        assert_eq!(a.resolve(Variant::TiledVec4), Variant::TiledVec4);
        assert_eq!(a.resolve(Variant::SplitKVec4), Variant::SplitKVec4);
        assert_eq!(a.candidates().len(), Variant::ALL.len());
    }
    for a in unaligned {
        assert!(!a.vec4_ok(), "{}", a.shape_key());
        assert_eq!(a.resolve(Variant::TiledVec4), Variant::Tiled);
        assert_eq!(a.resolve(Variant::SplitKVec4), Variant::SplitK);
        assert!(a.candidates().iter().all(|v| !v.is_vec4()));
        assert!(a.shape_key().contains("unaligned"));
    }
}

/// Operands at offsets inside larger buffers (the parameter buffer): aligned offsets run the vec4
/// kernels, misaligned ones their scalar twins; every variant matches the CPU either way.
#[test]
fn matmul_at_offsets_matches_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    let (b, c, oc) = (37, 132, 20);
    let mut r = rng(77);
    let x = uniform(&mut r, b * c, -1.0, 1.0);
    let s = 1.0 / (c as f32).sqrt();
    let w = uniform(&mut r, oc * c, -s, s);
    let bias = uniform(&mut r, oc, -s, s);
    let dout = uniform(&mut r, b * oc, -1.0, 1.0);
    let mut want_fwd = vec![0.0; b * oc];
    cpu::linear::linear_forward(&mut want_fwd, &x, &w, &bias, b, c, oc);
    let (mut dw, mut db, mut dinp) = (vec![0.0; oc * c], vec![0.0; oc], vec![0.0; b * c]);
    cpu::linear::linear_backward(Some(&mut dinp), &mut dw, &mut db, &dout, &x, &w, b, c, oc);
    for off in [0usize, 4, 8, 1, 2, 3] {
        // The parameter buffer: `off` floats, then W, then the bias.
        let mut params = vec![9.0; off];
        params.extend_from_slice(&w);
        params.extend_from_slice(&bias);
        for v in Variant::ALL {
            let fwd = MatmulArgs::forward(b, c, oc, off, off + oc * c, None);
            let ran = fwd.resolve(v);
            assert_eq!(
                ran.is_vec4(),
                v.is_vec4() && off % 4 == 0,
                "{v:?} at {off} runs {ran:?}"
            );
            let tag = |what: &str| format!("{v:?} (runs {ran:?}) {what}, W at {off}");
            let got = testing::matmul(&ctx, v, &fwd, &x, &params, &params, &[], &vec![0.0; b * oc]).unwrap();
            fails.add(check(&tag("forward"), &got, &want_fwd, 2e-5, 1e-4));
            let ig = MatmulArgs::input_grad(b, c, oc, off, None);
            let got = testing::matmul(&ctx, v, &ig, &dout, &params, &[], &[], &vec![0.0; b * c]).unwrap();
            fails.add(check(&tag("input grad"), &got, &dinp, 2e-5, 1e-4));
            // The weight gradient written at `off` into a gradient buffer of the parameters' size.
            let wg = MatmulArgs::weight_grad(b, c, oc, off, false);
            let got = testing::matmul(&ctx, v, &wg, &dout, &x, &[], &[], &vec![0.0; params.len()]).unwrap();
            fails.add(check(
                &tag("weight grad"),
                &got[off..off + oc * c],
                &dw,
                2e-5,
                1e-4,
            ));
        }
    }
    fails.assert_none();
}

#[test]
fn bias_grad_and_reduce_match_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    for (i, &(b, n)) in [(256, 128), (256, 20), (1, 1), (37, 129), (7, 1568)]
        .iter()
        .enumerate()
    {
        let mut r = rng(20 + i as u64);
        let dout = uniform(&mut r, b * n, -1.0, 1.0);
        let (mut dw, mut want) = (vec![0.0; n], vec![0.0; n]);
        cpu::linear::linear_backward(None, &mut dw, &mut want, &dout, &vec![0.0; b], &[], b, 1, n);
        let got = testing::bias_grad(&ctx, &dout, b, n).unwrap();
        fails.add(check(&format!("bias grad b={b} n={n}"), &got, &want, 1e-6, 0.0));
    }
    for (i, &n) in [1usize, 7, 256, 257, 1568].iter().enumerate() {
        let mut r = rng(40 + i as u64);
        let src = uniform(&mut r, n, 0.0, 1.0);
        let want = src.iter().map(|&v| v as f64).sum::<f64>() as f32 * 0.5;
        let got = testing::reduce(&ctx, &src, 0.5, false).unwrap();
        fails.add(check(&format!("reduce n={n}"), &[got], &[want], 1e-6, 1e-5));
        // The scale from the network's record of hyperparameters: the same bits.
        let per_network = testing::reduce(&ctx, &src, 0.5, true).unwrap();
        assert_eq!(
            per_network.to_bits(),
            got.to_bits(),
            "reduce n={n}: scale from hyper"
        );
    }
    fails.assert_none();
}

#[test]
fn softmax_xent_matches_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    // Equal heads, then heads of different sizes (a 47-class head beside 3 and 10: EMNIST-balanced
    // with a small task and MNIST).
    let cases: [(usize, &[usize]); 6] = [
        (256, &[10, 10]),
        (1, &[10, 10]),
        (37, &[7, 7, 7]),
        (5, &[1]),
        (64, &[3, 10]),
        (33, &[47, 3, 10]),
    ];
    for (i, &(b, classes)) in cases.iter().enumerate() {
        let heads = classes.len();
        let mut offsets = vec![0];
        for &n in classes {
            offsets.push(offsets.last().unwrap() + n);
        }
        let width = offsets[heads];
        let mut r = rng(60 + i as u64);
        let logits = uniform(&mut r, b * width, -8.0, 8.0);
        // Labels, a quarter of them missing (negative), as in the sequential mode.
        let labels: Vec<i32> = (0..b * heads)
            .map(|k| {
                if r.random_range(0..4) == 0 {
                    -1
                } else {
                    r.random_range(0..classes[k % heads] as i32)
                }
            })
            .collect();
        let mut want = vec![0.0; logits.len()];
        let loss = cpu::softmax_xent::softmax_xent_forward_backward(&mut want, &logits, &labels, b, &offsets);
        let (got, rows) = testing::softmax_xent(&ctx, &logits, &labels, b, &offsets).unwrap();
        let tag = format!("softmax_xent b={b} classes={classes:?}");
        fails.add(check(&format!("{tag} dlogits"), &got, &want, 1e-7, 1e-5));
        let got_loss = rows.iter().map(|&v| v as f64).sum::<f64>() / b as f64;
        fails.add(check(
            &format!("{tag} loss"),
            &[got_loss as f32],
            &[loss as f32],
            1e-6,
            1e-5,
        ));
    }
    fails.assert_none();
}

use rand::Rng;

/// The accuracy kernel against `ops::accuracy::count_correct` (exact counts). Logits take one of 5
/// values, so most rows tie at their maximum (a tie goes to the lower class on both sides); a
/// quarter of the labels is missing; the batch's labels start `first` rows into a longer label
/// array (a later batch of a test set); heads of 1 to 47 classes.
#[test]
fn accuracy_matches_cpu() {
    let Some(ctx) = context() else { return };
    let cases: [(usize, usize, &[usize]); 6] = [
        (256, 0, &[10, 10]),
        (1, 3, &[10, 10]),
        (37, 11, &[7, 7, 7]),
        (5, 0, &[1]),
        (64, 100, &[3, 10]),
        (33, 2, &[47, 3, 10]),
    ];
    let (mut ties, mut missing, mut correct) = (0, 0, 0);
    for (i, &(b, first, classes)) in cases.iter().enumerate() {
        let heads = classes.len();
        let mut offsets = vec![0];
        for &n in classes {
            offsets.push(offsets.last().unwrap() + n);
        }
        let width = offsets[heads];
        let mut r = rng(80 + i as u64);
        let logits: Vec<f32> = (0..b * width)
            .map(|_| r.random_range(-2..=2) as f32 * 0.5)
            .collect();
        let labels: Vec<i32> = (0..(first + b) * heads)
            .map(|k| {
                if r.random_range(0..4) == 0 {
                    -1
                } else {
                    r.random_range(0..classes[k % heads] as i32)
                }
            })
            .collect();
        let batch_labels = &labels[first * heads..];
        let want = metrics::count_correct(&logits, batch_labels, b, &offsets);
        let got = testing::accuracy(&ctx, &logits, &labels, first, b, &offsets).unwrap();
        assert_eq!(got, want, "accuracy b={b} first={first} classes={classes:?}");
        for row in 0..b {
            for h in 0..heads {
                let z = &logits[row * width + offsets[h]..row * width + offsets[h + 1]];
                let top = z.iter().fold(f32::MIN, |m, &v| m.max(v));
                ties += (z.iter().filter(|&&v| v == top).count() > 1) as usize;
                missing += (batch_labels[row * heads + h] < 0) as usize;
            }
        }
        correct += want.iter().map(|c| c.0).sum::<u64>();
    }
    // The data exercises what it claims to.
    assert!(
        ties > 100 && missing > 50 && correct > 50,
        "ties {ties}, missing {missing}, correct {correct}"
    );
}

/// Max |x| of a tensor, the scale of the absolute tolerance of sums with cancellation.
fn scale_of(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[test]
fn transport_and_density_match_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    let shapes: &[(usize, usize)] = &[
        (128, 128),
        (128, 256),
        (256, 20),
        (1568, 128),
        (1, 1),
        (7, 37),
        (129, 1),
    ];
    for (si, &(c, oc)) in shapes.iter().enumerate() {
        for norm in [TransportNorm::Paper, TransportNorm::Mean] {
            for wn in [WeightNorm::L1, WeightNorm::L2] {
                let mut r = rng(80 + si as u64);
                // Flat buffers: W at 0, p_in after it, p_out after that (offsets not aligned on purpose).
                let (w_off, pin_off) = (0, oc * c);
                let pout_off = pin_off + 2 * c;
                let len = pout_off + 2 * oc;
                let mut params = uniform(&mut r, oc * c, -0.1, 0.1);
                params[0] = 0.0; // φ'(0) = 0
                params.extend(uniform(&mut r, 2 * (c + oc), -2.0, 2.0));
                if c > 1 && oc > 1 {
                    // A zero distance: p_out(1) on top of p_in(0).
                    params[pout_off + 2] = params[pin_off];
                    params[pout_off + 3] = params[pin_off + 1];
                }
                let grads0 = uniform(&mut r, len, -0.01, 0.01);
                let coeff = 0.7;
                let mut want = grads0.clone();
                let value = {
                    let (dw, rest) = want.split_at_mut(pin_off);
                    let (dp_in, dp_out) = rest.split_at_mut(2 * c);
                    cpu::transport::transport_forward_backward(
                        dw,
                        dp_in,
                        dp_out,
                        &params[..pin_off],
                        &params[pin_off..pout_off],
                        &params[pout_off..],
                        c,
                        oc,
                        norm,
                        wn,
                        coeff,
                    )
                };
                let args = transport::TransportArgs {
                    c,
                    oc,
                    w_off,
                    pin_off,
                    pout_off,
                    partial_off: 3,
                    spatial: 0,
                };
                let (got, got_value) =
                    testing::transport(&ctx, &args, (norm, wn, coeff), &params, &grads0).unwrap();
                let tag = format!("transport c={c} oc={oc} {norm:?} {wn:?}");
                let tol = |x: &[f32]| 1e-5 * scale_of(x);
                let (gw, wd) = (&got[..pin_off], &want[..pin_off]);
                fails.add(check(&format!("{tag} dW"), gw, wd, tol(wd), 1e-4));
                let (gp, wp) = (&got[pin_off..pout_off], &want[pin_off..pout_off]);
                fails.add(check(&format!("{tag} dp_in"), gp, wp, tol(wp), 1e-4));
                let (gp, wp) = (&got[pout_off..], &want[pout_off..]);
                fails.add(check(&format!("{tag} dp_out"), gp, wp, tol(wp), 1e-4));
                fails.add(check(
                    &format!("{tag} value"),
                    &[got_value as f32],
                    &[value as f32],
                    1e-7,
                    1e-5,
                ));
            }
        }
    }
    for (si, &n) in [128usize, 256, 20, 1, 7, 129].iter().enumerate() {
        let mut r = rng(120 + si as u64);
        let p_off = 5;
        let mut params = uniform(&mut r, p_off, 0.0, 1.0);
        params.extend(uniform(&mut r, 2 * n, -2.0, 2.0));
        if n > 2 {
            // Two neurons at the same place: zero distance, no gradient between them.
            params[p_off + 2] = params[p_off];
            params[p_off + 3] = params[p_off + 1];
        }
        let grads0 = uniform(&mut r, params.len(), -0.01, 0.01);
        let coeff = 1.5;
        let mut want = grads0.clone();
        let value = cpu::density::density_forward_backward(&mut want[p_off..], &params[p_off..], n, coeff);
        let (got, got_value) = testing::density(&ctx, n, p_off, coeff, &params, &grads0).unwrap();
        let tag = format!("density n={n}");
        fails.add(check(
            &format!("{tag} dp"),
            &got,
            &want,
            1e-5 * scale_of(&want),
            1e-4,
        ));
        fails.add(check(
            &format!("{tag} value"),
            &[got_value as f32],
            &[value as f32],
            1e-7,
            1e-5,
        ));
    }
    fails.assert_none();
}

#[test]
fn adam_matches_cpu() {
    let Some(ctx) = context() else { return };
    let mut fails = Failures::default();
    for (i, &n) in [1usize, 1000, 300_000].iter().enumerate() {
        let mut r = rng(140 + i as u64);
        let params = uniform(&mut r, n, -1.0, 1.0);
        let grads = uniform(&mut r, n, -0.1, 0.1);
        let m = uniform(&mut r, n, -0.01, 0.01);
        let v = uniform(&mut r, n, 0.0, 1e-4);
        for step in [1u64, 7, 1000] {
            let hp = cpu::adam::AdamStep {
                lr: 0.005,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                step,
            };
            let (mut wp, mut wm, mut wv) = (params.clone(), m.clone(), v.clone());
            cpu::adam::adam_update(&mut wp, &grads, &mut wm, &mut wv, hp);
            let [gp, gm, gv] = testing::adam(&ctx, hp, &params, &grads, &m, &v).unwrap();
            fails.add(check(
                &format!("adam n={n} t={step} params"),
                &gp,
                &wp,
                1e-7,
                1e-5,
            ));
            fails.add(check(&format!("adam n={n} t={step} m"), &gm, &wm, 1e-9, 1e-5));
            fails.add(check(&format!("adam n={n} t={step} v"), &gv, &wv, 1e-12, 1e-5));
        }
    }
    fails.assert_none();
}

/// Buffers are bound by name: an unknown name and a missing one are errors naming the binding.
#[test]
fn bindings_are_checked_by_name() {
    let Some(ctx) = context() else { return };
    let buf = spatial_gpu::gpu::buffers::storage(&ctx, "x", 4).unwrap();
    let op = spatial_gpu::gpu::bias_grad::BiasGrad { n: 1, dbias_off: 0 };
    let at = testing::launch(1);
    let e = testing::run_once(&ctx, &op, &[("src", &buf), ("grads", &buf)], &at).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("bias_grad.wgsl binds no buffer named `src`"),
        "{msg}"
    );
    assert!(msg.contains("dout"), "the error lists the names it binds: {msg}");
    let e = testing::run_once(&ctx, &op, &[("dout", &buf)], &at).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("binds `grads` (binding 2)"), "{msg}");
}
