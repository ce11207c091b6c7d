//! Evaluation mask: `act (B, N_l) *= keep_l[column]` after each layer, switching neurons off
//! (the lesion and split analyses). `keep[l]` has `N_l` entries for `l = 1..=L`.

use super::OpError;
use crate::model::NeuronMask;

/// The mask's layers `1..` flattened into one vector (layer `l` at `offsets(sizes)[l]`), after
/// checking that every layer has one entry per neuron.
pub fn flatten(keep: &NeuronMask, sizes: &[usize]) -> Result<Vec<f32>, OpError> {
    let mut flat = Vec::new();
    for (l, &n) in sizes.iter().enumerate().skip(1) {
        match keep.get(l) {
            Some(k) if k.len() == n => flat.extend_from_slice(k),
            Some(k) => {
                return Err(OpError::new(
                    "mask",
                    format!(
                        "the neuron mask of layer {l} has {} entries, the layer has {n} neurons",
                        k.len()
                    ),
                ))
            }
            None => {
                return Err(OpError::new(
                    "mask",
                    format!("the neuron mask has no layer {l} (it must have {n} entries)"),
                ))
            }
        }
    }
    Ok(flat)
}

/// Where layer `l`'s entries start in [`flatten`]'s vector (index 0 unused).
pub fn offsets(sizes: &[usize]) -> Vec<usize> {
    let mut offs = vec![0; sizes.len()];
    let mut at = 0;
    for l in 1..sizes.len() {
        offs[l] = at;
        at += sizes[l];
    }
    offs
}
