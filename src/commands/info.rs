//! `spatial-gpu info`: the compute adapters wgpu finds, which one the GPU backend would use, and
//! the matmul autotune's cached choices with every variant's median.

use anyhow::Result;

pub fn cmd_info() -> Result<i32> {
    println!("{}", crate::gpu::adapter_report());
    print!("{}", crate::gpu::autotune::cache_report());
    Ok(0)
}
