//! Accuracy of a network's logits against labels, shared by training, evaluation and the split.

use crate::backend::Backend;
use crate::data::batches::TestSet;
use crate::model::NeuronMask;
use anyhow::Result;

/// The counts themselves live with the op's contract (`ops::accuracy`), where the backends reach
/// them; re-exported here for the callers that count logits they hold (the ablation).
pub use crate::ops::accuracy::count_correct;

/// Per-task test accuracy of the backend's current model, with `keep` switching neurons off: the
/// counts of [`Backend::count_correct`] (the logits and [`count_correct`] on the host by default;
/// on the device for the GPU).
pub fn evaluate(backend: &mut dyn Backend, test: &TestSet, keep: Option<&NeuronMask>) -> Result<Vec<f64>> {
    let counts = backend.count_correct(test, keep)?;
    Ok(counts
        .iter()
        .map(|&(c, n)| if n == 0 { 0.0 } else { c as f64 / n as f64 })
        .collect())
}
