//! Logistic sigmoid after each hidden layer: `a = 1 / (1 + e^{-z})`, and its backward
//! `dz = da · a · (1 − a)`, written in terms of the output `a` so that `z` need not be kept.

/// `a · (1 − a)`: the derivative of the sigmoid at the input whose output is `a`.
#[inline(always)]
pub fn derivative_from_output(a: f32) -> f32 {
    a * (1.0 - a)
}
