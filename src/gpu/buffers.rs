//! Buffer helpers: creation with a size check, uniform slots, read-back, and recording a dispatch.

use super::context::GpuContext;
use super::shader::Uniform;
use anyhow::{anyhow, Result};
use std::num::NonZeroU64;

/// Every kernel's uniform block fits in this many bytes (a slot's minimum size).
pub const UNIFORM_BYTES: u64 = 128;

/// A storage buffer of `len` elements of 4 bytes, zeroed, rounded up to a whole number of vec4s
/// (at least one): the vec4 matmul kernels (`matmul_vec4.wgsl`) may read the vec4 that holds an
/// operand's last element.
pub fn storage(ctx: &GpuContext, label: &str, len: usize) -> Result<wgpu::Buffer> {
    let bytes = (len.max(1).div_ceil(4) * 16) as u64;
    ctx.check_size(label, bytes)?;
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    }))
}

/// A storage buffer holding `data` (at least one element).
pub fn storage_with(ctx: &GpuContext, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let buf = storage(ctx, label, data.len())?;
    if !data.is_empty() {
        ctx.queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
    }
    Ok(buf)
}

/// One buffer of uniform blocks, each at a multiple of the device's offset alignment, so that each
/// dispatch binds its own block and all of them are written with one `write_buffer`.
pub struct Uniforms {
    pub buffer: wgpu::Buffer,
    pub stride: u64,
    pub data: Vec<u8>,
}

impl Uniforms {
    pub fn new(ctx: &GpuContext, label: &str, slots: usize) -> Uniforms {
        let stride = (ctx.caps.uniform_align as u64).max(UNIFORM_BYTES);
        let size = stride * slots.max(1) as u64;
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Uniforms {
            buffer,
            stride,
            data: vec![0; size as usize],
        }
    }

    /// Slot `slot`, `bytes` long, as a binding.
    pub fn binding(&self, slot: usize, bytes: usize) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: slot as u64 * self.stride,
            size: NonZeroU64::new(bytes as u64),
        })
    }

    /// Writes `bytes` (one uniform block) into slot `slot` of the host copy.
    pub fn set_bytes(&mut self, slot: usize, bytes: &[u8]) {
        assert!(
            bytes.len() as u64 <= UNIFORM_BYTES,
            "a uniform block exceeds {UNIFORM_BYTES} bytes"
        );
        let at = slot * self.stride as usize;
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Overwrites `bytes` at byte `offset` of slot `slot` of the host copy (a per-model stride).
    pub fn patch(&mut self, slot: usize, offset: usize, bytes: &[u8]) {
        assert!(
            (offset + bytes.len()) as u64 <= UNIFORM_BYTES,
            "a uniform patch past the block"
        );
        let at = slot * self.stride as usize + offset;
        self.data[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Writes `block` into slot `slot` of the host copy.
    pub fn set<U: Uniform>(&mut self, slot: usize, block: &U) {
        self.set_bytes(slot, bytemuck::bytes_of(block));
    }

    pub fn upload(&self, ctx: &GpuContext) {
        ctx.queue.write_buffer(&self.buffer, 0, &self.data);
    }

    /// Uploads slots `0..slots` only (a chunk shorter than the buffer).
    pub fn upload_slots(&self, ctx: &GpuContext, slots: usize) {
        let end = (slots as u64 * self.stride).min(self.data.len() as u64) as usize;
        if end > 0 {
            ctx.queue.write_buffer(&self.buffer, 0, &self.data[..end]);
        }
    }
}

/// Copies `len` f32 from `buffer` (starting at element `offset`) back to the host; waits.
pub fn read(ctx: &GpuContext, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
    read_many(ctx, &[(buffer, offset, len)]).map(|mut v| v.remove(0))
}

/// Copies `len` u32 from `buffer` (starting at element `offset`) back to the host; waits. The words
/// come through [`read_many`] as the bits of `f32`s, which are copied, never computed with, so
/// every word comes back as it was.
pub fn read_u32(ctx: &GpuContext, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<u32>> {
    Ok(read(ctx, buffer, offset, len)?
        .into_iter()
        .map(f32::to_bits)
        .collect())
}

/// Reads several ranges with one submit and one wait.
pub fn read_many(ctx: &GpuContext, ranges: &[(&wgpu::Buffer, usize, usize)]) -> Result<Vec<Vec<f32>>> {
    ctx.check()?;
    let total: usize = ranges.iter().map(|r| r.2.max(1)).sum();
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: (total * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("readback"),
        });
    let mut at = 0;
    for &(buf, off, len) in ranges {
        if len > 0 {
            enc.copy_buffer_to_buffer(
                buf,
                (off * 4) as u64,
                &staging,
                (at * 4) as u64,
                Some((len * 4) as u64),
            );
        }
        at += len.max(1);
    }
    ctx.queue.submit([enc.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    rx.recv()
        .map_err(|_| anyhow!("the GPU read-back was dropped (device lost?)"))?
        .map_err(|e| anyhow!("mapping a GPU buffer for read-back failed: {e}"))?;
    let out = {
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| anyhow!("reading a mapped GPU buffer failed: {e}"))?;
        let all: Vec<f32> = match bytemuck::try_cast_slice::<u8, f32>(&view) {
            Ok(f) => f.to_vec(),
            Err(_) => view
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        };
        let mut out = Vec::new();
        let mut at = 0;
        for r in ranges {
            out.push(all[at..at + r.2].to_vec());
            at += r.2.max(1);
        }
        out
    };
    staging.unmap();
    Ok(out)
}

/// Records one dispatch into a compute pass, with the uniform block its bind group names.
pub fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    bg: &wgpu::BindGroup,
    groups: [u32; 3],
) {
    dispatch_at(pass, pipeline, bg, 0, groups);
}

/// Records one dispatch whose uniform block lies `uniform_offset` bytes after the one its bind
/// group names (every uniform binding has a dynamic offset: the recordings of a chunk share bind
/// groups and differ in this offset).
pub fn dispatch_at(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    bg: &wgpu::BindGroup,
    uniform_offset: u32,
    groups: [u32; 3],
) {
    if groups.contains(&0) {
        return;
    }
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bg, &[uniform_offset]);
    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
}

/// `ceil(a / b)` as u32.
pub fn groups_for(a: usize, b: usize) -> u32 {
    a.div_ceil(b) as u32
}
