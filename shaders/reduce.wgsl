// Loss reduction: acc[acc_idx] += (scale · h) · Σ src[src_off .. src_off + len], h the value at
// `scale_at` of the network's record of `hyper` (src/gpu/hyper.rs): its own transport
// normalisation, or the constant 1 where the factor is the same for every network (an exact no-op,
// so the product is the bits of the one factor that is not 1).
// One workgroup of 256 invocations, a strided sum then a tree in workgroup memory (deterministic).
// The accumulator lives on the device across steps and is read back only when the losses are
// logged (GpuBackend::take_losses), which divides by the number of steps.

struct Params {
    src_off: u32,
    len: u32,
    acc_idx: u32,
    scale: f32,
    // Per-model strides (see matmul.wgsl); model = workgroup z.
    src_ms: u32,
    acc_ms: u32,
    scale_at: u32,
    hyper_ms: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(3) var<storage, read> hyper: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn reduce_sum(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < p.len; i += 256u) {
        s = s + src[wid.z * p.src_ms + p.src_off + i];
    }
    red[t] = s;
    for (var h = 128u; h > 0u; h = h / 2u) {
        workgroupBarrier();
        if (t < h) {
            red[t] = red[t] + red[t + h];
        }
    }
    workgroupBarrier();
    if (t == 0u) {
        let at = wid.z * p.acc_ms + p.acc_idx;
        let scale = p.scale * hyper[wid.z * p.hyper_ms + p.scale_at];
        acc[at] = acc[at] + scale * red[0];
    }
}
