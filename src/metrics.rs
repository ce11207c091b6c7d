//! Accuracy of a network's logits against labels, shared by training, evaluation and the split.

use crate::backend::Backend;
use crate::data::batches::TestSet;
use crate::model::NeuronMask;
use anyhow::Result;

/// For each head (head `h` owning logits `offsets[h]..offsets[h + 1]` of each row), the number of
/// labelled examples whose argmax over that head is the label
/// (a tie goes to the lower class), and the number of labelled examples: `(correct, total)`.
pub fn count_correct(logits: &[f32], labels: &[i32], b: usize, offsets: &[usize]) -> Vec<(u64, u64)> {
    let heads = offsets.len() - 1;
    let width = offsets[heads];
    let mut counts = vec![(0u64, 0u64); heads];
    for r in 0..b {
        for (h, count) in counts.iter_mut().enumerate() {
            let label = labels[r * heads + h];
            if label < 0 {
                continue;
            }
            let z = &logits[r * width + offsets[h]..r * width + offsets[h + 1]];
            let argmax = z
                .iter()
                .enumerate()
                .fold(0, |best, (k, &v)| if v > z[best] { k } else { best });
            count.1 += 1;
            if argmax == label as usize {
                count.0 += 1;
            }
        }
    }
    counts
}

/// Per-task test accuracy of the backend's current model, with `keep` switching neurons off.
pub fn evaluate(backend: &mut dyn Backend, test: &TestSet, keep: Option<&NeuronMask>) -> Result<Vec<f64>> {
    let model = backend.model_config().clone();
    let logits = backend.logits(&test.inputs, test.len, keep)?;
    let counts = count_correct(&logits, &test.labels, test.len, &model.head_offsets());
    Ok(counts
        .iter()
        .map(|&(c, n)| if n == 0 { 0.0 } else { c as f64 / n as f64 })
        .collect())
}
