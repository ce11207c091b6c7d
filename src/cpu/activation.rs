//! The hidden layers' activation (`ops::activation`), applied in place after the dense layer, and
//! its backward. One loop per activation, chosen outside the loop, so that each vectorises.

use crate::config::Activation;
use crate::ops::activation::{relu_derivative, sigmoid_derivative, tanh_derivative, tanh_with};
use crate::simd::exp;

/// `x ← f(x)` element-wise, `f` the activation `act`.
pub fn activation_forward(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Sigmoid => sigmoid_forward(x),
        Activation::Relu => relu_forward(x),
        Activation::Tanh => tanh_forward(x),
    }
}

/// Given the layer's output `a = f(z)` and `da = dL/da`, writes `dz = da · f'(z)` over `da`, with
/// `f'` computed from `a` ([`crate::ops::activation::derivative_from_output`]).
pub fn activation_backward(act: Activation, da_to_dz: &mut [f32], a: &[f32]) {
    match act {
        Activation::Sigmoid => sigmoid_backward(da_to_dz, a),
        Activation::Relu => relu_backward(da_to_dz, a),
        Activation::Tanh => tanh_backward(da_to_dz, a),
    }
}

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
            *d *= sigmoid_derivative(y);
        }
    }
}

crate::multiversion! {
    /// `x ← max(x, 0)`, element-wise (a NaN stays NaN).
    pub fn relu_forward(x: &mut [f32]) {
        for v in x {
            *v = if *v < 0.0 { 0.0 } else { *v };
        }
    }
}

crate::multiversion! {
    /// Given `a = max(z, 0)` and `da`, writes `dz = da` where `a > 0`, else `0`, over `da`.
    pub fn relu_backward(da_to_dz: &mut [f32], a: &[f32]) {
        for (d, &y) in da_to_dz.iter_mut().zip(a) {
            *d *= relu_derivative(y);
        }
    }
}

crate::multiversion! {
    /// `x ← tanh x`, element-wise, from `e^{-2|x|}` (with [`exp`], so the loop vectorises).
    pub fn tanh_forward(x: &mut [f32]) {
        for v in x {
            *v = tanh_with(*v, exp);
        }
    }
}

crate::multiversion! {
    /// Given `a = tanh z` and `da`, writes `dz = da · (1 − a²)` over `da`.
    pub fn tanh_backward(da_to_dz: &mut [f32], a: &[f32]) {
        for (d, &y) in da_to_dz.iter_mut().zip(a) {
            *d *= tanh_derivative(y);
        }
    }
}
