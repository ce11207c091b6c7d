//! The IDX label parser on any bytes (raw or gzip): an error or labels that are all classes, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(labels) = spatial_gpu::data::idx::parse_labels(data, Path::new("fuzz-input")) {
        assert!(labels.labels.iter().all(|&l| l < 10));
    }
});
