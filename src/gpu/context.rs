//! Adapter selection, the device, and what every op shares: the shader cache (module, reflected
//! interface, bind group layout), the pipeline cache, named bind groups, the autotune cache and
//! the error state.
//!
//! Selection: an explicit name (`GpuOptions::adapter`, the `--adapter` option) or else the
//! environment variable `SPATIAL_GPU_ADAPTER` filters adapters by a case-insensitive substring of
//! their name; among the rest a hardware GPU (discrete, then integrated, then virtual) comes before
//! a software one (lavapipe, llvmpipe), and Vulkan/Metal/DX12 before GL. `WGPU_BACKEND` limits the
//! backends searched (CI pins `vulkan`: without it wgpu may fall back to a GL llvmpipe adapter).

use super::shader::{Access, Interface, Shader};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Environment variable naming the adapter to use (a substring of its name).
pub const ADAPTER_ENV: &str = "SPATIAL_GPU_ADAPTER";

/// Storage buffers one dispatch binds at most (the matmul binds 5).
const STORAGE_BUFFERS_NEEDED: u32 = 5;
/// Workgroup memory of the tiled matmul (two 16x65 f32 tiles).
const WORKGROUP_MEMORY_NEEDED: u32 = 8320;
/// Invocations per workgroup of the largest kernel (256).
const INVOCATIONS_NEEDED: u32 = 256;

/// What the device can do, in the terms the engine needs.
#[derive(Clone, Debug)]
pub struct DeviceCaps {
    pub max_storage_binding: u64,
    pub max_buffer: u64,
    pub max_workgroups: u32,
    pub uniform_align: u32,
}

/// One opened device and everything shared by the backends that use it.
pub struct GpuContext {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub caps: DeviceCaps,
    /// The first error reported outside an error scope (validation, out of memory, device lost);
    /// every later call returns it.
    error: Arc<Mutex<Option<String>>>,
    shaders: Mutex<HashMap<&'static str, Arc<BuiltShader>>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str), wgpu::ComputePipeline>>,
    /// Autotune results: `"adapter name|m|n|k|strides" -> variant index`.
    pub(crate) tune_cache: Mutex<HashMap<String, usize>>,
}

/// A shader built on the device: its module, what it binds, and the layouts made from that.
pub struct BuiltShader {
    pub module: wgpu::ShaderModule,
    pub interface: Interface,
    pub bind_group_layout: wgpu::BindGroupLayout,
    pub pipeline_layout: wgpu::PipelineLayout,
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

fn is_hardware(t: wgpu::DeviceType) -> bool {
    matches!(
        t,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu | wgpu::DeviceType::VirtualGpu
    )
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn all_adapters() -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance().enumerate_adapters(backends))
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

/// True when a hardware GPU adapter (discrete, integrated or virtual) is present; `--backend auto`
/// picks the GPU backend then. Software adapters (lavapipe, llvmpipe) do not count.
pub fn hardware_adapter_available() -> bool {
    all_adapters()
        .iter()
        .any(|a| is_hardware(a.get_info().device_type))
}

/// Every adapter found, each with its backend, type and the limits the engine cares about; the
/// one [`GpuContext::new`] would choose is marked. For `spatial-gpu info`.
pub fn adapter_report() -> String {
    let adapters = all_adapters();
    if adapters.is_empty() {
        return "no GPU adapter found (install a Vulkan driver, e.g. `apt-get install mesa-vulkan-drivers \
                libvulkan1` for the lavapipe software adapter, or use --backend cpu)\n"
            .to_string();
    }
    let chosen = choose(&adapters, None).ok().map(|a| a.get_info().name);
    let mut out = String::new();
    for a in &adapters {
        let info = a.get_info();
        let l = a.limits();
        let mark = if chosen.as_deref() == Some(info.name.as_str()) {
            "* "
        } else {
            "  "
        };
        out += &format!(
            "{mark}{}\n    backend {:?}, type {:?}, driver {} {}\n    max storage binding {} MiB, max buffer {} MiB, \
             workgroup memory {} KiB, invocations/workgroup {}, workgroups/dimension {}\n",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info,
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
        );
    }
    out += &format!("(* = chosen; set {ADAPTER_ENV} to a substring of a name to choose another)\n");
    out
}

fn choose(adapters: &[wgpu::Adapter], name: Option<&str>) -> Result<wgpu::Adapter> {
    let env = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
    let wanted = name.map(str::to_string).or(env);
    let mut candidates: Vec<&wgpu::Adapter> = adapters
        .iter()
        .filter(|a| match &wanted {
            Some(w) => a.get_info().name.to_lowercase().contains(&w.to_lowercase()),
            None => true,
        })
        .collect();
    if candidates.is_empty() {
        let names: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
        if names.is_empty() {
            bail!(
                "no GPU adapter found: install a Vulkan driver (for a software one, `apt-get install \
                 mesa-vulkan-drivers libvulkan1`), check WGPU_BACKEND, or use --backend cpu"
            );
        }
        bail!(
            "no adapter's name contains {:?} (from --adapter or {ADAPTER_ENV}); available: {}",
            wanted.unwrap_or_default(),
            names.join("; ")
        );
    }
    candidates.sort_by_key(|a| {
        let i = a.get_info();
        (type_rank(i.device_type), backend_rank(i.backend))
    });
    Ok(candidates[0].clone())
}

impl GpuContext {
    /// Opens the adapter chosen as the module documentation says; `adapter` is an explicit name
    /// filter that overrides `SPATIAL_GPU_ADAPTER`.
    pub fn new(adapter: Option<&str>) -> Result<Arc<GpuContext>> {
        let adapters = all_adapters();
        let adapter = choose(&adapters, adapter)?;
        Self::from_adapter(adapter)
    }

    fn from_adapter(adapter: wgpu::Adapter) -> Result<Arc<GpuContext>> {
        let info = adapter.get_info();
        let have = adapter.limits();
        let mut missing = Vec::new();
        if have.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
            missing.push(format!(
                "{STORAGE_BUFFERS_NEEDED} storage buffers per shader stage (has {})",
                have.max_storage_buffers_per_shader_stage
            ));
        }
        if have.max_compute_workgroup_storage_size < WORKGROUP_MEMORY_NEEDED {
            missing.push(format!(
                "{WORKGROUP_MEMORY_NEEDED} bytes of workgroup memory (has {})",
                have.max_compute_workgroup_storage_size
            ));
        }
        if have.max_compute_invocations_per_workgroup < INVOCATIONS_NEEDED
            || have.max_compute_workgroup_size_x < INVOCATIONS_NEEDED
        {
            missing.push(format!(
                "{INVOCATIONS_NEEDED} invocations per workgroup (has {}, x {})",
                have.max_compute_invocations_per_workgroup, have.max_compute_workgroup_size_x
            ));
        }
        if !missing.is_empty() {
            bail!(
                "adapter {} cannot run the engine: it lacks {}; choose another with {ADAPTER_ENV} or use --backend cpu",
                describe(&info),
                missing.join(", ")
            );
        }
        // The defaults every WebGPU device has, raised to what this adapter offers for buffer sizes
        // (the input batch and the parameters are single buffers).
        let required = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            max_storage_buffers_per_shader_stage: STORAGE_BUFFERS_NEEDED
                .max(8)
                .min(have.max_storage_buffers_per_shader_stage),
            max_compute_workgroup_storage_size: have.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: INVOCATIONS_NEEDED,
            max_compute_workgroup_size_x: INVOCATIONS_NEEDED,
            max_compute_workgroup_size_y: have.max_compute_workgroup_size_y.min(256),
            max_compute_workgroups_per_dimension: have.max_compute_workgroups_per_dimension,
            ..wgpu::Limits::downlevel_defaults()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("spatial-gpu"),
            required_features: wgpu::Features::empty(),
            required_limits: required.clone(),
            ..Default::default()
        }))
        .with_context(|| format!("opening a device on adapter {} failed", describe(&info)))?;
        let error = Arc::new(Mutex::new(None::<String>));
        {
            let e = error.clone();
            device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
                let mut slot = e.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| format!("GPU error: {err}"));
            }));
            let e = error.clone();
            device.set_device_lost_callback(move |reason, msg| {
                let mut slot = e.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| {
                    format!("the GPU device was lost ({reason:?}: {msg}); restart the run (it resumes from the last checkpoint) or use --backend cpu")
                });
            });
        }
        let caps = DeviceCaps {
            max_storage_binding: required.max_storage_buffer_binding_size,
            max_buffer: required.max_buffer_size,
            max_workgroups: required.max_compute_workgroups_per_dimension,
            uniform_align: required.min_uniform_buffer_offset_alignment,
        };
        Ok(Arc::new(GpuContext {
            adapter,
            device,
            queue,
            info,
            caps,
            error,
            shaders: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            tune_cache: Mutex::new(HashMap::new()),
        }))
    }

    /// `name (backend, type)` of the adapter.
    pub fn describe(&self) -> String {
        describe(&self.info)
    }

    /// Returns the first error the device reported asynchronously, if any.
    pub fn check(&self) -> Result<()> {
        match self.error.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(e) => Err(anyhow!("{e}")),
            None => Ok(()),
        }
    }

    /// `shader` built on the device (once, cached): an error names the file if naga or the
    /// driver refuses it.
    pub fn shader(&self, shader: Shader) -> Result<Arc<BuiltShader>> {
        self.check()?;
        if let Some(c) = self
            .shaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(shader.file)
        {
            return Ok(c.clone());
        }
        let interface = shader.interface()?;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = interface
            .bindings
            .iter()
            .map(|b| wgpu::BindGroupLayoutEntry {
                binding: b.index,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b.access {
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group_layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(shader.file),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(shader.file),
                bind_group_layouts: &[Some(&bind_group_layout)],
                immediate_size: 0,
            });
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.file),
            source: wgpu::ShaderSource::Wgsl(shader.src.into()),
        });
        if let Some(err) = pollster::block_on(scope.pop()) {
            bail!(
                "shader {} failed to build on {}: {err}",
                shader.file,
                self.describe()
            );
        }
        let compiled = Arc::new(BuiltShader {
            module,
            interface,
            bind_group_layout,
            pipeline_layout,
        });
        self.shaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shader.file, compiled.clone());
        Ok(compiled)
    }

    /// The pipeline of entry point `entry` of `shader`, built once and cached. A shader that
    /// fails to compile or validate is an error naming the file and entry point.
    pub fn pipeline(&self, shader: Shader, entry: &'static str) -> Result<wgpu::ComputePipeline> {
        self.check()?;
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(shader.file, entry))
        {
            return Ok(p.clone());
        }
        let compiled = self.shader(shader)?;
        if !compiled.interface.entry_points.iter().any(|e| e == entry) {
            bail!(
                "shader {} has no compute entry point {entry} (it has {})",
                shader.file,
                compiled.interface.entry_points.join(", ")
            );
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&compiled.pipeline_layout),
                module: &compiled.module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            bail!(
                "shader {}, entry point {entry}, failed to build on {}: {err}",
                shader.file,
                self.describe()
            );
        }
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((shader.file, entry), pipeline.clone());
        Ok(pipeline)
    }

    /// A bind group of `shader`: `uniform` at its `var<uniform>`, and each storage binding filled
    /// with the buffer `buffers` gives under that binding's name. A name the shader does not bind,
    /// or a binding no buffer is given for, is an error naming both.
    pub fn bind_group(
        &self,
        shader: Shader,
        uniform: wgpu::BindingResource<'_>,
        buffers: &[(&str, &wgpu::Buffer)],
    ) -> Result<wgpu::BindGroup> {
        let compiled = self.shader(shader)?;
        let bindings = &compiled.interface.bindings;
        let names = || {
            bindings
                .iter()
                .filter(|b| b.access != Access::Uniform)
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, _) in buffers {
            if !bindings
                .iter()
                .any(|b| b.access != Access::Uniform && b.name == *name)
            {
                bail!(
                    "shader {} binds no buffer named `{name}` (it binds {})",
                    shader.file,
                    names()
                );
            }
        }
        let mut uniform = Some(uniform);
        let mut entries = Vec::new();
        for b in bindings {
            let resource = if b.access == Access::Uniform {
                uniform
                    .take()
                    .ok_or_else(|| anyhow!("shader {}: more than one uniform", shader.file))?
            } else {
                let matching: Vec<_> = buffers.iter().filter(|(n, _)| *n == b.name).collect();
                match matching.as_slice() {
                    [(_, buf)] => buf.as_entire_binding(),
                    [] => bail!(
                        "shader {} binds `{}` (binding {}) but the dispatch gives no buffer of that name",
                        shader.file,
                        b.name,
                        b.index
                    ),
                    _ => bail!(
                        "shader {}: the dispatch gives `{}` more than once",
                        shader.file,
                        b.name
                    ),
                }
            };
            entries.push(wgpu::BindGroupEntry {
                binding: b.index,
                resource,
            });
        }
        Ok(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.file),
            layout: &compiled.bind_group_layout,
            entries: &entries,
        }))
    }

    /// Waits until the queue is idle; an error if the device was lost or reported an error.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("waiting for the GPU failed: {e}"))?;
        self.check()
    }

    /// Checks that a buffer of `bytes` fits the device; `what` names it in the error.
    pub fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        let max = self.caps.max_storage_binding.min(self.caps.max_buffer);
        if bytes > max {
            bail!(
                "{what} needs a buffer of {bytes} bytes but adapter {} allows {max}: use a smaller \
                 --batch-size (or smaller layers), or --backend cpu",
                self.describe()
            );
        }
        Ok(())
    }
}
