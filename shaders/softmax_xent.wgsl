// Multi-head softmax cross-entropy, forward and backward fused, heads of any sizes.
//
// logits (B, W): head h owns columns head_offsets[h] .. head_offsets[h+1] (heads + 1 offsets, the
// last = W). labels (B, H) i32, negative = no label for that head (loss and gradient 0: the
// sequential mode's mask). One invocation per example writes
//   dlogits[r, :] = (softmax - onehot) / B   (`=`, every element)
//   row_loss[loss_off + r] = Σ_labelled heads (log Σ exp(z - max) - (z_label - max))
// The mean over B is taken by the loss reduction (reduce.wgsl, scale 1/B).

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
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(5) var<storage, read> head_offsets: array<u32>;

@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.b) {
        return;
    }
    let inv_b = 1.0 / f32(p.b);
    let lm = gid.z * p.logits_ms;
    var loss = 0.0;
    for (var h = 0u; h < p.heads; h++) {
        let base = lm + r * p.width + head_offsets[h];
        let classes = head_offsets[h + 1u] - head_offsets[h];
        let label = labels[gid.z * p.labels_ms + r * p.heads + h];
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
