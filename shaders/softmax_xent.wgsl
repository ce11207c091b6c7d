// Multi-head softmax cross-entropy, forward and backward fused, heads of any sizes.
//
// logits (B, W): head h owns columns head_offsets[h] .. head_offsets[h+1] (heads + 1 offsets, the
// last = W). labels (B, H) i32, negative = no label for that head (loss and gradient 0: the
// sequential mode's mask). One invocation per example writes
//   dlogits[r, :] = (softmax - onehot) / B   (`=`, every element)
//   row_loss[loss_off + r] = Σ_labelled heads (log Σ exp(z - max) - (z_label - max))
// The mean over B is taken by the loss reduction (reduce.wgsl, scale 1/B).
// B is the network's own rows, from its record of the step table (src/gpu/step_table.rs); the
// dispatch covers the recording's largest batch, and a row past the network's own is treated as
// unlabelled (no loss, zero gradient).

struct Params {
    b: u32,
    heads: u32,
    width: u32,
    loss_off: u32,
    // Per-model strides (see matmul.wgsl; `dlogits` has the stride of `logits`); model =
    // workgroup z. The head offsets are shared.
    logits_ms: u32,
    labels_ms: u32,
    row_loss_ms: u32,
    // The recording's first record in the step table, and its per-model stride.
    step_at: u32,
    steps_ms: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct StepRecord {
    rows: u32,
    first: u32,
    mode: u32,
    inv_rows: f32,
    c1: f32,
    c2: f32,
    _pad0: u32,
    _pad1: u32,
}

const NO_LABEL: i32 = -1;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read> head_offsets: array<u32>;
@group(0) @binding(6) var<storage, read> steps: array<StepRecord>;

@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.b) {
        return;
    }
    let rows = steps[p.step_at + gid.z * p.steps_ms].rows;
    let inv_b = 1.0 / f32(max(rows, 1u));
    let lm = gid.z * p.logits_ms;
    var loss = 0.0;
    for (var h = 0u; h < p.heads; h++) {
        let base = lm + r * p.width + head_offsets[h];
        let classes = head_offsets[h + 1u] - head_offsets[h];
        let label = select(NO_LABEL, labels[gid.z * p.labels_ms + r * p.heads + h], r < rows);
        if (label < 0) {
            for (var k = 0u; k < classes; k++) {
                dlogits[base + k] = 0.0;
            }
            continue;
        }
        var mx = logits[base];
        for (var k = 1u; k < classes; k++) {
            mx = max(mx, logits[base + k]);
        }
        var sum = 0.0;
        for (var k = 0u; k < classes; k++) {
            sum = sum + exp(logits[base + k] - mx);
        }
        loss = loss + (log(sum) - (logits[base + u32(label)] - mx));
        for (var k = 0u; k < classes; k++) {
            let prob = exp(logits[base + k] - mx) / sum;
            let onehot = select(0.0, 1.0, k == u32(label));
            dlogits[base + k] = (prob - onehot) * inv_b;
        }
    }
    row_loss[gid.z * p.row_loss_ms + p.loss_off + r] = loss;
}
