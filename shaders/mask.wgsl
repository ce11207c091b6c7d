// Evaluation mask: acts (rows, N) *= keep[keep_off + column], switching neurons off (the lesion
// and split analyses). Dispatched after a layer's forward only when a mask is given.
// Grid-stride loop, so any layer size fits in the dispatch limits.

struct Params {
    rows: u32,
    n: u32,
    keep_off: u32,
    // Per-model stride of `acts` (see matmul.wgsl); model = workgroup z. The mask is shared.
    acts_ms: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keep: array<f32>;
@group(0) @binding(2) var<storage, read_write> acts: array<f32>;

@compute @workgroup_size(256)
fn mask_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let total = p.rows * p.n;
    for (var i = gid.x; i < total; i += nw.x * 256u) {
        let at = gid.z * p.acts_ms + i;
        acts[at] = acts[at] * keep[p.keep_off + i % p.n];
    }
}
