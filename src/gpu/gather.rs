//! The batch gather (`shaders/gather.wgsl`): the training sets live on the device as bytes and each
//! epoch's order as an index buffer, and a batch is built on the device, so that a training step
//! uploads nothing. The CPU twin is `EpochOrder::fill_batch`; `tests/gpu_engine.rs` checks that
//! the two give the same batches bit for bit.

use super::buffers::{self, groups_for};
use super::context::GpuContext;
use super::kernel::{GpuOp, Launch};
use super::shader::Shader;
use crate::config::InputMode;
use crate::data::batches::EpochOrder;
use crate::data::Datasets;
use anyhow::{bail, Result};
use bytemuck::{Pod, Zeroable};

pub const SHADER: Shader = Shader {
    file: "gather.wgsl",
    src: include_str!("../../shaders/gather.wgsl"),
};

/// `struct Params` of `gather.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub b: u32,
    pub step_at: u32,
    pub width: u32,
    pub tasks: u32,
    /// Per-model strides (`kernel::Dispatch::per_model`).
    pub order_ms: u32,
    pub input_ms: u32,
    pub labels_ms: u32,
    pub steps_ms: u32,
}
crate::uniform!(Params = "Params" { b, step_at, width, tasks, order_ms, input_ms, labels_ms, steps_ms });

/// The value of `Params::mode` (`CONCAT`, `MIXED`, `SEQUENTIAL` in `gather.wgsl`).
pub fn mode_code(mode: InputMode) -> u32 {
    match mode {
        InputMode::Concat => 0,
        InputMode::Mixed => 1,
        InputMode::Sequential => 2,
    }
}

/// Which half of the gather: the input rows or the labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Inputs,
    Labels,
}

/// Builds each network's batch from its record of the step table (`step_table.rs`: its rows, the
/// first example in its epoch's order, its mode) in a dispatch of [`Launch::batch`] rows, the rows
/// past a network's own written empty. Binds `data`, `sets`, `order`, `input`, `labels`, `steps`.
pub struct Gather {
    pub part: Part,
    pub width: usize,
    pub tasks: usize,
}

impl GpuOp for Gather {
    type Params = Params;
    const SHADER: Shader = SHADER;
    fn entry(&self) -> &'static str {
        match self.part {
            Part::Inputs => "gather_inputs",
            Part::Labels => "gather_labels",
        }
    }
    fn params(&self, at: &Launch) -> Params {
        Params {
            b: at.batch as u32,
            step_at: at.step_at as u32,
            width: self.width as u32,
            tasks: self.tasks as u32,
            ..Params::default()
        }
    }
    fn workgroups(&self, at: &Launch) -> [u32; 3] {
        let cols = match self.part {
            Part::Inputs => self.width,
            Part::Labels => self.tasks,
        };
        [groups_for(cols, 64), at.batch as u32, 1]
    }
}

/// The training sets of a run on the device, and the index buffer of the epoch's order.
pub struct DeviceData {
    /// Every task's training pixels (bytes, four to a u32), then their labels (a u32 each).
    pub data: wgpu::Buffer,
    /// Per task: byte offset, pixels per image, input column, label offset; then the 256 scaled
    /// pixel values (see `gather.wgsl`).
    pub sets: wgpu::Buffer,
    /// Each network's epoch order (`EpochOrder::device_indices`), `order_len` indices apart (the
    /// longest network's; a shorter order fills the start of its network's part).
    pub order: wgpu::Buffer,
    pub order_len: usize,
    /// What identifies the data uploaded (see [`fingerprint`]) and each network's order now in
    /// `order` (compared, not rebuilt, at every training call).
    pub fingerprint: Vec<(String, usize, usize)>,
    pub order_now: Vec<Option<EpochOrder>>,
    pub bytes: u64,
}

/// What tells one loaded data set from another within a process: each task's name, training
/// count and the address of its pixels (the sets are never changed after loading).
pub fn fingerprint(data: &Datasets) -> Vec<(String, usize, usize)> {
    data.tasks
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.train_len(),
                t.train_images.pixels.as_ptr() as usize,
            )
        })
        .collect()
}

/// The host side of `data` and `sets` for `data` in `mode`.
pub fn pack(data: &Datasets, mode: InputMode) -> Result<(Vec<u32>, Vec<u32>)> {
    let pixel_bytes: usize = data.tasks.iter().map(|t| t.train_images.pixels.len()).sum();
    let label_words: usize = data.tasks.iter().map(|t| t.train_labels.len()).sum();
    let pixel_words = pixel_bytes.div_ceil(4);
    if (pixel_words + label_words) as u64 * 4 >= u32::MAX as u64 {
        bail!("the training sets ({pixel_bytes} bytes) are too large to address on the GPU with 32 bits");
    }
    let mut bytes = Vec::with_capacity(pixel_words * 4);
    let mut meta = Vec::with_capacity(4 * data.tasks.len() + 256);
    let mut column = 0;
    let mut label_at = pixel_words;
    for t in &data.tasks {
        let len = t.train_images.image_len();
        meta.extend([bytes.len() as u32, len as u32, column as u32, label_at as u32]);
        bytes.extend_from_slice(&t.train_images.pixels);
        if mode == InputMode::Concat {
            column += len;
        }
        label_at += t.train_labels.len();
    }
    bytes.resize(pixel_words * 4, 0);
    let mut words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for t in &data.tasks {
        words.extend(t.train_labels.iter().map(|&l| l as u32));
    }
    // The CPU's `scale`: `p as f32 / 255.0`.
    meta.extend((0..=255u8).map(|p| (p as f32 / 255.0).to_bits()));
    Ok((words, meta))
}

impl DeviceData {
    /// Uploads the training sets of `data` for `mode`, with room for an epoch's order of `order_len`
    /// indices for each of `models` networks.
    pub fn upload(
        ctx: &GpuContext,
        data: &Datasets,
        mode: InputMode,
        order_len: usize,
        models: usize,
    ) -> Result<DeviceData> {
        let (words, meta) = pack(data, mode)?;
        let buf = |label: &str, v: &[u32]| -> Result<wgpu::Buffer> {
            let b = buffers::storage(ctx, label, v.len())?;
            if !v.is_empty() {
                ctx.queue.write_buffer(&b, 0, bytemuck::cast_slice(v));
            }
            Ok(b)
        };
        Ok(DeviceData {
            data: buf("training sets", &words)?,
            sets: buf("training set layout", &meta)?,
            order: buffers::storage(ctx, "epoch orders", order_len * models.max(1))?,
            order_len,
            fingerprint: fingerprint(data),
            order_now: vec![None; models.max(1)],
            bytes: (words.len() + meta.len() + order_len * models.max(1)) as u64 * 4,
        })
    }

    /// Makes `order` network `k`'s order on the device (one upload per epoch; none if it is
    /// already there).
    pub fn set_order(&mut self, ctx: &GpuContext, k: usize, order: &EpochOrder) -> Result<()> {
        if self.order_now[k].as_ref() != Some(order) {
            let indices = order.device_indices();
            if indices.len() > self.order_len {
                bail!(
                    "an epoch's order of {} indices does not fit the order buffer made for {}",
                    indices.len(),
                    self.order_len
                );
            }
            ctx.queue.write_buffer(
                &self.order,
                (k * self.order_len * 4) as u64,
                bytemuck::cast_slice(&indices),
            );
            self.order_now[k] = Some(order.clone());
        }
        Ok(())
    }
}
