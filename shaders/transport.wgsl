// Transport cost of one layer, forward and backward fused (see src/cpu/transport.rs).
//
// T = scale · Σ_{j,i} φ(W[j,i]) · d_ji, d_ji = ‖p_out(j) − p_in(i)‖, φ(w) = |w| (l1) or w² (l2),
// scale = 1/N_l (paper) or 1/(N_{l-1} N_l) (mean). W is (OC, C), p_in (C, 2), p_out (OC, 2), all in
// the flat parameter buffer; their gradients sit at the same offsets of the flat gradient buffer.
// Gradients are accumulated with `+=`, scaled by g = coeff · scale (coeff: T's weight in the loss).
// g and the choice of φ are the network's own: read from its record of `hyper` (src/gpu/hyper.rs)
// at `g_at` and `l2_at`, so that the networks of a population may differ in alpha and the norms:
//   dW[j,i]   += g · φ'(W[j,i]) · d_ji         (φ' = sign(w), 0 at 0, or 2w)
//   dp_out(j) += g · Σ_i φ(W[j,i]) (p_out(j) − p_in(i)) / d_ji
//   dp_in(i)  −= g · Σ_j φ(W[j,i]) (p_out(j) − p_in(i)) / d_ji
// a zero distance adding no position gradient.
//
//   transport_rows  one workgroup per output neuron j: dW row j, dp_out(j), and the row sum
//                   Σ_i φ d into partials[partial_off + j] (the loss reduction multiplies by scale).
//   transport_cols  one workgroup per input neuron i: dp_in(i).

struct Params {
    c: u32,
    oc: u32,
    w_off: u32,
    pin_off: u32,
    pout_off: u32,
    partial_off: u32,
    // Where g and the l2 flag sit in a network's record of `hyper`.
    l2_at: u32,
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

fn phi(w: f32, l2: bool) -> f32 {
    if (l2) {
        return w * w;
    }
    return abs(w);
}

fn dphi(w: f32, l2: bool) -> f32 {
    if (l2) {
        return 2.0 * w;
    }
    return sign(w);
}

// Network z's g and weight norm.
fn g_of(z: u32) -> f32 {
    return hyper[z * p.hyper_ms + p.g_at];
}

fn l2_of(z: u32) -> bool {
    return hyper[z * p.hyper_ms + p.l2_at] != 0.0;
}

// Tree sum of red[0..64] into red[0]; every invocation must call it.
fn reduce(t: u32) {
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if (t < s) {
            red[t] = red[t] + red[t + s];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(64)
fn transport_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = wid.x;
    let t = lid.x;
    let mo = wid.z * p.params_ms;
    let g = g_of(wid.z);
    let l2 = l2_of(wid.z);
    let xj = params[mo + p.pout_off + 2u * j];
    let yj = params[mo + p.pout_off + 2u * j + 1u];
    var acc = vec3<f32>(0.0);
    for (var i = t; i < p.c; i += WG) {
        let w = params[mo + p.w_off + j * p.c + i];
        let dx = xj - params[mo + p.pin_off + 2u * i];
        let dy = yj - params[mo + p.pin_off + 2u * i + 1u];
        let d = sqrt(dx * dx + dy * dy);
        let f = phi(w, l2);
        acc.z = acc.z + f * d;
        grads[mo + p.w_off + j * p.c + i] = grads[mo + p.w_off + j * p.c + i] + g * dphi(w, l2) * d;
        if (d > 0.0) {
            acc.x = acc.x + g * f * dx / d;
            acc.y = acc.y + g * f * dy / d;
        }
    }
    red[t] = acc;
    reduce(t);
    if (t == 0u) {
        grads[mo + p.pout_off + 2u * j] = grads[mo + p.pout_off + 2u * j] + red[0].x;
        grads[mo + p.pout_off + 2u * j + 1u] = grads[mo + p.pout_off + 2u * j + 1u] + red[0].y;
        partials[wid.z * p.partials_ms + p.partial_off + j] = red[0].z;
    }
}

@compute @workgroup_size(64)
fn transport_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = wid.x;
    let t = lid.x;
    let mo = wid.z * p.params_ms;
    let g = g_of(wid.z);
    let l2 = l2_of(wid.z);
    let xi = params[mo + p.pin_off + 2u * i];
    let yi = params[mo + p.pin_off + 2u * i + 1u];
    var acc = vec3<f32>(0.0);
    for (var j = t; j < p.oc; j += WG) {
        let w = params[mo + p.w_off + j * p.c + i];
        let dx = params[mo + p.pout_off + 2u * j] - xi;
        let dy = params[mo + p.pout_off + 2u * j + 1u] - yi;
        let d = sqrt(dx * dx + dy * dy);
        if (d > 0.0) {
            let f = phi(w, l2);
            acc.x = acc.x + g * f * dx / d;
            acc.y = acc.y + g * f * dy / d;
        }
    }
    red[t] = acc;
    reduce(t);
    if (t == 0u) {
        grads[mo + p.pin_off + 2u * i] = grads[mo + p.pin_off + 2u * i] - red[0].x;
        grads[mo + p.pin_off + 2u * i + 1u] = grads[mo + p.pin_off + 2u * i + 1u] - red[0].y;
    }
}
