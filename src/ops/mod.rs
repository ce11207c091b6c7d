//! Op contracts, shared by both backends: for each op of the training step its shapes, its scale
//! factors and constants, and the checks of its inputs. `cpu/<op>.rs` and `gpu/<op>.rs` import
//! from here, so that a constant (say `1/N²` of the density cost) cannot drift between them.
//!
//! The checks return an [`OpError`] naming the op, the input and the sizes at fault; the backends
//! call them where data enters (one-off kernel runs, evaluation masks), not inside hot loops.

pub mod accuracy;
pub mod activation;
pub mod adam;
pub mod density;
pub mod linear;
pub mod mask;
pub mod reduce;
pub mod softmax_xent;
pub mod transport;

/// An op's input does not fit its contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {what}")]
pub struct OpError {
    /// The op, as its module is named (`linear`, `transport`, ...).
    pub op: &'static str,
    /// What is wrong, with the sizes involved.
    pub what: String,
}

impl OpError {
    pub fn new(op: &'static str, what: impl Into<String>) -> OpError {
        OpError {
            op,
            what: what.into(),
        }
    }
}

/// `Ok` when `input` of `op` holds exactly `want` elements.
pub fn expect_len(op: &'static str, input: &str, got: usize, want: usize) -> Result<(), OpError> {
    if got == want {
        Ok(())
    } else {
        Err(OpError::new(
            op,
            format!("{input} holds {got} values, the shape needs {want}"),
        ))
    }
}

/// `Ok` when `input` of `op` holds at least `want` elements (a buffer sized for a larger batch).
pub fn expect_at_least(op: &'static str, input: &str, got: usize, want: usize) -> Result<(), OpError> {
    if got >= want {
        Ok(())
    } else {
        Err(OpError::new(
            op,
            format!("{input} holds {got} values, the shape needs at least {want}"),
        ))
    }
}

/// The weights of one spatial layer's costs in the total loss: `alpha / |L|` for transport and
/// `beta / |L|` for density, `|L|` the number of spatial layers (at least 1).
pub fn spatial_weights(alpha: f32, beta: f32, spatial_layers: usize) -> (f32, f32) {
    let n = spatial_layers.max(1) as f32;
    (alpha / n, beta / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_op_and_sizes() {
        let shape = softmax_xent::SoftmaxXentShape {
            batch: 2,
            offsets: &[0, 3, 6],
        };
        assert!(shape.check(12, &[0, 2, -1, 1]).is_ok());
        let e = shape.check(12, &[0, 3, -1, 1]).unwrap_err();
        assert_eq!(e.op, "softmax_xent");
        assert!(e.to_string().contains("label 3 (example 0, head 1)"), "{e}");
        // Heads of 2 and 4 classes: 3 is a class of head 1 only.
        let unequal = softmax_xent::SoftmaxXentShape {
            batch: 2,
            offsets: &[0, 2, 6],
        };
        assert!(unequal.check(12, &[1, 3, -1, 0]).is_ok());
        let e = unequal.check(12, &[1, 3, 2, 0]).unwrap_err();
        assert!(
            e.to_string()
                .contains("label 2 (example 1, head 0) is not one of the 2 classes"),
            "{e}"
        );
        let bad = softmax_xent::SoftmaxXentShape {
            batch: 1,
            offsets: &[0, 2, 2],
        };
        assert!(bad.check(2, &[0, 0]).is_err());
        let e = shape.check(11, &[0, 0, 0, 0]).unwrap_err();
        assert!(
            e.to_string()
                .contains("logits holds 11 values, the shape needs 12"),
            "{e}"
        );
        let e = adam::check(3, 3, 2, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "adam: the first moment holds 2 values, the shape needs 3"
        );
        assert!(transport::check(2, 3, 6, 4, 6).is_ok());
        assert!(transport::check(2, 3, 6, 4, 5).is_err());
        assert!(density::check(4, 1, 9).is_ok());
        assert!(density::check(4, 2, 9).is_err());
        let shape = linear::LinearShape {
            batch: 2,
            c: 3,
            oc: 4,
        };
        assert!(shape.check_forward(6, 12, 4).is_ok());
        assert!(shape.check_forward(6, 12, 3).is_err());
    }

    #[test]
    fn mask_is_flattened_after_checking_each_layer() {
        let sizes = [3, 2, 1];
        let keep = vec![vec![], vec![1.0, 0.0], vec![1.0]];
        assert_eq!(mask::flatten(&keep, &sizes).unwrap(), vec![1.0, 0.0, 1.0]);
        assert_eq!(mask::offsets(&sizes), vec![0, 0, 2]);
        let short = vec![vec![], vec![1.0], vec![1.0]];
        let e = mask::flatten(&short, &sizes).unwrap_err();
        assert!(
            e.to_string()
                .contains("layer 1 has 1 entries, the layer has 2 neurons"),
            "{e}"
        );
        assert!(mask::flatten(&keep[..2].to_vec(), &sizes).is_err());
    }

    #[test]
    fn scales_are_the_formulas() {
        assert_eq!(density::density_scale(4), 1.0 / 16.0);
        assert_eq!(softmax_xent::inv_batch(8), 0.125);
        assert_eq!(
            transport::transport_scale(crate::config::TransportNorm::Paper, 3, 4),
            0.25
        );
        assert_eq!(
            transport::transport_scale(crate::config::TransportNorm::Mean, 2, 4),
            0.125
        );
        assert_eq!(spatial_weights(1.0, 3.0, 3), (1.0 / 3.0, 1.0));
        assert_eq!(spatial_weights(1.0, 3.0, 0), (1.0, 3.0));
        let slots = reduce::LossSlots { spatial: 3 };
        assert_eq!((slots.transport(0), slots.density(0), slots.len()), (1, 4, 7));
    }
}
