//! Inputs for the fuzz targets of `fuzz/` (see docs/FUZZING.md), run as ordinary tests: the seed
//! inputs the fuzzers start from, and any input a fuzzer found that crashed a parser (none so far),
//! with the bytes inline, so `cargo test` keeps them fixed without cargo-fuzz.

use spatial_gpu::checkpoint;
use spatial_gpu::data::idx::{parse_images, parse_labels};
use std::path::Path;

const CHECKPOINT_SEED: &[u8] = include_bytes!("../fuzz/seeds/checkpoint/tiny.safetensors");
const IMAGES_SEED: &[u8] = include_bytes!("../fuzz/seeds/idx_images/small");
const IMAGES_GZ_SEED: &[u8] = include_bytes!("../fuzz/seeds/idx_images/small.gz");
const LABELS_SEED: &[u8] = include_bytes!("../fuzz/seeds/idx_labels/small");
const LABELS_GZ_SEED: &[u8] = include_bytes!("../fuzz/seeds/idx_labels/small.gz");

/// What each fuzz target asserts, for one input (a panic fails the test, as it crashes the fuzzer).
fn check_all_targets(bytes: &[u8]) {
    let file = Path::new("fuzz-input");
    if let Ok(images) = parse_images(bytes, file) {
        assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
    }
    if let Ok(labels) = parse_labels(bytes, file) {
        assert!(labels.labels.iter().all(|&l| l < 10));
    }
    match checkpoint::from_bytes(bytes, file) {
        Err(e) => assert!(e.to_string().starts_with("fuzz-input: "), "{e}"),
        Ok(ck) => {
            let again = checkpoint::from_bytes(
                &checkpoint::to_bytes(&ck.model, &ck.train, &ck.state, ck.progress),
                file,
            )
            .unwrap();
            assert_eq!((again.state, again.progress), (ck.state, ck.progress));
        }
    }
}

#[test]
fn seeds_are_valid_inputs() {
    let file = Path::new("seed");
    for bytes in [IMAGES_SEED, IMAGES_GZ_SEED] {
        let images = parse_images(bytes, file).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (3, 4, 5));
    }
    for bytes in [LABELS_SEED, LABELS_GZ_SEED] {
        assert_eq!(parse_labels(bytes, file).unwrap().labels, [0, 1, 2, 9, 5, 3]);
    }
    // Written by fuzz/make_seeds.py with Python's safetensors, without a checksum.
    let ck = checkpoint::from_bytes(CHECKPOINT_SEED, file).unwrap();
    assert_eq!(ck.model.sizes, [4, 3, 2]);
    assert_eq!((ck.progress.epoch, ck.progress.batch, ck.state.step), (1, 2, 5));
    for seed in [
        CHECKPOINT_SEED,
        IMAGES_SEED,
        IMAGES_GZ_SEED,
        LABELS_SEED,
        LABELS_GZ_SEED,
    ] {
        check_all_targets(seed);
    }
}

/// Hostile inputs written by hand, of the kinds the fuzzers look for: sizes that overflow, headers
/// that promise more than the file has, a gzip stream cut short, a header length near `u64::MAX`.
#[test]
fn hand_written_hostile_inputs() {
    let mut idx_overflow = 0x0803u32.to_be_bytes().to_vec();
    for d in [u32::MAX, u32::MAX, u32::MAX] {
        idx_overflow.extend_from_slice(&d.to_be_bytes());
    }
    let mut gz_cut = IMAGES_GZ_SEED.to_vec();
    gz_cut.truncate(gz_cut.len() - 5);
    let mut header_max = u64::MAX.to_le_bytes().to_vec();
    header_max.push(b'{');
    let mut header_fits = 20u64.to_le_bytes().to_vec();
    header_fits.extend_from_slice(br#"{"a":{"dtype":"F32","#);
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        idx_overflow,
        gz_cut,
        header_max,
        header_fits,
        CHECKPOINT_SEED[..CHECKPOINT_SEED.len() / 2].to_vec(),
        vec![0x1f, 0x8b],
    ];
    for case in cases {
        check_all_targets(&case);
    }
}
