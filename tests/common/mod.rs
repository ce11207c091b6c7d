//! Helpers shared by the data tests: small IDX files made in memory and written to a directory.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

/// Magic numbers of IDX image and label files of unsigned bytes.
pub const IMAGES_MAGIC: u32 = 0x0803;
pub const LABELS_MAGIC: u32 = 0x0801;

/// The pixel of image `i` at position `k` in the test files: varied, and easy to recompute.
pub fn pixel(seed: u8, i: usize, k: usize) -> u8 {
    (seed as usize + 31 * i + 7 * k) as u8
}

/// A raw IDX image file: `magic`, then `dims` big-endian, then `pixel(seed, i, k)` for each image.
pub fn images_with_magic(magic: u32, count: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in [count, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    let n = (rows * cols) as usize;
    for i in 0..count as usize {
        b.extend((0..n).map(|k| pixel(seed, i, k)));
    }
    b
}

/// A raw IDX image file of `count` images of `rows x cols`.
pub fn images(count: u32, rows: u32, cols: u32, seed: u8) -> Vec<u8> {
    images_with_magic(IMAGES_MAGIC, count, rows, cols, seed)
}

/// A raw IDX label file.
pub fn labels(labels: &[u8]) -> Vec<u8> {
    let mut b = LABELS_MAGIC.to_be_bytes().to_vec();
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

/// `count` labels cycling through the classes, shifted by `seed`.
pub fn label_values(count: usize, seed: u8) -> Vec<u8> {
    (0..count).map(|i| ((i + seed as usize) % 10) as u8).collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The four raw files of a small set, in the order of `spatial_gpu::data::SET_FILES`:
/// `train` training and `test` test images of `rows x cols`, with labels.
pub fn set_files(train: u32, test: u32, rows: u32, cols: u32, seed: u8) -> [Vec<u8>; 4] {
    [
        images(train, rows, cols, seed),
        labels(&label_values(train as usize, seed)),
        images(test, rows, cols, seed.wrapping_add(100)),
        labels(&label_values(test as usize, seed.wrapping_add(3))),
    ]
}

/// Writes a small set into `dir/set/`, gzipped under `<name>.gz` or raw under `<name>`.
pub fn write_set(dir: &Path, set: &str, files: &[Vec<u8>; 4], gz: bool) {
    let set_dir = dir.join(set);
    std::fs::create_dir_all(&set_dir).unwrap();
    for (name, bytes) in spatial_gpu::data::SET_FILES.iter().zip(files) {
        if gz {
            std::fs::write(set_dir.join(format!("{name}.gz")), gzip(bytes)).unwrap();
        } else {
            std::fs::write(set_dir.join(name), bytes).unwrap();
        }
    }
}

/// Every file under `dir`, recursively, relative to it, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
