//! Dense layer: `out (B, OC) = inp (B, C) · weight (OC, C)ᵀ + bias (OC)`, row-major, and its three
//! products (forward, weight gradient `doutᵀ · inp`, input gradient `dout · weight`).

use super::{expect_len, OpError};

/// The shape of one dense layer on a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub batch: usize,
    /// Inputs per example.
    pub c: usize,
    /// Outputs per example.
    pub oc: usize,
}

impl LinearShape {
    /// Multiply-adds of one product, counted as 2 FLOPs each.
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.c as f64 * self.oc as f64
    }

    /// The forward's operands must have the layer's sizes.
    pub fn check_forward(&self, inp: usize, weight: usize, bias: usize) -> Result<(), OpError> {
        expect_len("linear", "the input", inp, self.batch * self.c)?;
        expect_len("linear", "the weight", weight, self.oc * self.c)?;
        expect_len("linear", "the bias", bias, self.oc)
    }
}
