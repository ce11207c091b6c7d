// Bias and sigmoid, the parts not fused into the matmul epilogue (see matmul.wgsl: the forward
// adds the bias and applies the sigmoid, the input gradient applies dz = da · a (1 - a)).
//
//   bias_grad     dbias (N) = Σ_rows dout (rows, N): one invocation per column, rows summed in order
//                 (the CPU's order, so the result is bit-identical). Written with `=` into dst.
//   mask_columns  x (rows, N) *= keep[keep_off + column]: switches neurons off for evaluation.

struct Params {
    rows: u32,
    n: u32,
    src_off: u32,
    dst_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.n) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s = s + src[p.src_off + r * p.n + j];
    }
    dst[p.dst_off + j] = s;
}

// Here src is the keep mask and dst the activations.
@compute @workgroup_size(256)
fn mask_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let total = p.rows * p.n;
    for (var i = gid.x; i < total; i += nw.x * 256u) {
        dst[p.dst_off + i] = dst[p.dst_off + i] * src[p.src_off + i % p.n];
    }
}
