//! What a dispatch is: an op (a typed struct implementing [`GpuOp`]: its shader and entry point,
//! its uniform block and its workgroup count for a batch size) plus the buffers it binds, by name.
//! A plan (`plan.rs`) is a `Vec<Dispatch>`; [`Compiled`] turns it into pipelines, bind groups
//! (made once) and one uniform buffer with a slot per dispatch, and records it into a pass.

use super::buffers::{self, Uniforms, UNIFORM_BYTES};
use super::context::GpuContext;
use super::matmul::MatmulOp;
use super::shader::{Shader, Uniform};
use crate::ops::adam::AdamStep;
use anyhow::{anyhow, bail, Context, Result};

/// What changes between the recordings of one plan: the batch size of the dispatches, Adam's
/// constants, where the recording's records of the step table start, and where an evaluation's
/// batch starts in the test set.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    /// Rows of the recording's largest batch: every dispatch covers them. Each network's own rows,
    /// batch start and Adam step are in its record of the step table (`step_table.rs`).
    pub batch: usize,
    /// Adam's betas and eps, which every network of a population shares; its `lr` and `step` are
    /// not used on the GPU (each network's own are in `hyper` and the step table).
    pub adam: AdamStep,
    /// The recording's first record in the step table (`r · models` for recording `r`).
    pub step_at: usize,
    /// The networks `0..n` the recording's dispatches cover (`None`: every network). A training
    /// step leaves out the trailing networks that sit it out (a population orders its longest
    /// runs first, so that those that finish early are the trailing ones).
    pub networks: Option<usize>,
    /// An evaluation's first row in the test set (`accuracy.wgsl`; 0 elsewhere).
    pub first: usize,
}

/// One GPU op: a kernel of a WGSL file with its geometry (offsets, sizes) fixed when the plan is
/// built; the batch size and the Adam step arrive at each recording through [`Launch`].
pub trait GpuOp: Send + Sync + 'static {
    /// The uniform block, mirroring the shader's `struct Params`.
    type Params: Uniform;
    const SHADER: Shader;
    /// The file of the entry point: `SHADER`, unless an op's variants span files (the matmul's
    /// vec4 kernels, whose bind group layout is the same).
    fn shader(&self) -> Shader {
        Self::SHADER
    }
    /// The entry point (the pipeline is `(shader, entry)`).
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
pub trait Kernel: Send + Sync {
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
        GpuOp::shader(self)
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
///
/// Populations: a plan can train several networks of one shape at once, model `z` in workgroup
/// row `z` of every dispatch. A buffer that holds one copy per model (parameters, activations,
/// the batch, ...) is given its per-model stride in elements by name ([`Dispatch::per_model`]);
/// the runtime writes it into the uniform member `<name>_ms`, and the kernel adds
/// `z * <name>_ms` to its indices. A buffer with no stride (the mask, the head offsets, the
/// training sets) is shared. With one network every stride is unused (z is 0).
pub struct Dispatch<'a> {
    pub op: Box<dyn Kernel>,
    pub buffers: Vec<(&'static str, &'a wgpu::Buffer)>,
    pub strides: Vec<(&'static str, usize)>,
}

impl<'a> Dispatch<'a> {
    pub fn new<const N: usize>(op: impl GpuOp, buffers: [(&'static str, &'a wgpu::Buffer); N]) -> Self {
        Dispatch {
            op: Box::new(op),
            buffers: buffers.to_vec(),
            strides: Vec::new(),
        }
    }

    /// The per-model strides (elements) of the buffers bound under these names.
    pub fn per_model(mut self, strides: &[(&'static str, usize)]) -> Self {
        self.strides.extend_from_slice(strides);
        self
    }
}

/// One dispatch of a compiled plan.
pub struct Step {
    pub op: Box<dyn Kernel>,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    /// The per-model strides, as (byte offset in the uniform block, value).
    pub strides: Vec<(usize, u32)>,
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
    /// Networks each dispatch computes (workgroup rows along z).
    pub models: usize,
}

impl Compiled {
    /// A plan recorded once per submit (evaluation, one-off runs).
    pub fn new(ctx: &GpuContext, label: &str, plan: Vec<Dispatch<'_>>) -> Result<Compiled> {
        Self::chunked(ctx, label, plan, 1)
    }

    /// A plan recorded up to `chunk` times per submit, each recording with its own [`Launch`].
    pub fn chunked(ctx: &GpuContext, label: &str, plan: Vec<Dispatch<'_>>, chunk: usize) -> Result<Compiled> {
        Self::population(ctx, label, plan, chunk, 1)
    }

    /// A plan of `models` networks at once (see [`Dispatch::per_model`]), recorded up to `chunk`
    /// times per submit.
    pub fn population(
        ctx: &GpuContext,
        label: &str,
        plan: Vec<Dispatch<'_>>,
        chunk: usize,
        models: usize,
    ) -> Result<Compiled> {
        let chunk = chunk.max(1);
        let uniforms = Uniforms::new(ctx, label, plan.len() * chunk);
        let mut steps = Vec::with_capacity(plan.len());
        for (i, d) in plan.into_iter().enumerate() {
            let shader = d.op.shader();
            let pipeline = ctx.pipeline(shader, d.op.entry())?;
            let bind_group = ctx
                .bind_group(shader, uniforms.binding(i, d.op.uniform_size()), &d.buffers)
                .with_context(|| format!("{label}, dispatch {i} ({})", d.op.entry()))?;
            let interface = &ctx.shader(shader)?.interface;
            let mut strides = Vec::new();
            for &(name, stride) in &d.strides {
                let member = format!("{name}_ms");
                let Some(m) = interface.uniform.members.iter().find(|m| m.name == member) else {
                    bail!(
                        "{label}, dispatch {i}: shader {} has no per-model stride `{member}` for its buffer `{name}`",
                        shader.file
                    );
                };
                let stride = u32::try_from(stride.saturating_mul(models.max(1)))
                    .map(|_| stride as u32)
                    .map_err(|_| {
                        anyhow!("{label}: {models} copies of `{name}` are too large for 32-bit indexing")
                    })?;
                strides.push((m.offset as usize, stride));
            }
            steps.push(Step {
                op: d.op,
                pipeline,
                bind_group,
                strides,
            });
        }
        Ok(Compiled {
            steps,
            uniforms,
            chunk,
            models: models.max(1),
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
                for &(offset, stride) in &s.strides {
                    self.uniforms.patch(r * d + i, offset, &stride.to_le_bytes());
                }
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
        let networks = at.networks.map_or(self.models, |n| n.min(self.models));
        for s in self.steps.iter().filter(|s| keep(s.op.as_ref())) {
            let mut groups = s.op.workgroups(at);
            groups[2] *= networks as u32;
            buffers::dispatch_at(pass, &s.pipeline, &s.bind_group, offset as u32, groups);
        }
    }

    /// Chooses each matmul's variant by measurement at `at` (its uniforms must be written).
    pub fn autotune(&mut self, ctx: &GpuContext, at: &Launch) -> Result<()> {
        for s in &mut self.steps {
            if let Some(mm) = s.op.matmul_mut() {
                let args = mm.args_at(at.batch);
                mm.variant = super::autotune::autotune(ctx, &args, &s.bind_group)?;
                s.pipeline = mm.pipeline(ctx)?;
            }
        }
        Ok(())
    }
}
