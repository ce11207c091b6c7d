// Dense-layer matrix products: C (M, N) = epilogue(A (M, K) · B (K, N)).
//
// Every operand is addressed through (element offset, row stride, column stride) so that the three
// products of a dense layer are the same kernel (inp is (B, C), weight is (OC, C), dout is (B, OC)):
//   forward       out  (B, OC) = inp  (B, C)  · weightᵀ        A = inp,   B = weight viewed (C, OC)
//   input grad    dinp (B, C)  = dout (B, OC) · weight         A = dout,  B = weight
//   weight grad   dW   (OC, C) = doutᵀ        · inp (B, C)      A = dout viewed (OC, B), B = inp
// The output C is row-major with row stride N, starting at c_off.
//
// Epilogue flags, applied in this order to each output v = Σ_k A[r,k]·B[k,c]:
//   BIAS           v += bias[bias_off + c]                  (forward)
//   ACTIVATE       v  = f(v)                                (forward of a hidden layer)
//   ACTIVATE_GRAD  v *= f'(z) from y = aux[aux_off + r·N + c] = f(z)  (input grad: dz = da · f'(z))
//   ACCUMULATE     C += v instead of C = v
// The activation f is `act` (src/ops/activation.rs, the CPU twin src/cpu/activation.rs):
//   SIGMOID  f(z) = 1 / (1 + exp(-z))                      f' = y (1 - y)
//   RELU     f(z) = max(z, 0) (NaN stays NaN)              f' = 1 if y > 0, else 0
//   TANH     f(z) = sign(z) (1 - t) / (1 + t), t = exp(-2|z|)   f' = 1 - y²
// (the tanh from an exponential of a non-positive number: WGSL's `tanh` may be sinh/cosh, which
// overflows to NaN for large |z|).
//
// Variants (entry points), all correct for any M, N, K:
//   mm_naive     one output per invocation, workgroup 16x16.
//   mm_reg4x4    4x4 outputs per invocation straight from global memory, workgroup 8x8 (tile 32x32),
//                vec4 accumulators.
//   mm_reg8x8    8x8 outputs per invocation, workgroup 8x8 (tile 64x64).
//   mm_reg16x8   16 rows x 8 columns per invocation, workgroup 8x8 (tile 128x64): fastest on lavapipe.
//   mm_tiled     64x64 tile staged in workgroup memory (K in steps of 16, rows padded to 65 floats
//                against bank conflicts), 16x16 invocations each computing 4x4 outputs (rows
//                ty + 16 i, columns tx + 16 j) in vec4 accumulators: what real GPUs want.
//   mm_splitk    16x16 tile, K split over 16 slices inside the workgroup, summed in a fixed order
//                (tall-K products with few outputs; see its comment).
// shaders/matmul_vec4.wgsl holds the same kernels with vec4 loads (mm_tiled_vec4, mm_splitk_vec4),
// for operands aligned to 4 floats; everything between the `shared` markers below is identical in
// both files (tests/gpu_shaders.rs checks it).
// Out-of-range rows/columns are clamped on load (always in bounds) and masked on store, so no
// branch sits in the inner loop.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

// ---- shared by matmul.wgsl and matmul_vec4.wgsl: begin ----
struct Params {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    c_off: u32,
    bias_off: u32,
    aux_off: u32,
    act: u32,
    // Per-model strides (elements) of each operand: model `z` of a population reads and writes
    // its own copy at `+ z * stride` (0 for a buffer the models share). See src/gpu/kernel.rs.
    a_ms: u32,
    b_ms: u32,
    c_ms: u32,
    bias_ms: u32,
    aux_ms: u32,
    _pad: u32,
}

const BIAS: u32 = 1u;
const ACTIVATE: u32 = 2u;
const ACTIVATE_GRAD: u32 = 4u;
const ACCUMULATE: u32 = 8u;

// Values of `act`.
const SIGMOID: u32 = 0u;
const RELU: u32 = 1u;
const TANH: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

// The model of a population this invocation computes: the workgroup's z (0 for one network).
var<private> mdl: u32;

// Base offset of row r of A (clamped into range).
fn a_row(r: u32) -> u32 {
    return p.a_off + mdl * p.a_ms + min(r, p.m - 1u) * p.a_rs;
}

// Base offset of column col of B (clamped into range).
fn b_col(col: u32) -> u32 {
    return p.b_off + mdl * p.b_ms + min(col, p.n - 1u) * p.b_cs;
}

// f(z), the activation `act`.
fn activate(z: f32) -> f32 {
    if (p.act == RELU) {
        return select(z, 0.0, z < 0.0);
    }
    if (p.act == TANH) {
        let t = exp(-2.0 * abs(z));
        let m = (1.0 - t) / (1.0 + t);
        return select(m, -m, z < 0.0);
    }
    return 1.0 / (1.0 + exp(-z));
}

// f'(z) of the activation `act`, from its output y = f(z).
fn activate_grad(y: f32) -> f32 {
    if (p.act == RELU) {
        return select(0.0, 1.0, y > 0.0);
    }
    if (p.act == TANH) {
        return 1.0 - y * y;
    }
    return y * (1.0 - y);
}

fn store(r: u32, col: u32, acc: f32) {
    if (r >= p.m || col >= p.n) {
        return;
    }
    var v = acc;
    if ((p.flags & BIAS) != 0u) {
        v = v + bias[p.bias_off + mdl * p.bias_ms + col];
    }
    if ((p.flags & ACTIVATE) != 0u) {
        v = activate(v);
    }
    if ((p.flags & ACTIVATE_GRAD) != 0u) {
        let y = aux[p.aux_off + mdl * p.aux_ms + r * p.n + col];
        v = v * activate_grad(y);
    }
    let idx = p.c_off + mdl * p.c_ms + r * p.n + col;
    if ((p.flags & ACCUMULATE) != 0u) {
        v = c[idx] + v;
    }
    c[idx] = v;
}

// Stores v.x..v.w at columns col, col + step, col + 2 step, col + 3 step of row r.
fn store_row(r: u32, col: u32, step: u32, v: vec4<f32>) {
    store(r, col, v.x);
    store(r, col + step, v.y);
    store(r, col + 2u * step, v.z);
    store(r, col + 3u * step, v.w);
}
// ---- shared by matmul.wgsl and matmul_vec4.wgsl: end ----

@compute @workgroup_size(16, 16)
fn mm_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
    mdl = gid.z;
    let col = gid.x;
    let r = gid.y;
    let ar = a_row(r);
    let bc = b_col(col);
    var acc = 0.0;
    for (var kk = 0u; kk < p.k; kk++) {
        acc = acc + a[ar + kk * p.a_cs] * b[bc + kk * p.b_rs];
    }
    store(r, col, acc);
}

// 4x4 block with one vec4 accumulator per row and no dynamically indexed arrays (which
// drivers may place in slow local memory).
@compute @workgroup_size(8, 8)
fn mm_reg4x4(@builtin(global_invocation_id) gid: vec3<u32>) {
    mdl = gid.z;
    let r0 = gid.y * 4u;
    let c0 = gid.x * 4u;
    let ar = vec4<u32>(a_row(r0), a_row(r0 + 1u), a_row(r0 + 2u), a_row(r0 + 3u));
    let bc = vec4<u32>(b_col(c0), b_col(c0 + 1u), b_col(c0 + 2u), b_col(c0 + 3u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk++) {
        let ao = kk * p.a_cs;
        let bo = kk * p.b_rs;
        let bv = vec4<f32>(b[bc.x + bo], b[bc.y + bo], b[bc.z + bo], b[bc.w + bo]);
        acc0 = acc0 + a[ar.x + ao] * bv;
        acc1 = acc1 + a[ar.y + ao] * bv;
        acc2 = acc2 + a[ar.z + ao] * bv;
        acc3 = acc3 + a[ar.w + ao] * bv;
    }
    store_row(r0, c0, 1u, acc0);
    store_row(r0 + 1u, c0, 1u, acc1);
    store_row(r0 + 2u, c0, 1u, acc2);
    store_row(r0 + 3u, c0, 1u, acc3);
}

@compute @workgroup_size(8, 8)
fn mm_reg8x8(@builtin(global_invocation_id) gid: vec3<u32>) {
    mdl = gid.z;
    let r0 = gid.y * 8u;
    let c0 = gid.x * 8u;
    var ar: array<u32, 8>;
    var bc: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        ar[i] = a_row(r0 + i);
        bc[i] = b_col(c0 + i);
    }
    var acc: array<f32, 64>;
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, 8>;
        var bv: array<f32, 8>;
        for (var i = 0u; i < 8u; i++) {
            av[i] = a[ar[i] + kk * p.a_cs];
            bv[i] = b[bc[i] + kk * p.b_rs];
        }
        for (var i = 0u; i < 8u; i++) {
            for (var j = 0u; j < 8u; j++) {
                acc[i * 8u + j] = acc[i * 8u + j] + av[i] * bv[j];
            }
        }
    }
    for (var i = 0u; i < 8u; i++) {
        for (var j = 0u; j < 8u; j++) {
            store(r0 + i, c0 + j, acc[i * 8u + j]);
        }
    }
}

@compute @workgroup_size(8, 8)
fn mm_reg16x8(@builtin(global_invocation_id) gid: vec3<u32>) {
    mdl = gid.z;
    let r0 = gid.y * 16u;
    let c0 = gid.x * 8u;
    var ar: array<u32, 16>;
    var bc: array<u32, 8>;
    for (var i = 0u; i < 16u; i++) {
        ar[i] = a_row(r0 + i);
    }
    for (var j = 0u; j < 8u; j++) {
        bc[j] = b_col(c0 + j);
    }
    var acc: array<f32, 128>;
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, 16>;
        var bv: array<f32, 8>;
        for (var i = 0u; i < 16u; i++) {
            av[i] = a[ar[i] + kk * p.a_cs];
        }
        for (var j = 0u; j < 8u; j++) {
            bv[j] = b[bc[j] + kk * p.b_rs];
        }
        for (var i = 0u; i < 16u; i++) {
            for (var j = 0u; j < 8u; j++) {
                acc[i * 8u + j] = acc[i * 8u + j] + av[i] * bv[j];
            }
        }
    }
    for (var i = 0u; i < 16u; i++) {
        for (var j = 0u; j < 8u; j++) {
            store(r0 + i, c0 + j, acc[i * 8u + j]);
        }
    }
}

const TILE: u32 = 64u;
const TK: u32 = 16u;
// k-major with a padded row: as_tile[kk * TS + row], bs_tile[kk * TS + col].
const TS: u32 = 65u;
var<workgroup> as_tile: array<f32, 1040>;
var<workgroup> bs_tile: array<f32, 1040>;

// Loads element e (of 1024) of a 16 x 64 tile: along k first when the operand is contiguous in k
// (stride 1), else along rows/columns, so that neighbouring invocations read neighbouring memory.
fn tile_coords(idx: u32, k_contiguous: bool) -> vec2<u32> {
    if (k_contiguous) {
        return vec2<u32>(idx % TK, idx / TK);
    }
    return vec2<u32>(idx / TILE, idx % TILE);
}

@compute @workgroup_size(16, 16)
fn mm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    mdl = wid.z;
    let tx = lid.x;
    let ty = lid.y;
    let flat = ty * 16u + tx;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let a_kc = p.a_cs == 1u;
    let b_kc = p.b_rs == 1u;
    // acc_i holds rows ty + 16 i, columns tx + 16 j in component j.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var e = 0u; e < 4u; e++) {
            let idx = flat + e * 256u;
            let ta = tile_coords(idx, a_kc);
            let ka = k0 + ta.x;
            let av = a[a_row(row0 + ta.y) + min(ka, p.k - 1u) * p.a_cs];
            as_tile[ta.x * TS + ta.y] = select(0.0, av, ka < p.k);
            let tb = tile_coords(idx, b_kc);
            let kb = k0 + tb.x;
            let bv = b[b_col(col0 + tb.y) + min(kb, p.k - 1u) * p.b_rs];
            bs_tile[tb.x * TS + tb.y] = select(0.0, bv, kb < p.k);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let ab = kk * TS + ty;
            let bb = kk * TS + tx;
            let bv = vec4<f32>(bs_tile[bb], bs_tile[bb + 16u], bs_tile[bb + 32u], bs_tile[bb + 48u]);
            acc0 = acc0 + as_tile[ab] * bv;
            acc1 = acc1 + as_tile[ab + 16u] * bv;
            acc2 = acc2 + as_tile[ab + 32u] * bv;
            acc3 = acc3 + as_tile[ab + 48u] * bv;
        }
        workgroupBarrier();
    }
    store_row(row0 + ty, col0 + tx, 16u, acc0);
    store_row(row0 + ty + 16u, col0 + tx, 16u, acc1);
    store_row(row0 + ty + 32u, col0 + tx, 16u, acc2);
    store_row(row0 + ty + 48u, col0 + tx, 16u, acc3);
}

// Split-K in the workgroup, for tall-K products with few outputs (the forward of a 1568-wide input
// layer: M = 256, N = 100, K = 1568, which 64x64 tiles cover with 8 workgroups). A workgroup owns a
// 16x16 output tile (so M = 256, N = 100 launch 112 workgroups) and its 256 invocations are 16
// K-slices of 16 invocations; each invocation computes 4x4 outputs (rows ty + 4 i, columns tx + 4 j)
// in vec4 accumulators over its slice. Per step the workgroup stages 64 k (16 rows x 64 k of A and
// 64 k x 16 columns of B) in workgroup memory; slice s takes k 4 s .. 4 s + 3 of each step. At the
// end the slices are summed in workgroup memory in a fixed tree (s += s + 8, then + 4, + 2, + 1),
// so the result does not depend on scheduling, and slice 0 applies the epilogue (`store`).
// One dispatch, no scratch buffer, and the workgroup's z stays free (for a model index later).
const SK_TILE: u32 = 16u;
const SK_STEP: u32 = 64u;
// Two 64 x 16 tiles, k-major (A at [0, 1024), B at [1024, 2048)), reused for the slice sums.
var<workgroup> sk_mem: array<f32, 2048>;

// Tile coordinates (kk, row/column) of element idx of a 64 (k) x 16 tile: along k first when the
// operand is contiguous in k, else along rows/columns, so that neighbouring invocations read
// neighbouring memory.
fn sk_coords(idx: u32, k_contiguous: bool) -> vec2<u32> {
    if (k_contiguous) {
        return vec2<u32>(idx % SK_STEP, idx / SK_STEP);
    }
    return vec2<u32>(idx / SK_TILE, idx % SK_TILE);
}

@compute @workgroup_size(256)
fn mm_splitk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) flat: u32) {
    mdl = wid.z;
    let s = flat / 16u;
    let tx = flat % 4u;
    let ty = (flat % 16u) / 4u;
    let row0 = wid.y * SK_TILE;
    let col0 = wid.x * SK_TILE;
    let a_kc = p.a_cs == 1u;
    let b_kc = p.b_rs == 1u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += SK_STEP) {
        for (var e = 0u; e < 4u; e++) {
            let idx = flat + e * 256u;
            let ta = sk_coords(idx, a_kc);
            let ka = k0 + ta.x;
            let av = a[a_row(row0 + ta.y) + min(ka, p.k - 1u) * p.a_cs];
            sk_mem[ta.x * SK_TILE + ta.y] = select(0.0, av, ka < p.k);
            let tb = sk_coords(idx, b_kc);
            let kb = k0 + tb.x;
            let bv = b[b_col(col0 + tb.y) + min(kb, p.k - 1u) * p.b_rs];
            sk_mem[1024u + tb.x * SK_TILE + tb.y] = select(0.0, bv, kb < p.k);
        }
        workgroupBarrier();
        for (var kk = 4u * s; kk < 4u * s + 4u; kk++) {
            let ab = kk * SK_TILE + ty;
            let bb = 1024u + kk * SK_TILE + tx;
            let bv = vec4<f32>(sk_mem[bb], sk_mem[bb + 4u], sk_mem[bb + 8u], sk_mem[bb + 12u]);
            acc0 = acc0 + sk_mem[ab] * bv;
            acc1 = acc1 + sk_mem[ab + 4u] * bv;
            acc2 = acc2 + sk_mem[ab + 8u] * bv;
            acc3 = acc3 + sk_mem[ab + 12u] * bv;
        }
        workgroupBarrier();
    }
    // Fixed-order tree over the 16 slices: slices h .. 2h - 1 write, slices 0 .. h - 1 add.
    let t = flat % 16u;
    for (var h = 8u; h > 0u; h = h / 2u) {
        if (s >= h && s < 2u * h) {
            let o = ((s - h) * 16u + t) * 16u;
            sk_store4(o, acc0);
            sk_store4(o + 4u, acc1);
            sk_store4(o + 8u, acc2);
            sk_store4(o + 12u, acc3);
        }
        workgroupBarrier();
        if (s < h) {
            let o = (s * 16u + t) * 16u;
            acc0 = acc0 + sk_load4(o);
            acc1 = acc1 + sk_load4(o + 4u);
            acc2 = acc2 + sk_load4(o + 8u);
            acc3 = acc3 + sk_load4(o + 12u);
        }
        workgroupBarrier();
    }
    if (s == 0u) {
        store_row(row0 + ty, col0 + tx, 4u, acc0);
        store_row(row0 + ty + 4u, col0 + tx, 4u, acc1);
        store_row(row0 + ty + 8u, col0 + tx, 4u, acc2);
        store_row(row0 + ty + 12u, col0 + tx, 4u, acc3);
    }
}

fn sk_store4(o: u32, v: vec4<f32>) {
    sk_mem[o] = v.x;
    sk_mem[o + 1u] = v.y;
    sk_mem[o + 2u] = v.z;
    sk_mem[o + 3u] = v.w;
}

fn sk_load4(o: u32) -> vec4<f32> {
    return vec4<f32>(sk_mem[o], sk_mem[o + 1u], sk_mem[o + 2u], sk_mem[o + 3u]);
}
