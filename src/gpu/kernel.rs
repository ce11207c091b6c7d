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

/// What changes between the recordings of one plan: the batch size and the Adam step.
#[derive(Clone, Copy, Debug)]
pub struct Launch {
    pub batch: usize,
    pub adam: AdamStep,
}

/// One GPU op: a kernel of a WGSL file with its geometry (offsets, sizes) fixed when the plan is
/// built; the batch size and the Adam step arrive at each recording through [`Launch`].
pub trait GpuOp: 'static {
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
/// slot `i` is dispatch `i`'s block.
pub struct Compiled {
    pub steps: Vec<Step>,
    pub uniforms: Uniforms,
}

impl Compiled {
    pub fn new(ctx: &GpuContext, label: &str, plan: Vec<Dispatch<'_>>) -> Result<Compiled> {
        let uniforms = Uniforms::new(ctx, label, plan.len());
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
        Ok(Compiled { steps, uniforms })
    }

    /// Writes every dispatch's uniform block for `at` and uploads them (one `write_buffer`).
    pub fn write_uniforms(&mut self, ctx: &GpuContext, at: &Launch) {
        for (i, s) in self.steps.iter().enumerate() {
            s.op.write_uniform(at, &mut self.uniforms, i);
        }
        self.uniforms.upload(ctx);
    }

    /// Records the dispatches `keep` selects, in order, into `pass`.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, at: &Launch, keep: impl Fn(&dyn Kernel) -> bool) {
        for s in self.steps.iter().filter(|s| keep(s.op.as_ref())) {
            buffers::dispatch(pass, &s.pipeline, &s.bind_group, s.op.workgroups(at));
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
