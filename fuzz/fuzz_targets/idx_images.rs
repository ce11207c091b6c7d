//! The IDX image parser on any bytes (raw or gzip): an error or images whose pixel count matches
//! their header, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(images) = spatial_gpu::data::idx::parse_images(data, Path::new("fuzz-input")) {
        assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
    }
});
