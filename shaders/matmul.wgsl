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
//   BIAS          v += bias[bias_off + c]                  (forward)
//   SIGMOID       v  = 1 / (1 + exp(-v))                   (forward of a hidden layer)
//   SIGMOID_GRAD  v *= y · (1 - y), y = aux[aux_off + r·N + c]  (input grad: dz = da · a (1 - a))
//   ACCUMULATE    C += v instead of C = v
//
// Variants (entry points), all correct for any M, N, K:
//   mm_naive     one output per invocation, workgroup 16x16.
//   mm_reg4x4    4x4 outputs per invocation straight from global memory, workgroup 8x8 (tile 32x32).
//   mm_reg8x8    8x8 outputs per invocation, workgroup 8x8 (tile 64x64).
//   mm_reg16x8   16 rows x 8 columns per invocation, workgroup 8x8 (tile 128x64): fastest on lavapipe.
//   mm_tiled     64x64 tile staged in workgroup memory (K in steps of 16), 16x16 invocations each
//                computing 4x4 outputs (rows ty + 16 i, columns tx + 16 j): what real GPUs want.
// Out-of-range rows/columns are clamped on load (always in bounds) and masked on store, so no
// branch sits in the inner loop.

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
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const BIAS: u32 = 1u;
const SIGMOID: u32 = 2u;
const SIGMOID_GRAD: u32 = 4u;
const ACCUMULATE: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

// Base offset of row r of A (clamped into range).
fn a_row(r: u32) -> u32 {
    return p.a_off + min(r, p.m - 1u) * p.a_rs;
}

// Base offset of column col of B (clamped into range).
fn b_col(col: u32) -> u32 {
    return p.b_off + min(col, p.n - 1u) * p.b_cs;
}

fn store(r: u32, col: u32, acc: f32) {
    if (r >= p.m || col >= p.n) {
        return;
    }
    var v = acc;
    if ((p.flags & BIAS) != 0u) {
        v = v + bias[p.bias_off + col];
    }
    if ((p.flags & SIGMOID) != 0u) {
        v = 1.0 / (1.0 + exp(-v));
    }
    if ((p.flags & SIGMOID_GRAD) != 0u) {
        let y = aux[p.aux_off + r * p.n + col];
        v = v * (y * (1.0 - y));
    }
    let idx = p.c_off + r * p.n + col;
    if ((p.flags & ACCUMULATE) != 0u) {
        v = c[idx] + v;
    }
    c[idx] = v;
}

@compute @workgroup_size(16, 16)
fn mm_naive(@builtin(global_invocation_id) gid: vec3<u32>) {
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

@compute @workgroup_size(8, 8)
fn mm_reg4x4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r0 = gid.y * 4u;
    let c0 = gid.x * 4u;
    var ar: array<u32, 4>;
    var bc: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        ar[i] = a_row(r0 + i);
        bc[i] = b_col(c0 + i);
    }
    var acc: array<f32, 16>;
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            av[i] = a[ar[i] + kk * p.a_cs];
            bv[i] = b[bc[i] + kk * p.b_rs];
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i * 4u + j] = acc[i * 4u + j] + av[i] * bv[j];
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(r0 + i, c0 + j, acc[i * 4u + j]);
        }
    }
}

@compute @workgroup_size(8, 8)
fn mm_reg8x8(@builtin(global_invocation_id) gid: vec3<u32>) {
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
// k-major: as_tile[kk * TILE + row], bs_tile[kk * TILE + col].
var<workgroup> as_tile: array<f32, 1024>;
var<workgroup> bs_tile: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn mm_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let flat = ty * 16u + tx;
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // 1024 elements of each tile, 4 per invocation; consecutive invocations walk along k.
        for (var e = 0u; e < 4u; e++) {
            let idx = flat + e * 256u;
            let kk = idx % TK;
            let rc = idx / TK;
            let kg = k0 + kk;
            let inside = kg < p.k;
            let kc = min(kg, p.k - 1u);
            let av = a[a_row(row0 + rc) + kc * p.a_cs];
            let bv = b[b_col(col0 + rc) + kc * p.b_rs];
            as_tile[kk * TILE + rc] = select(0.0, av, inside);
            bs_tile[kk * TILE + rc] = select(0.0, bv, inside);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = as_tile[kk * TILE + ty + 16u * i];
                bv[i] = bs_tile[kk * TILE + tx + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = acc[i * 4u + j] + av[i] * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(row0 + ty + 16u * i, col0 + tx + 16u * j, acc[i * 4u + j]);
        }
    }
}
