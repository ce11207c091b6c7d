//! The matmul autotune: which variant of `matmul.wgsl` / `matmul_vec4.wgsl` runs each product of a
//! plan, chosen by measurement on the adapter and remembered on disk.
//!
//! Sampling ([`measure`]): one warm-up submit (it also builds the pipeline), then the number of
//! dispatches per submit is raised until one submit lasts at least [`MIN_SAMPLE_SECONDS`], then
//! [`MIN_SAMPLES`] submits of that many dispatches are timed; the variant's time is the median
//! sample over the dispatches in it. A sample that comes out shorter than the minimum (the first
//! estimate was optimistic) raises the count and starts the samples again. A variant whose single
//! dispatch already lasts over the minimum and over [`PRUNE_FACTOR`] times the best median so far
//! cannot win and is not sampled further (this keeps the autotune short on a software adapter).
//!
//! Clock ([`Clock`]): GPU timestamps at the beginning and end of the compute pass where the device
//! has `TIMESTAMP_QUERY` (requested by `GpuContext` when the adapter offers it), else the wall
//! clock around submit and a blocking wait.
//!
//! Cache: in the `GpuContext` for the process, and in a JSON file ([`cache_path`]) keyed by the
//! adapter's name, backend, driver and driver info, a hash of both matmul shaders' sources and the
//! product's shape key ([`MatmulArgs::shape_key`]), so a new driver or an edited kernel tunes
//! again. The file is replaced atomically (written beside it, then renamed); an unreadable or
//! corrupt file is a warning and a fresh tune, never a failure. `SPATIAL_GPU_AUTOTUNE_CACHE`:
//! `on` (default), `off` (neither read nor written), `refresh` (not read, rewritten).

use super::buffers;
use super::context::GpuContext;
use super::matmul::{MatmulArgs, Variant, SHADER, SHADER_VEC4};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Samples per variant.
pub const MIN_SAMPLES: usize = 5;
/// Seconds of GPU work one sample lasts at least.
pub const MIN_SAMPLE_SECONDS: f64 = 1e-3;
/// Dispatches per submit at most; a clock that does not reach the minimum by then is an error.
pub const MAX_REPS: usize = 1 << 16;
/// A variant whose first single dispatch is this much slower than the best median is dropped.
pub const PRUNE_FACTOR: f64 = 2.0;
/// Directory of the autotune cache (else `$XDG_CACHE_HOME/spatial-gpu`, `~/.cache/spatial-gpu`).
pub const CACHE_DIR_ENV: &str = "SPATIAL_GPU_CACHE_DIR";
/// `on` | `off` | `refresh`.
pub const CACHE_MODE_ENV: &str = "SPATIAL_GPU_AUTOTUNE_CACHE";
/// The cache file's name in its directory.
pub const CACHE_FILE: &str = "matmul-autotune.json";
const CACHE_FORMAT: u32 = 1;

/// The samples of one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Dispatches per sample (one submit).
    pub reps: usize,
    /// Seconds of each sample (all `reps` dispatches).
    pub samples: Vec<f64>,
    /// The median sample over `reps`: seconds per dispatch.
    pub per_dispatch: f64,
}

/// What [`measure`] did with a variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Measured(Measurement),
    /// Dropped after one dispatch of this many seconds (see [`PRUNE_FACTOR`]).
    Pruned(f64),
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The sampling policy of the module documentation. `run(reps)` records `reps` dispatches in one
/// submit, waits, and returns the seconds they took; `prune_above` is the best median so far times
/// [`PRUNE_FACTOR`] (seconds per dispatch), if any.
pub fn measure(mut run: impl FnMut(usize) -> Result<f64>, prune_above: Option<f64>) -> Result<Outcome> {
    run(1)?;
    let mut reps = 1usize;
    let mut t = run(reps)?;
    if let Some(limit) = prune_above {
        if t >= MIN_SAMPLE_SECONDS && t > limit {
            return Ok(Outcome::Pruned(t));
        }
    }
    for _restart in 0..4 {
        while t < MIN_SAMPLE_SECONDS {
            if reps >= MAX_REPS {
                bail!(
                    "{reps} dispatches in one submit lasted {t:e} s, less than the {MIN_SAMPLE_SECONDS} s \
                     a sample needs: the clock does not advance"
                );
            }
            let grow = if t > 0.0 {
                (1.25 * MIN_SAMPLE_SECONDS / t).ceil() as usize
            } else {
                16
            };
            reps = (reps * grow.clamp(2, 1024)).min(MAX_REPS);
            t = run(reps)?;
        }
        // The submit that reached the minimum ran `reps` dispatches: it is the first sample.
        let mut samples = vec![t];
        while samples.len() < MIN_SAMPLES {
            let s = run(reps)?;
            if s < MIN_SAMPLE_SECONDS {
                t = s;
                break;
            }
            samples.push(s);
        }
        if samples.len() == MIN_SAMPLES {
            let per_dispatch = median(&samples) / reps as f64;
            return Ok(Outcome::Measured(Measurement {
                reps,
                samples,
                per_dispatch,
            }));
        }
    }
    bail!("samples kept coming out shorter than {MIN_SAMPLE_SECONDS} s at {reps} dispatches per submit")
}

/// Times submits of one pipeline: GPU timestamps around the compute pass where the device has
/// them, else the wall clock around submit and wait.
pub struct Clock {
    timestamps: Option<Timestamps>,
}

struct Timestamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

impl Clock {
    /// GPU timestamps if the device was opened with `TIMESTAMP_QUERY` and `gpu` is true.
    pub fn new(ctx: &GpuContext, gpu: bool) -> Clock {
        let timestamps =
            (gpu && ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)).then(|| Timestamps {
                set: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("autotune"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("autotune timestamps"),
                    size: 16,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                period: ctx.queue.get_timestamp_period() as f64,
            });
        Clock { timestamps }
    }

    /// `GPU timestamps` or `wall clock`.
    pub fn name(&self) -> &'static str {
        if self.timestamps.is_some() {
            "GPU timestamps"
        } else {
            "wall clock"
        }
    }

    /// Seconds of `reps` dispatches of `pipe` in one pass of one submit. A timestamp pair that
    /// goes backwards (a driver's bad day) gives the wall clock's reading instead.
    pub fn time(
        &self,
        ctx: &GpuContext,
        pipe: &wgpu::ComputePipeline,
        bg: &wgpu::BindGroup,
        groups: [u32; 3],
        reps: usize,
    ) -> Result<f64> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("autotune"),
            });
        {
            let writes = self
                .timestamps
                .as_ref()
                .map(|t| wgpu::ComputePassTimestampWrites {
                    query_set: &t.set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                });
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("autotune"),
                timestamp_writes: writes,
            });
            for _ in 0..reps {
                buffers::dispatch(&mut pass, pipe, bg, groups);
            }
        }
        if let Some(t) = &self.timestamps {
            enc.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
        }
        let t0 = Instant::now();
        ctx.queue.submit([enc.finish()]);
        ctx.wait()?;
        let wall = t0.elapsed().as_secs_f64();
        let Some(t) = &self.timestamps else {
            return Ok(wall);
        };
        // Two u64 ticks, read back as four f32 bit patterns.
        let words = buffers::read(ctx, &t.resolve, 0, 4)?;
        let w: Vec<u64> = words.iter().map(|f| f.to_bits() as u64).collect();
        let (begin, end) = (w[0] | (w[1] << 32), w[2] | (w[3] << 32));
        if end <= begin {
            return Ok(wall);
        }
        Ok((end - begin) as f64 * t.period * 1e-9)
    }
}

/// What the autotune chose for one product, and why: every variant's median.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The product's shape key.
    pub shape: String,
    /// The entry point chosen.
    pub variant: String,
    /// Its median, seconds per dispatch.
    pub seconds: f64,
    /// `GPU timestamps` or `wall clock`.
    pub clock: String,
    /// Every variant sampled: entry point -> median seconds per dispatch.
    pub medians: BTreeMap<String, f64>,
    /// Variants dropped after one dispatch (see [`PRUNE_FACTOR`]).
    pub pruned: Vec<String>,
}

impl Choice {
    /// `mm_tiled 12.3 µs (mm_naive 20.1, mm_splitk 15.0; pruned mm_reg8x8) by GPU timestamps`.
    pub fn summary(&self) -> String {
        let others: Vec<String> = self
            .medians
            .iter()
            .filter(|(v, _)| **v != self.variant)
            .map(|(v, s)| format!("{v} {:.1}", s * 1e6))
            .collect();
        let pruned = if self.pruned.is_empty() {
            String::new()
        } else {
            format!("; pruned {}", self.pruned.join(", "))
        };
        format!(
            "{} {:.1} µs ({}{pruned}) by {}",
            self.variant,
            self.seconds * 1e6,
            others.join(", "),
            self.clock
        )
    }
}

/// Times every candidate variant of `args` on the bind group `bg` (whose uniform holds `args`).
pub fn tune(ctx: &GpuContext, args: &MatmulArgs, bg: &wgpu::BindGroup, clock: &Clock) -> Result<Choice> {
    let mut medians = BTreeMap::new();
    let mut pruned = Vec::new();
    let mut best: Option<(f64, Variant)> = None;
    for v in args.candidates() {
        let pipe = v.pipeline(ctx)?;
        let groups = args.groups(v);
        let outcome = measure(
            |reps| clock.time(ctx, &pipe, bg, groups, reps),
            best.map(|b| b.0 * PRUNE_FACTOR),
        )
        .with_context(|| format!("timing {} on {}", v.entry(), args.shape_key()))?;
        match outcome {
            Outcome::Measured(m) => {
                medians.insert(v.entry().to_string(), m.per_dispatch);
                if best.is_none_or(|b| m.per_dispatch < b.0) {
                    best = Some((m.per_dispatch, v));
                }
            }
            Outcome::Pruned(_) => pruned.push(v.entry().to_string()),
        }
    }
    let (seconds, v) = best.ok_or_else(|| anyhow!("no matmul variant to time"))?;
    Ok(Choice {
        shape: args.shape_key(),
        variant: v.entry().to_string(),
        seconds,
        clock: clock.name().to_string(),
        medians,
        pruned,
    })
}

/// What `SPATIAL_GPU_AUTOTUNE_CACHE` asks of the disk cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    On,
    Off,
    Refresh,
}

impl CacheMode {
    pub fn parse(value: Option<&str>) -> Result<CacheMode> {
        match value.map(str::trim) {
            None | Some("") | Some("on") => Ok(CacheMode::On),
            Some("off") => Ok(CacheMode::Off),
            Some("refresh") => Ok(CacheMode::Refresh),
            Some(other) => bail!("{CACHE_MODE_ENV}={other:?}: expected on, off or refresh"),
        }
    }

    pub fn from_env() -> Result<CacheMode> {
        Self::parse(std::env::var(CACHE_MODE_ENV).ok().as_deref())
    }
}

/// The cache file: `$SPATIAL_GPU_CACHE_DIR/matmul-autotune.json`, else in `spatial-gpu/` of the
/// user's cache directory (`$XDG_CACHE_HOME`, `~/.cache` on Linux); `None` without either.
pub fn cache_path() -> Option<PathBuf> {
    let dir = match std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => dirs::cache_dir()?.join("spatial-gpu"),
    };
    Some(dir.join(CACHE_FILE))
}

/// A hash of both matmul shaders' sources (16 hex digits): an edited kernel misses the cache.
pub fn shader_hash() -> String {
    let mut h = Sha256::new();
    h.update(SHADER.src.as_bytes());
    h.update(SHADER_VEC4.src.as_bytes());
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The device part of a cache key: adapter name, backend, driver, driver info.
pub fn device_key(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} | {:?} | {} | {}",
        info.name, info.backend, info.driver, info.driver_info
    )
}

/// The cache key of a product: [`device_key`], [`shader_hash`], shape key.
pub fn cache_key(device: &str, shader_hash: &str, shape: &str) -> String {
    format!("{device} | {shader_hash} | {shape}")
}

#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    choices: BTreeMap<String, Choice>,
}

/// The choices in the cache file at `path`: empty if there is none; an error if it cannot be read
/// or parsed (the caller warns and tunes again).
pub fn load(path: &Path) -> Result<BTreeMap<String, Choice>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file: CacheFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if file.format != CACHE_FORMAT {
        bail!(
            "{} has format {}, this build writes {CACHE_FORMAT}",
            path.display(),
            file.format
        );
    }
    Ok(file.choices)
}

/// Adds `choice` under `key` to the cache file at `path` (created with its directory), replacing
/// the file atomically; a file that cannot be read is started afresh.
pub fn store(path: &Path, key: &str, choice: &Choice) -> Result<()> {
    let mut choices = load(path).unwrap_or_default();
    choices.insert(key.to_string(), choice.clone());
    let file = CacheFile {
        format: CACHE_FORMAT,
        choices,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(&file)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// The variant for `args` on this adapter: from the context's cache, else the disk cache, else
/// measured (on the bind group `bg`, whose uniform holds `args`) and remembered in both.
pub fn autotune(ctx: &GpuContext, args: &MatmulArgs, bg: &wgpu::BindGroup) -> Result<Variant> {
    let mode = CacheMode::from_env()?;
    let key = cache_key(&device_key(&ctx.info), &shader_hash(), &args.shape_key());
    let known = |c: &Choice| Variant::from_entry(&c.variant).filter(|v| args.candidates().contains(v));
    let memory = || ctx.tune_cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = memory().get(&key).and_then(known) {
        return Ok(v);
    }
    let path = cache_path().filter(|_| mode != CacheMode::Off);
    if let (Some(path), CacheMode::On) = (&path, mode) {
        match load(path) {
            Ok(choices) => {
                if let Some(c) = choices.get(&key) {
                    if let Some(v) = known(c) {
                        memory().insert(key, c.clone());
                        return Ok(v);
                    }
                }
            }
            Err(e) => eprintln!("warning: the matmul autotune cache is unusable ({e:#}); tuning again"),
        }
    }
    let choice = tune(ctx, args, bg, &Clock::new(ctx, true))?;
    let v = known(&choice).ok_or_else(|| anyhow!("the autotune chose an unknown variant"))?;
    if let Some(path) = &path {
        if let Err(e) = store(path, &key, &choice) {
            eprintln!("warning: could not save the matmul autotune cache: {e:#}");
        }
    }
    memory().insert(key, choice);
    Ok(v)
}

/// The choices this process made or loaded on `ctx`, by shape key.
pub fn choices(ctx: &GpuContext) -> BTreeMap<String, Choice> {
    ctx.tune_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|c| (c.shape.clone(), c.clone()))
        .collect()
}

/// For `spatial-gpu info`: where the cache is, its mode, and what it holds, per device.
pub fn cache_report() -> String {
    let mode = match CacheMode::from_env() {
        Ok(m) => format!("{m:?}").to_lowercase(),
        Err(e) => return format!("matmul autotune cache: {e:#}\n"),
    };
    let Some(path) = cache_path() else {
        return format!("matmul autotune cache: none (no cache directory; set {CACHE_DIR_ENV})\n");
    };
    let mut out = format!(
        "matmul autotune cache: {} ({CACHE_MODE_ENV}={mode})\n",
        path.display()
    );
    match load(&path) {
        Ok(choices) if choices.is_empty() => out += "  empty: the first GPU run tunes its products\n",
        Ok(choices) => {
            let mut device = String::new();
            for (key, c) in &choices {
                // The key ends with " | shader hash | shape"; what is before is the device.
                let parts: Vec<&str> = key.rsplitn(3, " | ").collect();
                let (dev, hash) = (
                    parts.last().copied().unwrap_or(""),
                    parts.get(1).copied().unwrap_or(""),
                );
                let stale = if hash == shader_hash() {
                    ""
                } else {
                    " (older shaders)"
                };
                if dev != device {
                    out += &format!("  {dev}\n");
                    device = dev.to_string();
                }
                out += &format!("    {}{stale}: {}\n", c.shape, c.summary());
            }
        }
        Err(e) => out += &format!("  unusable ({e:#}): the next GPU run tunes again and replaces it\n"),
    }
    out
}
