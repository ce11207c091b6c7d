// Density cost of one layer, forward and backward fused (see src/cpu/density.rs).
//
// V = (1/N²) Σ_{j,k} exp(−d_jk) over all ordered pairs (self-pairs add the constant 1), p (N, 2)
// in the flat parameter buffer at p_off. One workgroup per neuron j:
//   dp(j) += g · Σ_k −2 exp(−d_jk) (p(j) − p(k)) / d_jk   (`+=`, g = coeff / N², zero distances skipped)
//   partials[partial_off + j] = Σ_k exp(−d_jk)            (the loss reduction multiplies by 1/N²)
// g is the network's own (beta may differ in a population): `hyper[z * hyper_ms + g_at]`
// (src/gpu/hyper.rs).

struct Params {
    n: u32,
    p_off: u32,
    partial_off: u32,
    // Per-model strides (see matmul.wgsl; `grads` has the stride of `params`); model =
    // workgroup z.
    params_ms: u32,
    g_at: u32,
    partials_ms: u32,
    hyper_ms: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read> hyper: array<f32>;

const WG: u32 = 64u;
var<workgroup> red: array<vec3<f32>, 64>;

@compute @workgroup_size(64)
fn density(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = wid.x;
    let t = lid.x;
    let po = wid.z * p.params_ms + p.p_off;
    let xj = params[po + 2u * j];
    let yj = params[po + 2u * j + 1u];
    var acc = vec3<f32>(0.0);
    for (var k = t; k < p.n; k += WG) {
        let dx = xj - params[po + 2u * k];
        let dy = yj - params[po + 2u * k + 1u];
        let d = sqrt(dx * dx + dy * dy);
        let e = exp(-d);
        acc.z = acc.z + e;
        if (d > 0.0) {
            acc.x = acc.x - 2.0 * e * dx / d;
            acc.y = acc.y - 2.0 * e * dy / d;
        }
    }
    red[t] = acc;
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if (t < s) {
            red[t] = red[t] + red[t + s];
        }
    }
    workgroupBarrier();
    if (t == 0u) {
        let g = hyper[wid.z * p.hyper_ms + p.g_at];
        grads[po + 2u * j] = grads[po + 2u * j] + g * red[0].x;
        grads[po + 2u * j + 1u] = grads[po + 2u * j + 1u] + g * red[0].y;
        partials[wid.z * p.partials_ms + p.partial_off + j] = red[0].z;
    }
}
