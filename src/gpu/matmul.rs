//! The dense layer's three products on the GPU (`shaders/matmul.wgsl`): variants, their dispatch
//! geometry, and a short autotune that picks the fastest variant per adapter and shape.

use super::buffers::{self, groups_for, words};
use super::context::{Bind, GpuContext};
use anyhow::Result;
use std::time::Instant;

pub const FILE: &str = "matmul.wgsl";
pub const SRC: &str = include_str!("../../shaders/matmul.wgsl");
/// uniform, a, b, bias, aux, c.
pub const BINDS: &[Bind] = &[
    Bind::Uniform,
    Bind::Read,
    Bind::Read,
    Bind::Read,
    Bind::Read,
    Bind::ReadWrite,
];

pub const BIAS: u32 = 1;
pub const SIGMOID: u32 = 2;
pub const SIGMOID_GRAD: u32 = 4;
pub const ACCUMULATE: u32 = 8;

/// A matmul kernel (an entry point of `matmul.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Naive,
    Reg4x4,
    Reg8x8,
    Reg16x8,
    Tiled,
}

impl Variant {
    pub const ALL: [Variant; 5] = [
        Variant::Naive,
        Variant::Reg4x4,
        Variant::Reg8x8,
        Variant::Reg16x8,
        Variant::Tiled,
    ];

    pub fn entry(self) -> &'static str {
        match self {
            Variant::Naive => "mm_naive",
            Variant::Reg4x4 => "mm_reg4x4",
            Variant::Reg8x8 => "mm_reg8x8",
            Variant::Reg16x8 => "mm_reg16x8",
            Variant::Tiled => "mm_tiled",
        }
    }

    /// Output rows and columns one workgroup covers.
    pub fn tile(self) -> (usize, usize) {
        match self {
            Variant::Naive => (16, 16),
            Variant::Reg4x4 => (32, 32),
            Variant::Reg8x8 => (64, 64),
            Variant::Reg16x8 => (128, 64),
            Variant::Tiled => (64, 64),
        }
    }

    pub fn pipeline(self, ctx: &GpuContext) -> Result<wgpu::ComputePipeline> {
        ctx.pipeline(FILE, SRC, self.entry(), BINDS)
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
}

impl MatmulArgs {
    pub fn words(&self) -> [u32; 16] {
        words(&[
            self.m as u32,
            self.n as u32,
            self.k as u32,
            self.flags,
            self.a.off,
            self.a.rs,
            self.a.cs,
            self.b.off,
            self.b.rs,
            self.b.cs,
            self.c_off,
            self.bias_off,
            self.aux_off,
        ])
    }

    pub fn groups(&self, v: Variant) -> [u32; 3] {
        let (tm, tn) = v.tile();
        [groups_for(self.n, tn), groups_for(self.m, tm), 1]
    }

    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// The autotune cache key (without the adapter).
    pub fn shape_key(&self) -> String {
        format!(
            "{}x{}x{} a({},{}) b({},{})",
            self.m, self.n, self.k, self.a.rs, self.a.cs, self.b.rs, self.b.cs
        )
    }

    /// Forward of a layer: `out (batch, oc) = inp (batch, c) · W (oc, c)ᵀ + bias`, sigmoid if asked.
    pub fn forward(
        batch: usize,
        c: usize,
        oc: usize,
        w_off: usize,
        bias_off: usize,
        sigmoid: bool,
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
            flags: BIAS | if sigmoid { SIGMOID } else { 0 },
        }
    }

    /// Input gradient: `dinp (batch, c) = dout (batch, oc) · W (oc, c)`, times `a (1 - a)` of the
    /// input activations when `sigmoid_grad`.
    pub fn input_grad(batch: usize, c: usize, oc: usize, w_off: usize, sigmoid_grad: bool) -> MatmulArgs {
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
            flags: if sigmoid_grad { SIGMOID_GRAD } else { 0 },
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
        }
    }
}

/// Runs one product on host data and returns `c` afterwards (`c` holds its initial value, for
/// ACCUMULATE). Unused operands may be empty. For tests and benchmarks.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ctx: &GpuContext,
    v: Variant,
    args: &MatmulArgs,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    aux: &[f32],
    c: &[f32],
) -> Result<Vec<f32>> {
    let pipe = v.pipeline(ctx)?;
    let bufs = [
        buffers::storage_with(ctx, "a", a)?,
        buffers::storage_with(ctx, "b", b)?,
        buffers::storage_with(ctx, "bias", bias)?,
        buffers::storage_with(ctx, "aux", aux)?,
        buffers::storage_with(ctx, "c", c)?,
    ];
    let refs: Vec<&wgpu::Buffer> = bufs.iter().collect();
    buffers::run_once(ctx, &pipe, BINDS, &args.words(), &refs, args.groups(v), 1)?;
    buffers::read(ctx, &bufs[4], 0, c.len())
}

/// Seconds per dispatch of `v` on the bind group `bg` (its uniform holding `args`): one warm-up
/// submit (which also compiles the pipeline), then `reps` dispatches in one submit.
pub fn time_variant(
    ctx: &GpuContext,
    v: Variant,
    args: &MatmulArgs,
    bg: &wgpu::BindGroup,
    reps: usize,
) -> Result<f64> {
    let pipe = v.pipeline(ctx)?;
    let run = |n: usize| -> Result<()> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("autotune"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            for _ in 0..n {
                buffers::dispatch(&mut pass, &pipe, bg, args.groups(v));
            }
        }
        ctx.queue.submit([enc.finish()]);
        ctx.wait()
    };
    run(1)?;
    let t = Instant::now();
    run(reps)?;
    Ok(t.elapsed().as_secs_f64() / reps as f64)
}

/// The fastest variant for `args` on this adapter, measured on bind group `bg` (whose uniform
/// holds `args`) and cached in the context per adapter name and shape.
pub fn autotune(ctx: &GpuContext, args: &MatmulArgs, bg: &wgpu::BindGroup) -> Result<Variant> {
    let key = format!("{}|{}", ctx.info.name, args.shape_key());
    if let Some(&i) = ctx.tune_cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(Variant::ALL[i]);
    }
    // About 20 ms of work per variant at lavapipe speed, at least 2 repetitions.
    let reps = ((2e8 / args.flops().max(1.0)) as usize).clamp(2, 20);
    let mut best = (f64::INFINITY, 0);
    for (i, v) in Variant::ALL.iter().enumerate() {
        let t = time_variant(ctx, *v, args, bg, reps)?;
        if t < best.0 {
            best = (t, i);
        }
    }
    ctx.tune_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, best.1);
    Ok(Variant::ALL[best.1])
}
