//! `spatial-gpu info`: the compute adapters wgpu finds and which one the GPU backend would use.

use anyhow::Result;

pub fn cmd_info() -> Result<i32> {
    println!("{}", crate::gpu::adapter_report());
    Ok(0)
}
