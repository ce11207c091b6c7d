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

/// Storage buffers one dispatch binds at most (the matmul binds 5: a, b, bias, aux, c).
const STORAGE_BUFFERS_NEEDED: u32 = 5;
/// Workgroup memory of the largest kernel: the tiled matmul (two 16x65 f32 tiles; split-K uses
/// 2048 floats).
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
    /// Autotune results of this process, by `autotune::cache_key` (adapter, driver, shader hash,
    /// shape).
    pub(crate) tune_cache: Mutex<HashMap<String, super::autotune::Choice>>,
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

/// The backends searched: `WGPU_BACKEND` if set, else Vulkan, Metal and DX12. GL is left out by
/// default: the engine's kernels need compute shaders that GL adapters run, if at all, in software
/// (Mesa's llvmpipe), and probing EGL prints display errors on headless machines.
fn searched_backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

fn all_adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(searched_backends()))
}

/// Mesa's Vulkan device-selection layer (`VK_LAYER_MESA_device_select`, loaded implicitly with
/// Mesa's drivers) connects to a Wayland display while the instance is created, to guess a default
/// GPU, and prints `error: XDG_RUNTIME_DIR is invalid or not set` on a machine without one, once
/// per instance. We list and choose adapters ourselves, so the layer has nothing to do for us: turn
/// it off through its documented switch (`NODEVICE_SELECT=1`) unless the user set it. Called once
/// by `main` before any thread starts.
pub fn disable_mesa_device_select_layer() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY-free in edition 2021; called at start-up, before any other thread exists.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

/// What `--backend auto` does with the adapter filter `name` (else `SPATIAL_GPU_ADAPTER`):
/// `Ok(true)` when the adapter `--backend gpu` would choose is a hardware GPU (discrete,
/// integrated or virtual), `Ok(false)` when it is a software one (lavapipe, llvmpipe: far slower
/// than the CPU backend) or there is no adapter, and `Err` (saying why) when the filter names no
/// adapter, so that the caller can warn before falling back to the CPU.
pub fn auto_uses_gpu(name: Option<&str>) -> Result<bool> {
    let adapters = all_adapters();
    if adapters.is_empty() {
        return Ok(false);
    }
    let adapter = choose(&adapters, name)?;
    Ok(is_hardware(adapter.get_info().device_type))
}

/// Every adapter found, numbered, each with its backend, type and the limits the engine cares
/// about; the one `--backend gpu` would choose is marked, and what `--backend auto` does is said
/// with its reason. For `spatial-gpu info`.
pub fn adapter_report() -> String {
    let adapters = all_adapters();
    if adapters.is_empty() {
        return format!(
            "no GPU adapter found (backends searched: {:?}); --backend auto uses the CPU.\n\
             For a GPU, install its Vulkan driver (for the software one, `apt-get install \
             mesa-vulkan-drivers libvulkan1`); WGPU_BACKEND chooses the backends searched.\n",
            searched_backends()
        );
    }
    let wanted = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
    let chosen = choose_index(&adapters, wanted.as_deref());
    let mut out = String::new();
    for (i, a) in adapters.iter().enumerate() {
        let info = a.get_info();
        let l = a.limits();
        let mark = if chosen.as_ref().ok() == Some(&i) {
            "*"
        } else {
            " "
        };
        out += &format!(
            "{mark} [{i}] {}\n      backend {:?}, type {:?}{}, driver {} {}\n      max storage binding {} MiB, \
             max buffer {} MiB, workgroup memory {} KiB, invocations/workgroup {}, workgroups/dimension {}\n",
            info.name,
            info.backend,
            info.device_type,
            if is_hardware(info.device_type) { "" } else { " (software)" },
            info.driver,
            info.driver_info,
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroups_per_dimension,
        );
    }
    match &chosen {
        Ok(i) => {
            out += &format!(
                "* = what --backend gpu uses ({})\n",
                describe(&adapters[*i].get_info())
            )
        }
        Err(e) => out += &format!("--backend gpu would fail: {e:#}\n"),
    }
    let auto = match &chosen {
        Ok(i) if is_hardware(adapters[*i].get_info().device_type) => {
            format!("the GPU backend on [{i}], a hardware adapter")
        }
        Ok(i) => format!(
            "the CPU backend: [{i}] is a software adapter, on which training runs about 100x slower \
             than on the CPU backend (docs/GPU.md); --backend gpu uses it anyway"
        ),
        Err(_) => "the CPU backend: no adapter matches".to_string(),
    };
    out += &format!("--backend auto uses {auto}.\n");
    out += &format!(
        "Choose an adapter with --adapter (or {ADAPTER_ENV}): its number, a backend (vulkan, metal, \
         dx12, gl) or a part of its name.\n"
    );
    out
}

/// Which of `adapters` a choice names: `N` (its number in `spatial-gpu info`), a backend name, or a
/// case-insensitive part of its name; without a choice, all. Among the candidates a hardware GPU
/// comes first (discrete, integrated, virtual), then Vulkan/Metal/DX12 before GL.
fn choose_index(adapters: &[wgpu::Adapter], wanted: Option<&str>) -> Result<usize> {
    let matches = |i: usize, a: &wgpu::Adapter| -> bool {
        let Some(w) = wanted else { return true };
        let info = a.get_info();
        let w = w.trim().to_lowercase();
        if let Ok(n) = w.parse::<usize>() {
            return n == i;
        }
        if ["vulkan", "metal", "dx12", "gl"].contains(&w.as_str()) {
            return format!("{:?}", info.backend).to_lowercase() == w;
        }
        info.name.to_lowercase().contains(&w)
    };
    let mut candidates: Vec<usize> = (0..adapters.len())
        .filter(|&i| matches(i, &adapters[i]))
        .collect();
    if candidates.is_empty() {
        let names: Vec<String> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("[{i}] {}", describe(&a.get_info())))
            .collect();
        if names.is_empty() {
            bail!(
                "no GPU adapter found: install a Vulkan driver (for a software one, `apt-get install \
                 mesa-vulkan-drivers libvulkan1`), check WGPU_BACKEND, or use --backend cpu"
            );
        }
        bail!(
            "no adapter is {:?} (a number, a backend or a part of a name, from --adapter or {ADAPTER_ENV}); available: {}",
            wanted.unwrap_or_default(),
            names.join("; ")
        );
    }
    candidates.sort_by_key(|&i| {
        let info = adapters[i].get_info();
        (type_rank(info.device_type), backend_rank(info.backend), i)
    });
    Ok(candidates[0])
}

fn choose(adapters: &[wgpu::Adapter], name: Option<&str>) -> Result<wgpu::Adapter> {
    let env = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
    let wanted = name.map(str::to_string).or(env);
    Ok(adapters[choose_index(adapters, wanted.as_deref())?].clone())
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
            // Timestamps let the matmul autotune time GPU work alone (`autotune::Clock`).
            required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
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
                    // The uniform block of a recording is chosen at `set_bind_group` (see
                    // `kernel::Compiled`): one bind group serves every step of a chunk.
                    has_dynamic_offset: b.access == Access::Uniform,
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
