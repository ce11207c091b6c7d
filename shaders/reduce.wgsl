// Loss reduction: acc[acc_idx] += (scale · h) · Σ src[src_off .. src_off + len], h the value at
// `scale_at` of the network's record of `hyper` (src/gpu/hyper.rs): its own transport
// normalisation, or the constant 1 where the factor is the same for every network (an exact no-op,
// so the product is the bits of the one factor that is not 1).
// The task loss's mean (`batch_mean`) multiplies by the network's own 1/B from its record of the
// step table (src/gpu/step_table.rs); a network that sits the recording out adds nothing.
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
    // 1: also times the network's 1/B (the step table's inv_rows).
    batch_mean: u32,
    step_at: u32,
    steps_ms: u32,
    _pad: u32,
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

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
@group(0) @binding(3) var<storage, read> hyper: array<f32>;
@group(0) @binding(4) var<storage, read> steps: array<StepRecord>;

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
    let rec = steps[p.step_at + wid.z * p.steps_ms];
    if (t == 0u && rec.rows > 0u) {
        let at = wid.z * p.acc_ms + p.acc_idx;
        // Where batch_mean is 0 the first factor is exactly 1 (no bit changes).
        let mean = select(1.0, rec.inv_rows, p.batch_mean == 1u);
        let scale = mean * p.scale * hyper[wid.z * p.hyper_ms + p.scale_at];
        acc[at] = acc[at] + scale * red[0];
    }
}
