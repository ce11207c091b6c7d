//! Logistic sigmoid, applied in place after the dense layer, and its backward.

use crate::ops::sigmoid::derivative_from_output;
use crate::simd::exp;

crate::multiversion! {
    /// `x ← 1 / (1 + e^{-x})`, element-wise (with [`exp`], so the loop vectorises).
    pub fn sigmoid_forward(x: &mut [f32]) {
        for v in x {
            *v = 1.0 / (1.0 + exp(-*v));
        }
    }
}

crate::multiversion! {
    /// Given the layer's output `a = sigmoid(z)` and `da = dL/da`, writes `dz = da · a · (1 - a)` over `da`.
    pub fn sigmoid_backward(da_to_dz: &mut [f32], a: &[f32]) {
        for (d, &y) in da_to_dz.iter_mut().zip(a) {
            *d *= derivative_from_output(y);
        }
    }
}
