//! The hidden layers' activation `a = f(z)` (`config::Activation`) and its backward
//! `dz = da · f'(z)`, with `f'` written in terms of the output `a` so that `z` need not be kept:
//!
//! | activation | `a = f(z)` | `f'(z)` from `a` |
//! | --- | --- | --- |
//! | sigmoid | `1 / (1 + e^{-z})` | `a (1 − a)` |
//! | relu | `max(z, 0)` | `1` if `a > 0`, else `0` (so `0` at `z = 0`, as PyTorch) |
//! | tanh | `sign(z) (1 − t) / (1 + t)`, `t = e^{−2|z|}` | `1 − a²` |
//!
//! The tanh is computed from one exponential of a non-positive number on both backends (WGSL's
//! `tanh` may be `sinh/cosh`, which overflows to NaN for large `|z|`); its absolute error is a few
//! ulps of 1. The output layer has no activation (its values are the logits).

use crate::config::Activation;

/// `f'(z)` of the sigmoid at the input whose output is `a`: `a (1 − a)`.
#[inline(always)]
pub fn sigmoid_derivative(a: f32) -> f32 {
    a * (1.0 - a)
}

/// `f'(z)` of the relu at the input whose output is `a`: `1` where `a > 0`, else `0`.
#[inline(always)]
pub fn relu_derivative(a: f32) -> f32 {
    if a > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// `f'(z)` of the tanh at the input whose output is `a`: `1 − a²`.
#[inline(always)]
pub fn tanh_derivative(a: f32) -> f32 {
    1.0 - a * a
}

/// `f'(z)` of `act` at the input whose output is `a`.
#[inline(always)]
pub fn derivative_from_output(act: Activation, a: f32) -> f32 {
    match act {
        Activation::Sigmoid => sigmoid_derivative(a),
        Activation::Relu => relu_derivative(a),
        Activation::Tanh => tanh_derivative(a),
    }
}

/// The tanh of `z` from `t = e(−2|z|)`, `e` an exponential (`simd::exp` on the CPU; `matmul.wgsl`
/// writes the same formula): `(1 − t) / (1 + t)`, negated for `z < 0`.
#[inline(always)]
pub fn tanh_with(z: f32, e: impl Fn(f32) -> f32) -> f32 {
    let t = e(-2.0 * z.abs());
    let m = (1.0 - t) / (1.0 + t);
    if z < 0.0 {
        -m
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_from_the_output() {
        assert_eq!(derivative_from_output(Activation::Sigmoid, 0.5), 0.25);
        assert_eq!(derivative_from_output(Activation::Relu, 2.0), 1.0);
        assert_eq!(derivative_from_output(Activation::Relu, 0.0), 0.0);
        assert_eq!(derivative_from_output(Activation::Tanh, 0.5), 0.75);
        assert_eq!(derivative_from_output(Activation::Tanh, 0.0), 1.0);
    }

    #[test]
    fn tanh_is_exact_enough_and_finite_everywhere() {
        for z in [
            -100.0f32, -20.0, -3.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0, 20.0, 100.0,
        ] {
            let got = tanh_with(z, f32::exp);
            assert!(
                (got - z.tanh()).abs() <= 2e-7,
                "tanh({z}) = {got}, libm {}",
                z.tanh()
            );
        }
        assert_eq!(tanh_with(f32::INFINITY, f32::exp), 1.0);
        assert_eq!(tanh_with(f32::NEG_INFINITY, f32::exp), -1.0);
        assert!(tanh_with(f32::NAN, f32::exp).is_nan());
    }
}
