//! Whole-network checks: the losses against the naive formulas, and the full gradient of each
//! term against central differences (see the crate documentation).

use super::*;

// ---------------------------------------------------------------------------------------------
// Whole-network checks
// ---------------------------------------------------------------------------------------------

/// The norms and activations `term` is checked with: every norm with the sigmoid, and the other
/// activations with the paper's norms (the activation and the norms touch different terms).
fn pairs(term: Term) -> Vec<((TransportNorm, WeightNorm), Activation)> {
    let sigmoid = term.norms().iter().map(|&n| (n, Activation::Sigmoid));
    let others = term.activations().iter().filter(|&&a| a != Activation::Sigmoid);
    sigmoid.chain(others.map(|&a| (NORMS[0], a))).collect()
}

#[test]
fn losses_equal_naive_formulas() {
    let mut reports = Vec::new();
    for term in [Term::Task, Term::Transport, Term::Density, Term::Total] {
        for case in CASES {
            for ((norm, weight_norm), act) in pairs(term) {
                let s = Setup::new(case, term, norm, weight_norm, act);
                let (got, _) = s.reference(&s.params);
                let want = s.naive(&s.theta64());
                println!("{}: reference {got:?}\n    naive {want:?}", s.label);
                assert_eq!(got.transport.len(), s.model.spatial_layers.len());
                assert_eq!(got.density.len(), s.model.spatial_layers.len());
                if term.masks_every_label() {
                    assert_eq!(
                        got.task, 0.0,
                        "{}: every label is masked, the task loss must be 0",
                        s.label
                    );
                }
                // f32 forward vs f64 formulas: each value is a short f32 sum of terms of size ≲ 5,
                // exact to a few ulps (unit roundoff 6e-8). Measured: at most 9e-8 (diff/tol ≤ 0.04).
                let tol = Tol { abs: 1e-7, rel: 2e-6 };
                let mut r = Report::new(format!("{} loss values", s.label));
                r.compare(&|| "task".into(), got.task, want.task, tol);
                for (k, &l) in s.model.spatial_layers.iter().enumerate() {
                    r.compare(&|| format!("T({l})"), got.transport[k], want.transport[k], tol);
                    r.compare(&|| format!("V({l})"), got.density[k], want.density[k], tol);
                }
                r.compare(&|| "total".into(), got.total, want.total, tol);
                reports.push(r);
            }
        }
    }
    finish(reports);
}

/// Checks the reference's gradient of `term` on every case and norm (see the module comment).
fn gradcheck(term: Term) {
    let mut reports = Vec::new();
    for case in CASES {
        for ((norm, weight_norm), act) in pairs(term) {
            let mut s = Setup::new(case, term, norm, weight_norm, act);
            let (_, grad) = s.reference(&s.params);
            let layout = s.params.layout.clone();
            let all = tensors(&layout);
            let theta = s.theta64();

            // Every element is written (the buffer was filled with NaN), the padding is 0, and
            // what the term cannot depend on is exactly 0.
            let mut structure = Report::new(format!("{} structure", s.label));
            let in_tensor = |k: usize| all.iter().find(|t| t.range.contains(&k));
            for (k, &g) in grad.iter().enumerate() {
                let zero_expected = match in_tensor(k) {
                    None => true,
                    Some(t) => !t.depends(term, &s.model),
                };
                if !g.is_finite() || (zero_expected && g != 0.0) {
                    let name = in_tensor(k).map_or(format!("padding (flat {k})"), |t| t.entry(k));
                    structure.failures.push(format!(
                        "{}: {name}: gradient {g:e}, expected exactly 0",
                        structure.what
                    ));
                }
                structure.checked += 1;
            }

            // 1. Entry by entry, central differences of the f64 formulas.
            let mut r64 = Report::new(format!("{} f64 FD (h={H64:e})", s.label));
            let mut th = theta.clone();
            let mut fd64 = vec![0.0; grad.len()];
            for t in &all {
                for k in t.range.clone() {
                    th[k] = theta[k] + H64;
                    let up = s.naive(&th).total;
                    th[k] = theta[k] - H64;
                    let down = s.naive(&th).total;
                    th[k] = theta[k];
                    fd64[k] = (up - down) / (2.0 * H64);
                    r64.compare(&|| t.entry(k), grad[k] as f64, fd64[k], TOL64);
                }
                // Most entries of a tensor the term depends on must be well above the tolerance.
                if t.depends(term, &s.model) {
                    let n = t.range.len();
                    let big = t
                        .range
                        .clone()
                        .filter(|&k| fd64[k].abs() > SIGNIFICANT * TOL64.abs)
                        .count();
                    if 2 * big < n {
                        r64.failures.push(format!(
                            "{}: only {big} of the {n} entries of {} exceed {SIGNIFICANT}·abs tol: the check means little",
                            r64.what,
                            t.name()
                        ));
                    }
                }
            }

            // 2. Entry by entry, central differences of the reference's own f32 loss.
            let mut r32 = Report::new(format!("{} f32 FD (h={H32:e})", s.label));
            let mut p = s.params.clone();
            let (mut dep, mut big32) = (0, 0);
            for t in &all {
                if t.depends(term, &s.model) {
                    dep += t.range.len();
                    big32 += t
                        .range
                        .clone()
                        .filter(|&k| fd64[k].abs() > SIGNIFICANT * TOL32.abs)
                        .count();
                }
                for k in t.range.clone() {
                    let x = s.params.data[k];
                    p.data[k] = x + H32;
                    let up = s.reference(&p).0.total;
                    let step_up = p.data[k] as f64;
                    p.data[k] = x - H32;
                    let down = s.reference(&p).0.total;
                    let step = step_up - p.data[k] as f64;
                    p.data[k] = x;
                    r32.compare(&|| t.entry(k), grad[k] as f64, (up - down) / step, TOL32);
                }
            }

            // 3. Directional derivatives along random unit directions (zero on the padding).
            let mut rdir = Report::new(format!("{} directional", s.label));
            for d in 0..3 {
                let mut u = vec![0.0f64; grad.len()];
                for t in &all {
                    for k in t.range.clone() {
                        u[k] = s.rng.sample(StandardNormal);
                    }
                }
                let norm_u = u.iter().map(|v| v * v).sum::<f64>().sqrt();
                u.iter_mut().for_each(|v| *v /= norm_u);
                let gu: f64 = grad.iter().zip(&u).map(|(&g, v)| g as f64 * v).sum();
                // g·u must be well above the tolerance, or the check would pass for g = 0.
                if gu.abs() < SIGNIFICANT * TOL64.abs {
                    rdir.failures.push(format!(
                        "{}: direction {d}: g·u = {gu:e} is too small to mean anything",
                        rdir.what
                    ));
                }
                // f64 formulas.
                let along = |e: f64| theta.iter().zip(&u).map(|(t, v)| t + e * v).collect::<Vec<_>>();
                let fd = (s.naive(&along(EPS64)).total - s.naive(&along(-EPS64)).total) / (2.0 * EPS64);
                rdir.compare(&|| format!("direction {d}, f64 (eps {EPS64:e})"), gu, fd, TOL64);
                // The reference's f32 loss; the f32 rounding of θ ± εu changes the step, so the
                // hand value is g·(θ₊ − θ₋) / 2ε with the steps actually taken.
                let mut up = s.params.clone();
                let mut down = s.params.clone();
                for k in 0..grad.len() {
                    up.data[k] = (theta[k] + EPS32 as f64 * u[k]) as f32;
                    down.data[k] = (theta[k] - EPS32 as f64 * u[k]) as f32;
                }
                let g_step: f64 = (0..grad.len())
                    .map(|k| grad[k] as f64 * (up.data[k] as f64 - down.data[k] as f64))
                    .sum::<f64>()
                    / (2.0 * EPS32 as f64);
                let fd = (s.reference(&up).0.total - s.reference(&down).0.total) / (2.0 * EPS32 as f64);
                rdir.compare(
                    &|| format!("direction {d}, f32 (eps {EPS32:e})"),
                    g_step,
                    fd,
                    TOL32,
                );
            }
            println!(
                "{}: {big32} of the {dep} entries it depends on exceed {SIGNIFICANT}x the f32 abs tol",
                s.label
            );
            if 4 * big32 < dep {
                r32.failures.push(format!(
                    "{}: only {big32} of the {dep} entries the term depends on exceed {SIGNIFICANT}·abs tol",
                    r32.what
                ));
            }
            reports.extend([structure, r64, r32, rdir]);
        }
    }
    finish(reports);
}

#[test]
fn gradcheck_task() {
    gradcheck(Term::Task);
}

#[test]
fn gradcheck_transport() {
    gradcheck(Term::Transport);
}

#[test]
fn gradcheck_density() {
    gradcheck(Term::Density);
}

#[test]
fn gradcheck_total() {
    gradcheck(Term::Total);
}
