// Bias gradient of a dense layer: dbias (N) = Σ_rows dout (rows, N), written with `=` into the
// flat gradient buffer at dbias_off. One invocation per column, rows summed in order (the CPU's
// order, so the result is bit-identical). The bias add itself, the activation and its derivative
// are fused into the matmul epilogue (matmul.wgsl).

struct Params {
    rows: u32,
    n: u32,
    dbias_off: u32,
    // Per-model strides (see matmul.wgsl); model = workgroup z.
    dout_ms: u32,
    grads_ms: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.n) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s = s + dout[gid.z * p.dout_ms + r * p.n + j];
    }
    grads[gid.z * p.grads_ms + p.dbias_off + j] = s;
}
