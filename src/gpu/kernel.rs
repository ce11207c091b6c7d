//! What a dispatch is: an op (a typed struct implementing [`GpuOp`]: its shader and entry point,
//! its uniform block and its workgroup count for a batch size) plus the buffers it binds, by name.
//! A plan (`plan.rs`) is a `Vec<Dispatch>`; [`Compiled`] turns it into pipelines, bind groups
//! (made once) and one uniform buffer with a slot per dispatch, and records it into a pass.

use super::buffers::{self, Uniforms, UNIFORM_BYTES};
use super::context::GpuContext;
use super::matmul::MatmulOp;
use super::shader::{Shader, Uniform};
use crate::ops::adam::AdamStep;
use anyhow::{Context, Result};

/// What changes between the recordings of one plan: the batch size, the Adam step, and where the
/// batch starts in the epoch's order (read by the device-side gather; 0 elsewhere).
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    pub batch: usize,
    pub adam: AdamStep,
    /// The batch's first example in the epoch's order.
    pub first: usize,
}

/// One GPU op: a kernel of a WGSL file with its geometry (offsets, sizes) fixed when the plan is
/// built; the batch size and the Adam step arrive at each recording through [`Launch`].
pub trait GpuOp: 'static {
    /// The uniform block, mirroring the shader's `struct Params`.
    type Params: Uniform;
    const SHADER: Shader;
    /// The entry point (the pipeline is `(SHADER.file, entry)`).
    fn entry(&self) -> &'static str;
    fn params(&self, at: &Launch) -> Self::Params;
    fn workgroups(&self, at: &Launch) -> [u32; 3];
    /// The matmul behind this op, for the autotune and the instrumentation.
    fn matmul(&self) -> Option<&MatmulOp> {
        None
    }
    fn matmul_mut(&mut self) -> Option<&mut MatmulOp> {
        None
    }
}

/// [`GpuOp`] with the associated items erased, so that a plan can hold different ops.
pub trait Kernel {
    fn shader(&self) -> Shader;
    fn entry(&self) -> &'static str;
    fn uniform_size(&self) -> usize;
    fn write_uniform(&self, at: &Launch, slot: &mut Uniforms, index: usize);
    fn workgroups(&self, at: &Launch) -> [u32; 3];
    fn matmul(&self) -> Option<&MatmulOp>;
    fn matmul_mut(&mut self) -> Option<&mut MatmulOp>;
}

impl<T: GpuOp> Kernel for T {
    fn shader(&self) -> Shader {
        T::SHADER
    }
    fn entry(&self) -> &'static str {
        GpuOp::entry(self)
    }
    fn uniform_size(&self) -> usize {
        const { assert!(std::mem::size_of::<T::Params>() as u64 <= UNIFORM_BYTES) };
        std::mem::size_of::<T::Params>()
    }
    fn write_uniform(&self, at: &Launch, slots: &mut Uniforms, index: usize) {
        slots.set(index, &self.params(at));
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        GpuOp::workgroups(self, at)
    }
    fn matmul(&self) -> Option<&MatmulOp> {
        GpuOp::matmul(self)
    }
    fn matmul_mut(&mut self) -> Option<&mut MatmulOp> {
        GpuOp::matmul_mut(self)
    }
}

/// An op and the buffers it binds, each under the name the shader gives it.
pub struct Dispatch<'a> {
    pub op: Box<dyn Kernel>,
    pub buffers: Vec<(&'static str, &'a wgpu::Buffer)>,
}

impl<'a> Dispatch<'a> {
    pub fn new<const N: usize>(op: impl GpuOp, buffers: [(&'static str, &'a wgpu::Buffer); N]) -> Self {
        Dispatch {
            op: Box::new(op),
            buffers: buffers.to_vec(),
        }
    }
}

/// One dispatch of a compiled plan.
pub struct Step {
    pub op: Box<dyn Kernel>,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
}

/// A plan on the device: a pipeline and a bind group per dispatch, and the uniform buffer whose
/// slot `r · D + i` is dispatch `i`'s block in recording `r` of a chunk (`D` dispatches, up to
/// `chunk` recordings per submit). Each bind group binds slot `i`; the uniform binding has a
/// dynamic offset, which selects the recording (`r · D · stride`), so one set of bind groups
/// serves every step of a chunk.
pub struct Compiled {
    pub steps: Vec<Step>,
    pub uniforms: Uniforms,
    /// Recordings one upload of the uniforms holds.
    pub chunk: usize,
}

impl Compiled {
    /// A plan recorded once per submit (evaluation, one-off runs).
    pub fn new(ctx: &GpuContext, label: &str, plan: Vec<Dispatch<'_>>) -> Result<Compiled> {
        Self::chunked(ctx, label, plan, 1)
    }

    /// A plan recorded up to `chunk` times per submit, each recording with its own [`Launch`].
    pub fn chunked(ctx: &GpuContext, label: &str, plan: Vec<Dispatch<'_>>, chunk: usize) -> Result<Compiled> {
        let chunk = chunk.max(1);
        let uniforms = Uniforms::new(ctx, label, plan.len() * chunk);
        let mut steps = Vec::with_capacity(plan.len());
        for (i, d) in plan.into_iter().enumerate() {
            let shader = d.op.shader();
            let pipeline = ctx.pipeline(shader, d.op.entry())?;
            let bind_group = ctx
                .bind_group(shader, uniforms.binding(i, d.op.uniform_size()), &d.buffers)
                .with_context(|| format!("{label}, dispatch {i} ({})", d.op.entry()))?;
            steps.push(Step {
                op: d.op,
                pipeline,
                bind_group,
            });
        }
        Ok(Compiled {
            steps,
            uniforms,
            chunk,
        })
    }

    /// Writes every dispatch's uniform block for `at` and uploads them (one `write_buffer`).
    pub fn write_uniforms(&mut self, ctx: &GpuContext, at: &Launch) {
        self.write_chunk_uniforms(ctx, std::slice::from_ref(at));
    }

    /// Writes the uniform blocks of recordings `0..ats.len()` of a chunk (recording `r` for
    /// `ats[r]`) and uploads them with one `write_buffer`. Panics past the chunk (a caller's bug).
    pub fn write_chunk_uniforms(&mut self, ctx: &GpuContext, ats: &[Launch]) {
        assert!(
            ats.len() <= self.chunk,
            "{} recordings in a chunk of {}",
            ats.len(),
            self.chunk
        );
        let d = self.steps.len();
        for (r, at) in ats.iter().enumerate() {
            for (i, s) in self.steps.iter().enumerate() {
                s.op.write_uniform(at, &mut self.uniforms, r * d + i);
            }
        }
        self.uniforms.upload_slots(ctx, ats.len() * d);
    }

    /// Records the dispatches `keep` selects, in order, into `pass`, with recording 0's uniforms.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, at: &Launch, keep: impl Fn(&dyn Kernel) -> bool) {
        self.record_nth(pass, at, 0, keep);
    }

    /// Records the dispatches `keep` selects with the uniforms of recording `r` of the chunk.
    pub fn record_nth(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        at: &Launch,
        r: usize,
        keep: impl Fn(&dyn Kernel) -> bool,
    ) {
        let offset = (r * self.steps.len()) as u64 * self.uniforms.stride;
        for s in self.steps.iter().filter(|s| keep(s.op.as_ref())) {
            buffers::dispatch_at(
                pass,
                &s.pipeline,
                &s.bind_group,
                offset as u32,
                s.op.workgroups(at),
            );
        }
    }

    /// Chooses each matmul's variant by measurement at `at` (its uniforms must be written).
    pub fn autotune(&mut self, ctx: &GpuContext, at: &Launch) -> Result<()> {
        for s in &mut self.steps {
            if let Some(mm) = s.op.matmul_mut() {
                let args = mm.args_at(at.batch);
                mm.variant = super::matmul::autotune(ctx, &args, &s.bind_group)?;
                s.pipeline = mm.variant.pipeline(ctx)?;
            }
        }
        Ok(())
    }
}
