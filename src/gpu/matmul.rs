//! The dense layer's three products on the GPU (`shaders/matmul.wgsl`, `shaders/matmul_vec4.wgsl`):
//! variants and their dispatch geometry. Which variant runs is chosen by measurement in
//! `autotune.rs`.

use super::buffers::groups_for;
use super::context::GpuContext;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use crate::config::Activation;
use crate::ops::linear::LinearShape;
use anyhow::Result;
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "matmul.wgsl",
    src: include_str!("../../shaders/matmul.wgsl"),
};

/// The vec4-load kernels: same bindings, same uniform block, same epilogue as [`SHADER`].
pub const SHADER_VEC4: Shader = Shader {
    file: "matmul_vec4.wgsl",
    src: include_str!("../../shaders/matmul_vec4.wgsl"),
};

/// `struct Params` of `matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Params {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub c_off: u32,
    pub bias_off: u32,
    pub aux_off: u32,
    /// The activation of `ACTIVATE` and `ACTIVATE_GRAD` ([`activation_code`]).
    pub act: u32,
    /// Per-model strides, filled by the runtime for a population (`kernel::Dispatch::per_model`).
    pub a_ms: u32,
    pub b_ms: u32,
    pub c_ms: u32,
    pub bias_ms: u32,
    pub aux_ms: u32,
    pub _pad: u32,
}
crate::uniform!(Params = "Params" {
    m, n, k, flags, a_off, a_rs, a_cs, b_off, b_rs, b_cs, c_off, bias_off, aux_off, act,
    a_ms, b_ms, c_ms, bias_ms, aux_ms, _pad
});

pub const BIAS: u32 = 1;
/// Apply the activation `act` (forward of a hidden layer).
pub const ACTIVATE: u32 = 2;
/// Multiply by the activation's derivative, from the outputs in `aux` (input gradient).
pub const ACTIVATE_GRAD: u32 = 4;
pub const ACCUMULATE: u32 = 8;

/// The value of `Params::act` (`SIGMOID`, `RELU`, `TANH` in `matmul.wgsl`) for an activation; the
/// sigmoid is 0, so a zeroed block means the sigmoid.
pub fn activation_code(act: Activation) -> u32 {
    match act {
        Activation::Sigmoid => 0,
        Activation::Relu => 1,
        Activation::Tanh => 2,
    }
}

/// A matmul kernel (an entry point of `matmul.wgsl` or `matmul_vec4.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Naive,
    Reg4x4,
    Reg8x8,
    Reg16x8,
    Tiled,
    /// 16x16 output tile, K split over 16 slices inside the workgroup (tall-K, small-MN products).
    SplitK,
    /// `Tiled` with vec4 loads; runs as `Tiled` where the operands are not aligned to 4 floats.
    TiledVec4,
    /// `SplitK` with vec4 loads; runs as `SplitK` where the operands are not aligned to 4 floats.
    SplitKVec4,
}

impl Variant {
    pub const ALL: [Variant; 8] = [
        Variant::Naive,
        Variant::Reg4x4,
        Variant::Reg8x8,
        Variant::Reg16x8,
        Variant::Tiled,
        Variant::SplitK,
        Variant::TiledVec4,
        Variant::SplitKVec4,
    ];

    pub fn entry(self) -> &'static str {
        match self {
            Variant::Naive => "mm_naive",
            Variant::Reg4x4 => "mm_reg4x4",
            Variant::Reg8x8 => "mm_reg8x8",
            Variant::Reg16x8 => "mm_reg16x8",
            Variant::Tiled => "mm_tiled",
            Variant::SplitK => "mm_splitk",
            Variant::TiledVec4 => "mm_tiled_vec4",
            Variant::SplitKVec4 => "mm_splitk_vec4",
        }
    }

    /// The variant whose entry point is `entry` (for the autotune's disk cache).
    pub fn from_entry(entry: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.entry() == entry)
    }

    /// The file the entry point is in.
    pub fn shader(self) -> Shader {
        if self.is_vec4() {
            SHADER_VEC4
        } else {
            SHADER
        }
    }

    /// Whether the kernel loads its operands as vec4 (and so needs [`MatmulArgs::vec4_ok`]).
    pub fn is_vec4(self) -> bool {
        matches!(self, Variant::TiledVec4 | Variant::SplitKVec4)
    }

    /// The same kernel with scalar loads (itself for a scalar variant).
    pub fn scalar(self) -> Variant {
        match self {
            Variant::TiledVec4 => Variant::Tiled,
            Variant::SplitKVec4 => Variant::SplitK,
            v => v,
        }
    }

    /// Output rows and columns one workgroup covers.
    pub fn tile(self) -> (usize, usize) {
        match self {
            Variant::Naive => (16, 16),
            Variant::Reg4x4 => (32, 32),
            Variant::Reg8x8 => (64, 64),
            Variant::Reg16x8 => (128, 64),
            Variant::Tiled | Variant::TiledVec4 => (64, 64),
            Variant::SplitK | Variant::SplitKVec4 => (16, 16),
        }
    }

    pub fn pipeline(self, ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
        ctx.pipeline(self.shader(), self.entry())
    }
}

/// A matrix operand: element `(r, k)` at `off + r·rs + k·cs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operand {
    pub off: u32,
    pub rs: u32,
    pub cs: u32,
}

/// `C (m, n) = epilogue(A (m, k) · B (k, n))`; see `matmul.wgsl`. B's `rs` is its stride along k,
/// its `cs` along n. C is row-major with row stride n from `c_off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatmulArgs {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand,
    pub b: Operand,
    pub c_off: u32,
    pub bias_off: u32,
    pub aux_off: u32,
    pub flags: u32,
    /// The activation of the `ACTIVATE` and `ACTIVATE_GRAD` flags.
    pub act: Activation,
}

impl MatmulArgs {
    pub fn params(&self) -> Params {
        Params {
            m: self.m as u32,
            n: self.n as u32,
            k: self.k as u32,
            flags: self.flags,
            a_off: self.a.off,
            a_rs: self.a.rs,
            a_cs: self.a.cs,
            b_off: self.b.off,
            b_rs: self.b.rs,
            b_cs: self.b.cs,
            c_off: self.c_off,
            bias_off: self.bias_off,
            aux_off: self.aux_off,
            act: activation_code(self.act),
            ..Params::default()
        }
    }

    /// Whether the vec4 kernels may load A and B: each operand contiguous in k (A: `cs = 1`,
    /// B: `rs = 1`) with its other stride a multiple of 4, or contiguous along M / N (A: `rs = 1`,
    /// B: `cs = 1`) with its k stride a multiple of 4, and its offset a multiple of 4. Then every
    /// vec4 a kernel reads starts at a multiple of 4 floats (see `matmul_vec4.wgsl`). Independent of
    /// the batch size: offsets and strides do not change with it.
    pub fn vec4_ok(&self) -> bool {
        let (a, b) = (&self.a, &self.b);
        let a_ok = a.off % 4 == 0 && ((a.cs == 1 && a.rs % 4 == 0) || (a.rs == 1 && a.cs % 4 == 0));
        let b_ok = b.off % 4 == 0 && ((b.rs == 1 && b.cs % 4 == 0) || (b.cs == 1 && b.rs % 4 == 0));
        a_ok && b_ok
    }

    /// The variant that runs when `v` is asked for: a vec4 variant becomes its scalar twin (same
    /// tile, scalar loads) when [`vec4_ok`](Self::vec4_ok) does not hold, so a misaligned operand
    /// is never read wrong.
    pub fn resolve(&self, v: Variant) -> Variant {
        if v.is_vec4() && !self.vec4_ok() {
            v.scalar()
        } else {
            v
        }
    }

    /// The variants worth timing for these arguments (the vec4 ones only where they can run), the
    /// usually fast ones first so that the autotune can drop clearly slower ones after one
    /// dispatch.
    pub fn candidates(&self) -> Vec<Variant> {
        use Variant::*;
        [
            Tiled, Reg4x4, SplitK, TiledVec4, SplitKVec4, Naive, Reg8x8, Reg16x8,
        ]
        .into_iter()
        .filter(|v| !v.is_vec4() || self.vec4_ok())
        .collect()
    }

    pub fn groups(&self, v: Variant) -> [u32; 3] {
        let (tm, tn) = v.tile();
        [groups_for(self.n, tn), groups_for(self.m, tm), 1]
    }

    pub fn flops(&self) -> f64 {
        LinearShape {
            batch: self.m,
            c: self.k,
            oc: self.n,
        }
        .flops()
    }

    /// The autotune cache key (without the adapter): sizes, strides, whether the vec4 kernels can
    /// run, and the epilogue flags.
    pub fn shape_key(&self) -> String {
        format!(
            "{}x{}x{} a({},{}) b({},{}) {} flags {}",
            self.m,
            self.n,
            self.k,
            self.a.rs,
            self.a.cs,
            self.b.rs,
            self.b.cs,
            if self.vec4_ok() { "aligned" } else { "unaligned" },
            self.flags
        )
    }

    /// Forward of a layer: `out (batch, oc) = inp (batch, c) · W (oc, c)ᵀ + bias`, followed by the
    /// activation `act` if given (a hidden layer).
    pub fn forward(
        batch: usize,
        c: usize,
        oc: usize,
        w_off: usize,
        bias_off: usize,
        act: Option<Activation>,
    ) -> MatmulArgs {
        MatmulArgs {
            m: batch,
            n: oc,
            k: c,
            a: Operand {
                off: 0,
                rs: c as u32,
                cs: 1,
            },
            b: Operand {
                off: w_off as u32,
                rs: 1,
                cs: c as u32,
            },
            c_off: 0,
            bias_off: bias_off as u32,
            aux_off: 0,
            flags: BIAS | if act.is_some() { ACTIVATE } else { 0 },
            act: act.unwrap_or_default(),
        }
    }

    /// Input gradient: `dinp (batch, c) = dout (batch, oc) · W (oc, c)`, times the derivative of the
    /// activation `act` (if given) at the input activations (`aux`).
    pub fn input_grad(
        batch: usize,
        c: usize,
        oc: usize,
        w_off: usize,
        act: Option<Activation>,
    ) -> MatmulArgs {
        MatmulArgs {
            m: batch,
            n: c,
            k: oc,
            a: Operand {
                off: 0,
                rs: oc as u32,
                cs: 1,
            },
            b: Operand {
                off: w_off as u32,
                rs: c as u32,
                cs: 1,
            },
            c_off: 0,
            bias_off: 0,
            aux_off: 0,
            flags: if act.is_some() { ACTIVATE_GRAD } else { 0 },
            act: act.unwrap_or_default(),
        }
    }

    /// Weight gradient: `dW (oc, c) = dout (batch, oc)ᵀ · inp (batch, c)`, written at `dw_off`.
    pub fn weight_grad(batch: usize, c: usize, oc: usize, dw_off: usize, accumulate: bool) -> MatmulArgs {
        MatmulArgs {
            m: oc,
            n: c,
            k: batch,
            a: Operand {
                off: 0,
                rs: 1,
                cs: oc as u32,
            },
            b: Operand {
                off: 0,
                rs: c as u32,
                cs: 1,
            },
            c_off: dw_off as u32,
            bias_off: 0,
            aux_off: 0,
            flags: if accumulate { ACCUMULATE } else { 0 },
            act: Activation::default(),
        }
    }
}

/// Which dimension of a product is the batch: `m` (forward, input gradient) or `k` (weight
/// gradient).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchDim {
    M,
    K,
}

/// One product of a plan: its arguments at full batch, which dimension follows the batch size,
/// and the variant (chosen by the autotune or fixed). Binds `a`, `b`, `bias`, `aux`, `c`.
#[derive(Clone, Copy, Debug)]
pub struct MatmulOp {
    pub args: MatmulArgs,
    pub batch_dim: BatchDim,
    pub variant: Variant,
}

impl MatmulOp {
    /// The arguments for a batch of `b`.
    pub fn args_at(&self, b: usize) -> MatmulArgs {
        let mut a = self.args;
        match self.batch_dim {
            BatchDim::M => a.m = b,
            BatchDim::K => a.k = b,
        }
        a
    }

    /// The variant that runs ([`MatmulArgs::resolve`] of the one chosen).
    pub fn running(&self) -> Variant {
        self.args.resolve(self.variant)
    }

    pub fn pipeline(&self, ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
        self.running().pipeline(ctx)
    }
}

impl GpuOp for MatmulOp {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn shader(&self) -> Shader {
        self.running().shader()
    }
    fn entry(&self) -> &'static str {
        self.running().entry()
    }
    fn params(&self, at: &Launch) -> Params {
        self.args_at(at.batch).params()
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        self.args_at(at.batch).groups(self.running())
    }
    fn matmul(&self) -> Option<&MatmulOp> {
        Some(self)
    }
    fn matmul_mut(&mut self) -> Option<&mut MatmulOp> {
        Some(self)
    }
}
