// The batch gather: builds a training batch on the device from the training sets, which live on
// the device as bytes, and the epoch's order (an index buffer). The CPU twin is
// `EpochOrder::fill_batch` (src/data/batches.rs); the two agree bit for bit (tests/gpu_engine.rs).
//
// `data` holds every task's training pixels as bytes, packed four to a u32 (little-endian), then
// every task's training labels, one u32 each. `sets` holds, per task t, four u32s at 4t:
//   [0] the byte offset of its first image in `data`, [1] pixels per image,
//   [2] the input column of its first pixel (concat; 0 otherwise), [3] the u32 offset of its labels,
// then at 4·tasks the 256 f32 values p/255 (as bits), computed on the host: the scaled pixel is a
// table lookup, so that it equals the CPU's `p as f32 / 255.0` exactly on any device (WGSL's f32
// division is only accurate to 2.5 ULP).
// `order` is the epoch's order (`EpochOrder::device_indices`): concat and mixed, `tasks` training
// indices per example (task order); sequential, (task, index) per example.
//
// Modes (METHOD.md, "Training"):
//   CONCAT      row = the tasks' images side by side; every head labelled.
//   MIXED       row = the images summed element-wise ((s(a)) + s(b) + ..., task order); every head labelled.
//   SEQUENTIAL  row = one task's image; its head labelled, the others -1 (no label).
//
// Each network reads its own record of the step table (src/gpu/step_table.rs): its rows, where its
// batch starts in its order and its mode. The dispatch covers the recording's largest batch; a row
// past the network's own is written empty (inputs 0, no label), so that it adds nothing.

struct Params {
    // Rows of the recording's largest batch (the dispatch), and the recording's first record in
    // the step table.
    b: u32,
    step_at: u32,
    // Input values per row (the model's input width) and labels per row (= tasks = heads).
    width: u32,
    tasks: u32,
    // Per-model strides (see matmul.wgsl); model = workgroup z. A population's models share the
    // training sets and each has its own order (its own seed) and batch.
    order_ms: u32,
    input_ms: u32,
    labels_ms: u32,
    steps_ms: u32,
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

const CONCAT: u32 = 0u;
const MIXED: u32 = 1u;
const SEQUENTIAL: u32 = 2u;
const NO_LABEL: i32 = -1;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(2) var<storage, read> sets: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> input: array<f32>;
@group(0) @binding(5) var<storage, read_write> labels: array<i32>;
@group(0) @binding(6) var<storage, read> steps: array<StepRecord>;

// Byte `i` of `data`.
fn byte_at(i: u32) -> u32 {
    return (data[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

// Pixel `k` of training image `index` of task `t`, scaled to [0, 1].
fn pixel(t: u32, index: u32, k: u32) -> f32 {
    let len = sets[4u * t + 1u];
    let v = byte_at(sets[4u * t] + index * len + k);
    return bitcast<f32>(sets[4u * p.tasks + v]);
}

// One invocation per input value: x = column, y = row.
@compute @workgroup_size(64)
fn gather_inputs(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let r = gid.y;
    if (col >= p.width || r >= p.b) {
        return;
    }
    let rec = steps[p.step_at + gid.z * p.steps_ms];
    let e = rec.first + r;
    let om = gid.z * p.order_ms;
    var v = 0.0;
    if (r >= rec.rows) {
        v = 0.0;
    } else if (rec.mode == SEQUENTIAL) {
        v = pixel(order[om + 2u * e], order[om + 2u * e + 1u], col);
    } else if (rec.mode == MIXED) {
        for (var t = 0u; t < p.tasks; t++) {
            v = v + pixel(t, order[om + e * p.tasks + t], col);
        }
    } else {
        for (var t = 0u; t < p.tasks; t++) {
            let c0 = sets[4u * t + 2u];
            let len = sets[4u * t + 1u];
            if (col >= c0 && col < c0 + len) {
                v = pixel(t, order[om + e * p.tasks + t], col - c0);
            }
        }
    }
    input[gid.z * p.input_ms + r * p.width + col] = v;
}

// One invocation per (row, head): x = head, y = row.
@compute @workgroup_size(64)
fn gather_labels(@builtin(global_invocation_id) gid: vec3<u32>) {
    let h = gid.x;
    let r = gid.y;
    if (h >= p.tasks || r >= p.b) {
        return;
    }
    let rec = steps[p.step_at + gid.z * p.steps_ms];
    let e = rec.first + r;
    let om = gid.z * p.order_ms;
    var label = NO_LABEL;
    if (r >= rec.rows) {
        label = NO_LABEL;
    } else if (rec.mode == SEQUENTIAL) {
        if (order[om + 2u * e] == h) {
            label = i32(data[sets[4u * h + 3u] + order[om + 2u * e + 1u]]);
        }
    } else {
        label = i32(data[sets[4u * h + 3u] + order[om + e * p.tasks + h]]);
    }
    labels[gid.z * p.labels_ms + r * p.tasks + h] = label;
}
