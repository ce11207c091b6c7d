//! Accuracy: for each head, the argmax of the head's logits against the row's label (a tie goes to
//! the lower class; a negative label, no label, does not count). [`count_correct`] is the
//! reference, used on the host by `metrics::evaluate`'s default path and the ablation; the GPU's
//! twin is `shaders/accuracy.wgsl`, which counts on the device (`gpu/evaluate.rs`).

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
