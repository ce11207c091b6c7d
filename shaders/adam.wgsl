// Adam over the whole flat parameter buffer, as src/cpu/adam.rs (torch.optim.Adam, no weight decay).
// With c1 = 1 − β1^t and c2 = 1 − β2^t computed on the host in f64 (AdamStep::corrections):
//   m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²,  p ← p − lr (m / c1) / (sqrt(v / c2) + eps).
// lr is the network's own (a population's networks may differ in it): `hyper[z * hyper_ms + lr_at]`
// (src/gpu/hyper.rs); c1 and c2 are those of the network's own step, from its record of the step
// table (src/gpu/step_table.rs), and a network that sits the recording out is left unchanged.
// Grid-stride loop, so any buffer length fits in the dispatch limits.

struct Params {
    n: u32,
    lr_at: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    // The recording's first record in the step table, and its per-model stride.
    step_at: u32,
    steps_ms: u32,
    // Per-model stride of the four buffers (see matmul.wgsl); model = workgroup z.
    params_ms: u32,
    hyper_ms: u32,
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

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> hyper: array<f32>;
@group(0) @binding(6) var<storage, read> steps: array<StepRecord>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let rec = steps[p.step_at + gid.z * p.steps_ms];
    if (rec.rows == 0u) {
        return;
    }
    let base = gid.z * p.params_ms;
    let lr = hyper[gid.z * p.hyper_ms + p.lr_at];
    for (var j = gid.x; j < p.n; j += nw.x * 256u) {
        let i = base + j;
        let g = grads[i];
        let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
        let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        let m_hat = mi / rec.c1;
        let v_hat = vi / rec.c2;
        params[i] = params[i] - lr * m_hat / (sqrt(v_hat) + p.eps);
    }
}
