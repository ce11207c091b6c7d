// Accuracy on the device: counts, per head, the rows whose argmax over the head's logits is the
// row's label. The CPU twin is `ops::accuracy::count_correct` (src/ops/accuracy.rs); the two agree
// exactly (tests/gpu_kernels.rs, tests/gpu_eval.rs).
//
// logits (B, W): head h owns columns head_offsets[h] .. head_offsets[h+1] (heads + 1 offsets, the
// last = W). labels: the whole test set's labels (rows, H) i32, row r of the batch at row
// first + r; negative = no label for that head (the row does not count for it). One invocation
// per row; for each labelled head it adds 1 to the head's total and, when the argmax is the label,
// 1 to its correct count:
//   counts[2h] = correct, counts[2h + 1] = total   (u32, added over every batch of an evaluation)
// The argmax keeps the first maximum (a later logit replaces it only if strictly greater), so a
// tie goes to the lower class, as on the CPU. Integer atomics add in any order to the same sum.

struct Params {
    // Rows of the batch, and the test set's row of its first row.
    b: u32,
    first: u32,
    heads: u32,
    width: u32,
    // Per-model strides (see matmul.wgsl); model = workgroup z. A population's networks each have
    // their logits and counts; the labels and head offsets are shared.
    logits_ms: u32,
    counts_ms: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> head_offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;

@compute @workgroup_size(64)
fn count_correct(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.b) {
        return;
    }
    let row = gid.z * p.logits_ms + r * p.width;
    let cm = gid.z * p.counts_ms;
    for (var h = 0u; h < p.heads; h++) {
        let label = labels[(p.first + r) * p.heads + h];
        if (label < 0) {
            continue;
        }
        let base = row + head_offsets[h];
        let classes = head_offsets[h + 1u] - head_offsets[h];
        var best = 0u;
        var top = logits[base];
        for (var k = 1u; k < classes; k++) {
            let v = logits[base + k];
            if (v > top) {
                best = k;
                top = v;
            }
        }
        atomicAdd(&counts[cm + 2u * h + 1u], 1u);
        if (best == u32(label)) {
            atomicAdd(&counts[cm + 2u * h], 1u);
        }
    }
}
