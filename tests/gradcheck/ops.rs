//! Each op on its own against central differences, its conventions, or a hand computation.

use super::*;

// ---------------------------------------------------------------------------------------------
// Each op on its own
// ---------------------------------------------------------------------------------------------

fn normals(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| scale * rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// `n` points in the plane, standard normal, each at least `MIN_DIST` from those before it and from
/// every point of `others`.
fn spread_points(rng: &mut ChaCha8Rng, n: usize, others: &[f32]) -> Vec<f32> {
    let mut p: Vec<f32> = Vec::with_capacity(2 * n);
    while p.len() < 2 * n {
        let q = [
            rng.sample::<f32, _>(StandardNormal),
            rng.sample::<f32, _>(StandardNormal),
        ];
        let far = |o: &[f32]| {
            o.chunks_exact(2)
                .all(|o| ((q[0] - o[0]).powi(2) + (q[1] - o[1]).powi(2)).sqrt() >= MIN_DIST)
        };
        if far(&p) && far(others) {
            p.extend(q);
        }
    }
    p
}

/// Central differences, step `H32`, of `f` with respect to each entry of `x`, with the steps taken.
fn fd32(x: &mut [f32], f: &mut dyn FnMut(&[f32]) -> f64) -> Vec<f64> {
    (0..x.len())
        .map(|k| {
            let v = x[k];
            x[k] = v + H32;
            let up = f(x);
            let step_up = x[k] as f64;
            x[k] = v - H32;
            let down = f(x);
            let step = step_up - x[k] as f64;
            x[k] = v;
            (up - down) / step
        })
        .collect()
}

#[test]
fn transport_op_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(201);
    let (c, oc) = (7, 5);
    let coeff = 0.7f32;
    let mut weight: Vec<f32> = (0..oc * c).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    for w in weight.iter_mut() {
        if w.abs() < 4.0 * H32 {
            *w = 4.0 * H32 * w.signum();
        }
    }
    let p_in = spread_points(&mut rng, c, &[]);
    let p_out = spread_points(&mut rng, oc, &p_in);
    // Gradients start from arbitrary values: the op must add to them (`+=`), as the full backward
    // relies on when p_l collects terms from T(l), T(l+1) and V(l).
    let prior_w = normals(&mut rng, oc * c, 1.0);
    let prior_in = normals(&mut rng, 2 * c, 1.0);
    let prior_out = normals(&mut rng, 2 * oc, 1.0);
    let mut reports = Vec::new();
    for (norm, wn) in NORMS {
        let (mut dw, mut dpi, mut dpo) = (prior_w.clone(), prior_in.clone(), prior_out.clone());
        let value = transport::transport_forward_backward(
            &mut dw, &mut dpi, &mut dpo, &weight, &p_in, &p_out, c, oc, norm, wn, coeff,
        );
        // The value against the formula, in f64.
        let scale = match norm {
            TransportNorm::Paper => 1.0 / oc as f64,
            TransportNorm::Mean => 1.0 / (c * oc) as f64,
        };
        let mut want = 0.0;
        for j in 0..oc {
            for i in 0..c {
                let w = weight[j * c + i] as f64;
                let phi = if wn == WeightNorm::L1 { w.abs() } else { w * w };
                want += phi * dist(&p_in, i, &p_out, j) as f64;
            }
        }
        let mut r = Report::new(format!("transport op {norm:?}/{wn:?}"));
        r.compare(
            &|| "value".into(),
            value,
            scale * want,
            Tol { abs: 1e-6, rel: 1e-5 },
        );
        // The gradients against central differences of the op's own value, times coeff.
        let (mut sw, mut si, mut so) = (vec![0.0; oc * c], vec![0.0; 2 * c], vec![0.0; 2 * oc]);
        let mut value_of = |w: &[f32], pi: &[f32], po: &[f32]| {
            transport::transport_forward_backward(
                &mut sw, &mut si, &mut so, w, pi, po, c, oc, norm, wn, coeff,
            )
        };
        let fd_w = fd32(&mut weight.clone(), &mut |w| value_of(w, &p_in, &p_out));
        let fd_in = fd32(&mut p_in.clone(), &mut |pi| value_of(&weight, pi, &p_out));
        let fd_out = fd32(&mut p_out.clone(), &mut |po| value_of(&weight, &p_in, po));
        for (name, got, prior, fd) in [
            ("dW", &dw, &prior_w, &fd_w),
            ("dp_in", &dpi, &prior_in, &fd_in),
            ("dp_out", &dpo, &prior_out, &fd_out),
        ] {
            for k in 0..got.len() {
                let hand = got[k] as f64 - prior[k] as f64;
                r.compare(&|| format!("{name}[{k}]"), hand, coeff as f64 * fd[k], TOL32);
            }
        }
        reports.push(r);
    }
    finish(reports);
}

#[test]
fn transport_op_conventions_at_zero() {
    // METHOD.md: d|w|/dw at w = 0 is 0, and a zero distance contributes no position gradient.
    let (c, oc) = (3, 2);
    let weight = [0.0, 0.5, -0.25, 1.0, 0.0, -2.0];
    let p_in = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    // Output neuron 0 sits exactly on input neuron 0; output neuron 1 at (3, 4).
    let p_out = [0.0, 0.0, 3.0, 4.0];
    for norm in [TransportNorm::Paper, TransportNorm::Mean] {
        let (mut dw, mut dpi, mut dpo) = (vec![0.0; 6], vec![0.0; 6], vec![0.0; 4]);
        let value = transport::transport_forward_backward(
            &mut dw,
            &mut dpi,
            &mut dpo,
            &weight,
            &p_in,
            &p_out,
            c,
            oc,
            norm,
            WeightNorm::L1,
            1.0,
        );
        let s = transport::transport_scale(norm, c, oc) as f64;
        // Distances: row 0: 0, 1, 1; row 1: 5, sqrt(4+16), sqrt(9+9).
        let want = s * (0.5 * 1.0 + 0.25 * 1.0 + 1.0 * 5.0 + 2.0 * 18f64.sqrt());
        assert!(
            (value - want).abs() < 1e-5,
            "{norm:?}: T = {value}, expected {want}"
        );
        assert_eq!(dw[0], 0.0, "{norm:?}: d|w|/dw at w = 0 must be 0");
        assert_eq!(dw[4], 0.0, "{norm:?}: d|w|/dw at w = 0 must be 0");
        assert!(
            dw[1] > 0.0 && dw[2] < 0.0 && dw[3] > 0.0 && dw[5] < 0.0,
            "{norm:?}: dW {dw:?} has the wrong signs"
        );
        assert!(
            dpi.iter().chain(&dpo).all(|v| v.is_finite()),
            "{norm:?}: NaN at a zero distance: {dpi:?} {dpo:?}"
        );
        // The pair at distance 0 has |w| = 0 here, so move weight 0 away from 0 and check that the
        // coincident pair still adds nothing: the gradient equals the one without that pair.
        let mut w2 = weight;
        w2[0] = 0.75;
        let (mut a_w, mut a_i, mut a_o) = (vec![0.0; 6], vec![0.0; 6], vec![0.0; 4]);
        transport::transport_forward_backward(
            &mut a_w,
            &mut a_i,
            &mut a_o,
            &w2,
            &p_in,
            &p_out,
            c,
            oc,
            norm,
            WeightNorm::L1,
            1.0,
        );
        assert_eq!(a_w[0], 0.0, "{norm:?}: dW at a zero distance is |w|' · 0 = 0");
        for k in 0..2 {
            assert_eq!(a_i[k], dpi[k], "{norm:?}: the coincident pair moved dp_in[{k}]");
            assert_eq!(a_o[k], dpo[k], "{norm:?}: the coincident pair moved dp_out[{k}]");
        }
    }
}

#[test]
fn density_op_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(202);
    let n = 9;
    let coeff = 1.3f32;
    let p = spread_points(&mut rng, n, &[]);
    let prior = normals(&mut rng, 2 * n, 1.0);
    let mut dp = prior.clone();
    let value = density::density_forward_backward(&mut dp, &p, n, coeff);
    let mut want = 0.0;
    for j in 0..n {
        for k in 0..n {
            want += (-(dist(&p, j, &p, k) as f64)).exp();
        }
    }
    let mut r = Report::new("density op");
    r.compare(
        &|| "value".into(),
        value,
        want / (n * n) as f64,
        Tol { abs: 1e-6, rel: 1e-5 },
    );
    let mut scratch = vec![0.0; 2 * n];
    let fd = fd32(&mut p.clone(), &mut |q| {
        density::density_forward_backward(&mut scratch, q, n, coeff)
    });
    for k in 0..2 * n {
        r.compare(
            &|| format!("dp[{k}]"),
            dp[k] as f64 - prior[k] as f64,
            coeff as f64 * fd[k],
            TOL32,
        );
    }
    finish(vec![r]);
}

#[test]
fn density_op_coincident_points() {
    // Points 0 and 2 coincide: that pair (distance 0) adds e^0 = 1 twice to the sum and nothing to
    // the gradient, which must then equal the analytic one over the other pairs.
    let n = 4;
    let p = [0.5, -0.5, 1.5, 0.25, 0.5, -0.5, -1.0, 2.0];
    let mut dp = vec![0.0; 2 * n];
    let value = density::density_forward_backward(&mut dp, &p, n, 1.0);
    let (mut want, mut grad) = (0.0f64, vec![0.0f64; 2 * n]);
    for j in 0..n {
        for k in 0..n {
            let d = dist(&p, j, &p, k) as f64;
            want += (-d).exp();
            if d > 0.0 {
                for a in 0..2 {
                    grad[2 * j + a] -= 2.0 * (-d).exp() * (p[2 * j + a] - p[2 * k + a]) as f64 / d;
                }
            }
        }
    }
    let n2 = (n * n) as f64;
    assert!(
        (value - want / n2).abs() < 1e-6,
        "V = {value}, expected {}",
        want / n2
    );
    for k in 0..2 * n {
        assert!(dp[k].is_finite(), "dp[{k}] is {} at a zero distance", dp[k]);
        assert!(
            (dp[k] as f64 - grad[k] / n2).abs() < 1e-6,
            "dp[{k}] = {}, expected {}",
            dp[k],
            grad[k] / n2
        );
    }
}

#[test]
fn softmax_xent_op_matches_finite_differences() {
    // Equal heads (3 x 4 classes), then heads of different sizes (4, 2 and 5 classes).
    softmax_xent_case(203, &[0, 4, 8, 12]);
    softmax_xent_case(205, &[0, 4, 6, 11]);
}

/// The fused loss against its definition and finite differences, for heads at `offsets`.
fn softmax_xent_case(seed: u64, offsets: &[usize]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let heads = offsets.len() - 1;
    let width = offsets[heads];
    let b = 5;
    let head_of = |c: usize| (0..heads).find(|&h| c < offsets[h + 1]).unwrap();
    let logits = normals(&mut rng, b * width, 2.0);
    let mut labels: Vec<i32> = (0..b * heads)
        .map(|k| {
            let h = k % heads;
            rng.random_range(0..(offsets[h + 1] - offsets[h]) as i32)
        })
        .collect();
    // Some examples lack some heads' labels (and head 1 of example 0, all heads of example 3).
    for (k, l) in labels.iter_mut().enumerate() {
        if k == 1 || k / heads == 3 || rng.random::<f32>() < 0.2 {
            *l = -1;
        }
    }
    // dlogits is overwritten (`=`): start from NaN.
    let mut dlogits = vec![f32::NAN; b * width];
    let loss = softmax_xent::softmax_xent_forward_backward(&mut dlogits, &logits, &labels, b, offsets);
    let mut want = 0.0;
    for r in 0..b {
        for h in 0..heads {
            let y = labels[r * heads + h];
            if y >= 0 {
                let z = &logits[r * width + offsets[h]..r * width + offsets[h + 1]];
                let sum: f64 = z.iter().map(|&v| (v as f64).exp()).sum();
                want -= ((z[y as usize] as f64).exp() / sum).ln();
            }
        }
    }
    let mut r = Report::new(format!("softmax_xent op, heads at {offsets:?}"));
    r.compare(
        &|| "loss".into(),
        loss,
        want / b as f64,
        Tol { abs: 1e-6, rel: 1e-5 },
    );
    let mut scratch = vec![0.0; dlogits.len()];
    let fd = fd32(&mut logits.clone(), &mut |z| {
        softmax_xent::softmax_xent_forward_backward(&mut scratch, z, &labels, b, offsets)
    });
    let (mut labelled, mut significant) = (0, 0);
    for k in 0..dlogits.len() {
        let (row, col) = (k / width, k % width);
        let h = head_of(col);
        if labels[row * heads + h] < 0 {
            assert_eq!(dlogits[k], 0.0, "dlogits[{k}] of a masked head must be 0");
        } else {
            labelled += 1;
            significant += (fd[k].abs() > SIGNIFICANT * TOL32.abs) as usize;
        }
        r.compare(
            &|| {
                format!(
                    "dlogits[{k}] (example {row}, head {h}, class {})",
                    col - offsets[h]
                )
            },
            dlogits[k] as f64,
            fd[k],
            TOL32,
        );
    }
    assert!(
        2 * significant >= labelled,
        "only {significant} of {labelled} labelled entries are significant"
    );
    finish(vec![r]);
    // Every label masked: loss 0, gradient 0.
    let none = vec![-1; b * heads];
    let mut d = vec![f32::NAN; dlogits.len()];
    assert_eq!(
        softmax_xent::softmax_xent_forward_backward(&mut d, &logits, &none, b, offsets),
        0.0
    );
    assert!(d.iter().all(|&v| v == 0.0));
}

/// Each activation's forward against its f64 definition and its backward (the derivative from the
/// output) against central differences of that definition. Inputs are normals of scale 3 (both
/// tails of the sigmoid and tanh), moved at least 1e-3 from the relu's kink at 0, plus large ones
/// (±40, ±100: the tanh must not overflow); the relu's derivative at exactly 0 is 0, as PyTorch's.
#[test]
fn activation_ops_match_their_derivatives() {
    for (seed, act) in (204..).zip(Activation::ALL) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut z = normals(&mut rng, 33, 3.0);
        for v in &mut z {
            if v.abs() < 1e-3 {
                *v = 1e-3f32.copysign(*v);
            }
        }
        z.extend([40.0, -40.0, 100.0, -100.0]);
        let mut a = z.clone();
        cpu::activation::activation_forward(act, &mut a);
        let da = normals(&mut rng, z.len(), 1.0);
        let mut dz = da.clone();
        cpu::activation::activation_backward(act, &mut dz, &a);
        let mut r = Report::new(format!("{act} backward"));
        for k in 0..z.len() {
            let zk = z[k] as f64;
            // f32 evaluation of a function of slope <= 1: a few ulps of max(|f|, 1).
            let want = activation64(act, zk);
            assert!(
                (a[k] as f64 - want).abs() <= 3e-7 * want.abs().max(1.0),
                "{act}({}) = {}, expected {want}",
                z[k],
                a[k]
            );
            let h = 1e-5;
            let deriv = (activation64(act, zk + h) - activation64(act, zk - h)) / (2.0 * h);
            r.compare(
                &|| format!("dz[{k}] at z = {}", z[k]),
                dz[k] as f64,
                da[k] as f64 * deriv,
                Tol { abs: 1e-6, rel: 1e-5 },
            );
        }
        finish(vec![r]);
    }
    // The relu at its kink and a NaN: derivative 0 at z = 0, NaN kept.
    let mut a = vec![0.0, -0.0, f32::NAN];
    cpu::activation::activation_forward(Activation::Relu, &mut a);
    assert!(a[0] == 0.0 && a[1] == 0.0 && a[2].is_nan(), "{a:?}");
    let mut d = vec![2.0, 2.0];
    cpu::activation::activation_backward(Activation::Relu, &mut d, &a[..2]);
    assert_eq!(d, [0.0, 0.0]);
}

#[test]
fn linear_op_matches_naive_loops() {
    let mut rng = ChaCha8Rng::seed_from_u64(205);
    let (b, c, oc) = (5, 7, 3);
    let inp = normals(&mut rng, b * c, 1.0);
    let weight = normals(&mut rng, oc * c, 1.0);
    let bias = normals(&mut rng, oc, 1.0);
    let dout = normals(&mut rng, b * oc, 1.0);
    // Sums of ≤ 7 products of normals in f32: error ≲ 1e-6; a wrong index is off by O(1).
    let close = |got: f32, want: f64, what: &str| {
        assert!(
            (got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
            "{what}: {got} vs naive {want}"
        );
    };

    let mut out = vec![f32::NAN; b * oc];
    linear::linear_forward(&mut out, &inp, &weight, &bias, b, c, oc);
    for r in 0..b {
        for j in 0..oc {
            let mut z = bias[j] as f64;
            for i in 0..c {
                z += inp[r * c + i] as f64 * weight[j * c + i] as f64;
            }
            close(out[r * oc + j], z, &format!("out[{r},{j}]"));
        }
    }

    // dweight and dbias accumulate (+=), dinp is overwritten (=).
    let prior_w = normals(&mut rng, oc * c, 1.0);
    let prior_b = normals(&mut rng, oc, 1.0);
    for with_dinp in [true, false] {
        let (mut dw, mut db, mut dinp) = (prior_w.clone(), prior_b.clone(), vec![f32::NAN; b * c]);
        let d = if with_dinp { Some(&mut dinp[..]) } else { None };
        linear::linear_backward(d, &mut dw, &mut db, &dout, &inp, &weight, b, c, oc);
        for j in 0..oc {
            for i in 0..c {
                let mut g = prior_w[j * c + i] as f64;
                for r in 0..b {
                    g += dout[r * oc + j] as f64 * inp[r * c + i] as f64;
                }
                close(dw[j * c + i], g, &format!("dweight[{j},{i}]"));
            }
            let mut g = prior_b[j] as f64;
            for r in 0..b {
                g += dout[r * oc + j] as f64;
            }
            close(db[j], g, &format!("dbias[{j}]"));
        }
        if with_dinp {
            for r in 0..b {
                for i in 0..c {
                    let mut g = 0.0;
                    for j in 0..oc {
                        g += dout[r * oc + j] as f64 * weight[j * c + i] as f64;
                    }
                    close(dinp[r * c + i], g, &format!("dinp[{r},{i}]"));
                }
            }
        } else {
            assert!(
                dinp.iter().all(|v| v.is_nan()),
                "dinp written although not asked for"
            );
        }
    }
}

#[test]
fn adam_two_steps_by_hand() {
    // torch.optim.Adam (no weight decay, no amsgrad), lr 0.1, betas (0.9, 0.999), eps 1e-8, t = 1, 2:
    //   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= (lr/(1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
    // Step 1 (m̂ = g, v̂ = g²): p −= 0.1 · g/(|g| + 1e-8), i.e. 0.1·sign(g) unless |g| is near eps
    // (g = 1e-8 moves by 0.1 · 1e-8/2e-8 = 0.05) or g = 0 (no move).
    // Step 2, entry 0 (g = 0.1 then 0.3): m = 0.9·0.01 + 0.1·0.3 = 0.039, v = 0.999·1e-5 + 0.001·0.09
    // = 9.999e-5, m̂ = 0.039/0.19 = 0.2052632, v̂ = 9.999e-5/0.001999 = 0.0500200,
    // p = 0.4 − 0.1 · 0.2052632/(0.2236515 + 1e-8) = 0.3082219. The other entries likewise.
    // The values below are these formulas evaluated in f64 with the hyper-parameters and gradients
    // as the f32 numbers the API takes: β2 = 0.999 is stored as 0.99900001287, so 1 − β2 is
    // 0.00099998713 and v comes out 1.3e-5 (relative) below the decimal value above (9.9998716e-6
    // for 1e-5); the parameters agree with the decimal computation to 1e-8.
    let hp = |step| AdamStep {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        step,
    };
    let mut p = vec![0.5f32, -1.0, 0.25, 0.0, 2.0];
    let grads = [[0.1f32, -0.2, 0.0, 1e-8, 3.0], [0.3, 0.1, 0.0, -1e-8, -1.0]];
    let want_p = [
        [0.4000000085, -0.9000000035, 0.25, -0.05000000075, 1.899999999],
        [0.3082218988, -0.8733663021, 0.25, -0.0473684211, 1.859978143],
    ];
    let want_m = [
        [0.01000000253, -0.02000000507, 0.0, 1.000000232e-9, 0.3000000715],
        [0.03900001039, -0.00800000155, 0.0, -1.000000471e-10, 0.1700000334],
    ];
    let want_v = [
        [
            9.999871552e-6,
            3.999948621e-5,
            0.0,
            9.999871132e-20,
            0.008999884129,
        ],
        [
            9.998872025e-5,
            4.995935879e-5,
            0.0,
            1.998974252e-19,
            0.009990871486,
        ],
    ];
    let (mut m, mut v) = (vec![0.0f32; 5], vec![0.0f32; 5]);
    for t in 0..2 {
        adam_update(&mut p, &grads[t], &mut m, &mut v, hp(t as u64 + 1));
        for k in 0..5 {
            // f32 arithmetic on a few operands: a few ulps (m of entry 3 at step 2 is a difference
            // 9e-10 − 1e-9, where the ulps of the operands are 10 times larger relative to it).
            let close = |got: f32, want: f64| (got as f64 - want).abs() <= 5e-6 * want.abs();
            assert!(
                close(p[k], want_p[t][k]),
                "step {}: p[{k}] = {} expected {}",
                t + 1,
                p[k],
                want_p[t][k]
            );
            assert!(
                close(m[k], want_m[t][k]),
                "step {}: m[{k}] = {} expected {}",
                t + 1,
                m[k],
                want_m[t][k]
            );
            assert!(
                close(v[k], want_v[t][k]),
                "step {}: v[{k}] = {} expected {}",
                t + 1,
                v[k],
                want_v[t][k]
            );
        }
    }
}
