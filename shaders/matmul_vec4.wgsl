// The tiled and split-K matmuls of matmul.wgsl with vec4 loads: C (M, N) = epilogue(A (M, K) · B (K, N)),
// the same operands, epilogue and bindings (read the header of matmul.wgsl first).
//
// A and B are bound here as array<vec4<f32>>: one load brings 4 consecutive floats. That is only
// right when every vec4 an invocation reads starts at a multiple of 4 floats, so the host
// (`MatmulArgs::vec4_ok` in src/gpu/matmul.rs) runs these entry points only when each operand is
//   contiguous in k     (A: a_cs = 1, B: b_rs = 1) with its other stride and offset multiples of 4, or
//   contiguous in M / N (A: a_rs = 1, B: b_cs = 1) with its k stride and offset multiples of 4,
// and falls back to the scalar kernel (same tile) otherwise. Every storage buffer of the engine is a
// whole number of vec4s (`buffers::storage`), so the vec4 holding an operand's last float is in
// the buffer. Floats of a vec4 past K are replaced by zero; rows/columns past M/N are clamped on
// load and never stored. The bind group layout is the same as matmul.wgsl's (same bindings, same
// access), so one bind group serves both shaders' pipelines.
//
// Entry points:
//   mm_tiled_vec4    mm_tiled (64x64 tile, K steps of 16), each invocation loading one vec4 of A's
//                    tile and one of B's per step.
//   mm_splitk_vec4   mm_splitk (16x16 tile, 16 K-slices summed in a fixed order), one vec4 of each
//                    operand per invocation per step of 64 k.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

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

// Four floats of an operand's tile and where they go: (kk, i) is the first one's k within the
// tile and row (A) or column (B) within the tile; the other three follow along k (`along_k`) or
// along the rows/columns.
struct Load4 {
    v: vec4<f32>,
    kk: u32,
    i: u32,
    along_k: bool,
}

// Zero for the floats of v whose k (k, k + 1, k + 2, k + 3) is past K.
fn mask_k(v: vec4<f32>, k: u32) -> vec4<f32> {
    let keep = vec4<bool>(k < p.k, k + 1u < p.k, k + 2u < p.k, k + 3u < p.k);
    return select(vec4<f32>(0.0), v, keep);
}

// The vec4 number q (of 256) of A's tile of `rows` rows x `tk` k at (row0, k0).
fn load_a4(q: u32, row0: u32, k0: u32, rows: u32, tk: u32) -> Load4 {
    if (p.a_cs == 1u) {
        let per_row = tk / 4u;
        let kk = 4u * (q % per_row);
        let i = q / per_row;
        let k = k0 + kk;
        let v = a[(a_row(row0 + i) + min(k, (p.k - 1u) & ~3u)) / 4u];
        return Load4(mask_k(v, k), kk, i, true);
    }
    let per_k = rows / 4u;
    let i = 4u * (q % per_k);
    let kk = q / per_k;
    let k = k0 + kk;
    let r = min(row0 + i, (p.m - 1u) & ~3u);
    let v = a[(p.a_off + mdl * p.a_ms + min(k, p.k - 1u) * p.a_cs + r) / 4u];
    return Load4(select(vec4<f32>(0.0), v, k < p.k), kk, i, false);
}

// The vec4 number q (of 256) of B's tile of `tk` k x `cols` columns at (k0, col0).
fn load_b4(q: u32, col0: u32, k0: u32, cols: u32, tk: u32) -> Load4 {
    if (p.b_rs == 1u) {
        let per_col = tk / 4u;
        let kk = 4u * (q % per_col);
        let i = q / per_col;
        let k = k0 + kk;
        let v = b[(b_col(col0 + i) + min(k, (p.k - 1u) & ~3u)) / 4u];
        return Load4(mask_k(v, k), kk, i, true);
    }
    let per_k = cols / 4u;
    let i = 4u * (q % per_k);
    let kk = q / per_k;
    let k = k0 + kk;
    let col = min(col0 + i, (p.n - 1u) & ~3u);
    let v = b[(p.b_off + mdl * p.b_ms + min(k, p.k - 1u) * p.b_rs + col) / 4u];
    return Load4(select(vec4<f32>(0.0), v, k < p.k), kk, i, false);
}

const TILE: u32 = 64u;
const TK: u32 = 16u;
// k-major with a padded row: as_tile[kk * TS + row], bs_tile[kk * TS + col].
const TS: u32 = 65u;
var<workgroup> as_tile: array<f32, 1040>;
var<workgroup> bs_tile: array<f32, 1040>;

@compute @workgroup_size(16, 16)
fn mm_tiled_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    mdl = wid.z;
    let tx = lid.x;
    let ty = lid.y;
    let flat = ty * 16u + tx;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        let la = load_a4(flat, row0, k0, TILE, TK);
        let oa = la.kk * TS + la.i;
        let sa = select(1u, TS, la.along_k);
        as_tile[oa] = la.v.x;
        as_tile[oa + sa] = la.v.y;
        as_tile[oa + 2u * sa] = la.v.z;
        as_tile[oa + 3u * sa] = la.v.w;
        let lb = load_b4(flat, col0, k0, TILE, TK);
        let ob = lb.kk * TS + lb.i;
        let sb = select(1u, TS, lb.along_k);
        bs_tile[ob] = lb.v.x;
        bs_tile[ob + sb] = lb.v.y;
        bs_tile[ob + 2u * sb] = lb.v.z;
        bs_tile[ob + 3u * sb] = lb.v.w;
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

const SK_TILE: u32 = 16u;
const SK_STEP: u32 = 64u;
// Two 64 x 16 tiles, k-major (A at [0, 1024), B at [1024, 2048)), reused for the slice sums.
var<workgroup> sk_mem: array<f32, 2048>;

fn sk_store4(o: u32, v: vec4<f32>) {
    sk_mem[o] = v.x;
    sk_mem[o + 1u] = v.y;
    sk_mem[o + 2u] = v.z;
    sk_mem[o + 3u] = v.w;
}

fn sk_load4(o: u32) -> vec4<f32> {
    return vec4<f32>(sk_mem[o], sk_mem[o + 1u], sk_mem[o + 2u], sk_mem[o + 3u]);
}

@compute @workgroup_size(256)
fn mm_splitk_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) flat: u32) {
    mdl = wid.z;
    let s = flat / 16u;
    let tx = flat % 4u;
    let ty = (flat % 16u) / 4u;
    let row0 = wid.y * SK_TILE;
    let col0 = wid.x * SK_TILE;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += SK_STEP) {
        let la = load_a4(flat, row0, k0, SK_TILE, SK_STEP);
        let oa = la.kk * SK_TILE + la.i;
        let sa = select(1u, SK_TILE, la.along_k);
        sk_mem[oa] = la.v.x;
        sk_mem[oa + sa] = la.v.y;
        sk_mem[oa + 2u * sa] = la.v.z;
        sk_mem[oa + 3u * sa] = la.v.w;
        let lb = load_b4(flat, col0, k0, SK_TILE, SK_STEP);
        let ob = 1024u + lb.kk * SK_TILE + lb.i;
        let sb = select(1u, SK_TILE, lb.along_k);
        sk_mem[ob] = lb.v.x;
        sk_mem[ob + sb] = lb.v.y;
        sk_mem[ob + 2u * sb] = lb.v.z;
        sk_mem[ob + 3u * sb] = lb.v.w;
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
    // The same fixed-order tree over the 16 slices as mm_splitk.
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
