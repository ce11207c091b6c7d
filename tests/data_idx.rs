//! The IDX reader and the data directory: good files load, every fault is an error that names the
//! file and the fault, and no input makes the parsers panic. With `SPATIAL_GPU_DATA` set, the real
//! data is checked too.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use spatial_gpu::config::InputMode;
use spatial_gpu::data::{self, parse_images, parse_labels, read_images, read_labels, DataError};

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The error's message, after checking it starts with the file's path.
fn message_naming(err: &DataError, file: &Path) -> String {
    let msg = err.to_string();
    let prefix = format!("{}:", file.display());
    assert!(
        msg.starts_with(&prefix),
        "message does not start with {prefix:?}: {msg}"
    );
    msg
}

#[test]
fn good_files_parse_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let raw = images(7, 3, 5, 1);
    for (name, bytes) in [("a-images", raw.clone()), ("a-images.gz", gzip(&raw))] {
        let img = read_images(&write(dir.path(), name, &bytes)).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (7, 3, 5));
        assert_eq!(img.pixels.len(), 7 * 15);
        for i in 0..7 {
            for k in 0..15 {
                assert_eq!(img.image(i)[k], pixel(1, i, k), "{name}: image {i} pixel {k}");
            }
        }
    }
    let l = label_values(7, 4);
    for (name, bytes) in [("l", labels(&l)), ("l.gz", gzip(&labels(&l)))] {
        assert_eq!(read_labels(&write(dir.path(), name, &bytes)).unwrap().labels, l);
    }
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let raw = images(7, 3, 5, 2);
    let gz_named_idx = write(dir.path(), "images.idx", &gzip(&raw));
    let raw_named_gz = write(dir.path(), "images.gz", &raw);
    assert_eq!(
        read_images(&gz_named_idx).unwrap(),
        read_images(&raw_named_gz).unwrap()
    );
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    // A label file where images are expected, and images where labels are.
    let labels_file = write(dir.path(), "labels", &labels(&[1, 2, 3]));
    let err = read_images(&labels_file).unwrap_err();
    assert!(matches!(
        err,
        DataError::BadMagic {
            found: 0x801,
            expected: 0x803,
            ..
        }
    ));
    let msg = message_naming(&err, &labels_file);
    assert!(
        msg.contains("magic number is 0x00000801, expected 0x00000803"),
        "{msg}"
    );

    let images_file = write(dir.path(), "images", &images(2, 2, 2, 0));
    let msg = message_naming(&read_labels(&images_file).unwrap_err(), &images_file);
    assert!(msg.contains("not an IDX label file"), "{msg}");

    // The element type must be unsigned byte (0x08): 0x0D (float) is refused.
    let floats = write(dir.path(), "floats", &images_with_magic(0x0D03, 1, 1, 1, 0));
    assert!(matches!(
        read_images(&floats),
        Err(DataError::BadMagic { found: 0x0D03, .. })
    ));
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = images(7, 3, 5, 3);
    raw.pop();
    for (name, bytes) in [("t", raw.clone()), ("t.gz", gzip(&raw))] {
        let file = write(dir.path(), name, &bytes);
        let err = read_images(&file).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected_len: 121,
                actual_len: 120,
                ..
            }
        ));
        let msg = message_naming(&err, &file);
        assert!(
            msg.contains("truncated") && msg.contains("121") && msg.contains("120"),
            "{msg}"
        );
    }
    // A header cut short is truncated too.
    let file = write(dir.path(), "short", &labels(&[1])[..6]);
    assert!(matches!(read_labels(&file), Err(DataError::Truncated { .. })));
}

#[test]
fn padded_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = labels(&[1, 2, 3]);
    raw.extend_from_slice(&[0, 0]);
    let file = write(dir.path(), "padded.gz", &gzip(&raw));
    let err = read_labels(&file).unwrap_err();
    assert!(matches!(
        err,
        DataError::Padded {
            expected_len: 11,
            actual_len: 13,
            ..
        }
    ));
    let msg = message_naming(&err, &file);
    assert!(msg.contains("2 unexpected bytes after the data"), "{msg}");
}

#[test]
fn zero_dimension() {
    let dir = tempfile::tempdir().unwrap();
    for dims in [(0, 3, 5), (7, 0, 5), (7, 3, 0)] {
        let file = write(dir.path(), "zero", &images(dims.0, dims.1, dims.2, 0));
        let err = read_images(&file).unwrap_err();
        assert!(matches!(err, DataError::ZeroDimension { .. }), "{dims:?}: {err}");
        assert!(message_naming(&err, &file).contains("dimension in the header is zero"));
    }
}

/// A task's classes are read from its training labels (any byte is a label: EMNIST-balanced has
/// 47); a test label outside them is an error naming the task and the file.
#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "labels", &labels(&[0, 9, 3, 46, 1]));
    assert_eq!(read_labels(&file).unwrap().labels, [0, 9, 3, 46, 1]);

    // Training labels 0..=2: three classes; a test label 3 is none of them.
    let mut files = set_files(6, 5, 2, 2, 0);
    files[1] = labels(&[0, 1, 2, 0, 1, 2]);
    files[3] = labels(&[0, 2, 1, 3, 0]);
    write_set(dir.path(), "small", &files, false);
    let task_dir = dir.path().join("small");
    let custom = vec![("small".to_string(), task_dir.clone())];
    let sources = data::resolve_tasks(&["small".to_string()], &custom).unwrap();
    let err = data::load_tasks(dir.path(), &sources).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                index: 3,
                label: 3,
                classes: 3,
                ..
            }
        ),
        "{err}"
    );
    let msg = message_naming(&err, &task_dir.join("t10k-labels-idx1-ubyte"));
    assert!(
        msg.contains("label 3 at index 3 is not one of task small's 3 classes (0..=2"),
        "{msg}"
    );

    // Fixed, the task has 3 classes.
    files[3] = labels(&[0, 2, 1, 2, 0]);
    write_set(dir.path(), "small", &files, false);
    let d = data::load_tasks(dir.path(), &sources).unwrap();
    assert_eq!(
        (d.names(), d.tasks[0].num_classes),
        (vec!["small".to_string()], 3)
    );
}

/// `--task NAME=DIR` directories: a missing file names the task's folder and the file; an unknown
/// task name lists the known ones.
#[test]
fn custom_task_errors_name_the_task_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = set_files(6, 5, 8, 8, 0);
    files[1] = labels(&[0, 1, 2, 0, 1, 2]);
    files[3] = labels(&[0, 2, 1, 2, 0]);
    write_set(dir.path(), "mine", &files, true);
    std::fs::remove_file(dir.path().join("mine/t10k-images-idx3-ubyte.gz")).unwrap();
    let custom = vec![("mine".to_string(), dir.path().join("mine"))];
    let sources = data::resolve_tasks(&["mine".to_string()], &custom).unwrap();
    let err = data::load_tasks(Path::new("/nonexistent"), &sources).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingData { set, .. } if set == "mine"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("mine data not found: 1 file(s) missing"), "{msg}");
    assert!(
        msg.contains(&format!("{}/", dir.path().join("mine").display())),
        "{msg}"
    );
    assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    assert!(
        !msg.contains("data fetch"),
        "a --task directory has nothing to fetch: {msg}"
    );

    let err = data::resolve_tasks(&["mnist".to_string(), "cifar".to_string()], &custom).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("unknown task cifar: the known tasks are mnist, fashion-mnist, animal-mnist, kmnist, emnist-balanced, mine"), "{msg}");
}

#[test]
fn corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let good = gzip(&images(7, 3, 5, 5));
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1; // the CRC-32 of the trailer
    let cut = good[..good.len() - 10].to_vec();
    let mut trailing_garbage = good.clone();
    trailing_garbage.extend_from_slice(b"garbage!");
    for (name, bytes) in [
        ("flipped.gz", flipped),
        ("crc.gz", bad_crc),
        ("cut.gz", cut),
        ("trailing.gz", trailing_garbage),
    ] {
        let file = write(dir.path(), name, &bytes);
        let err = read_images(&file).unwrap_err();
        // A flipped byte may also decode to something that fails the length or magic check.
        if name != "flipped.gz" {
            assert!(matches!(err, DataError::BadGzip { .. }), "{name}: {err}");
        }
        let msg = message_naming(&err, &file);
        assert!(name == "flipped.gz" || msg.contains("corrupt gzip"), "{msg}");
    }
}

#[test]
fn gzip_bomb_is_capped() {
    use std::io::Write;
    // 300 MiB of zeros behind a valid header: more than the 256 MiB cap, a few hundred KB gzipped.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut header = IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [400_000u32, 28, 28] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    enc.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..300 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 2 << 20);
    let err = parse_images(&bomb, Path::new("bomb.gz")).unwrap_err();
    assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
    assert!(err.to_string().starts_with("bomb.gz: larger than"), "{err}");
}

#[test]
fn huge_header_in_tiny_file_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [1u32 << 31, 28, 28] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.resize(100, 7);
    let mut label_bytes = LABELS_MAGIC.to_be_bytes().to_vec();
    label_bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    label_bytes.resize(100, 1);
    let start = Instant::now();
    for (name, b) in [("huge", bytes.clone()), ("huge.gz", gzip(&bytes))] {
        let file = write(dir.path(), name, &b);
        let err = read_images(&file).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected_len: 1_683_627_180_048,
                    actual_len: 100,
                    ..
                }
            ),
            "{err}"
        );
        message_naming(&err, &file);
    }
    let file = write(dir.path(), "huge-labels", &label_bytes);
    assert!(matches!(read_labels(&file), Err(DataError::Truncated { .. })));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn missing_directory_lists_every_file_and_how_to_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let err = data::load(&missing).unwrap_err();
    let msg = message_naming(&err, &missing);
    let DataError::MissingData { expected, .. } = &err else {
        panic!("expected MissingData, got {err}");
    };
    // Debian's package, where installed, supplies Fashion-MNIST.
    let debian = Path::new(data::DEBIAN_FASHION_DIR).is_dir();
    let sets: &[&str] = if debian {
        &["mnist"]
    } else {
        &["mnist", "fashion-mnist"]
    };
    assert_eq!(expected.len(), 4 * sets.len());
    for set in sets {
        for name in data::SET_FILES {
            let path = missing.join(set).join(name);
            assert!(expected.contains(&path), "{} not listed", path.display());
            assert!(msg.contains(name), "{msg}");
        }
        assert!(
            msg.contains(&format!("{}/", missing.join(set).display())),
            "{msg}"
        );
    }
    assert!(
        msg.contains(&format!(
            "spatial-gpu data fetch --data-dir {}",
            missing.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("SPATIAL_GPU_DATA"), "{msg}");
    assert_eq!(data::find_missing(&missing).len(), 4 * sets.len());
}

#[test]
fn load_a_small_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = set_files(7, 4, 3, 5, 10);
    let fashion = set_files(7, 4, 3, 5, 20);
    write_set(dir.path(), "mnist", &mnist, true);
    write_set(dir.path(), "fashion-mnist", &fashion, false);
    assert!(data::find_missing(dir.path()).is_empty());
    let d = data::load(dir.path()).unwrap();
    assert_eq!(d.image_pixels(), 15);
    assert_eq!(d.names(), ["mnist", "fashion-mnist"]);
    assert_eq!(d.tasks[0].train_images.image(2)[4], pixel(10, 2, 4));
    assert_eq!(d.tasks[1].test_images.image(3)[14], pixel(120, 3, 14));
    assert_eq!(d.tasks[0].train_labels, label_values(7, 10));
    assert_eq!(d.tasks[1].test_labels, label_values(4, 23));
    assert_eq!((d.train_pairs(), d.test_pairs()), (7, 4));

    // One file gone: find_missing names it, load says which.
    let gone = dir.path().join("mnist/t10k-labels-idx1-ubyte.gz");
    std::fs::remove_file(&gone).unwrap();
    let missing = data::find_missing(dir.path());
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].set, missing[0].name),
        ("mnist", "t10k-labels-idx1-ubyte")
    );
    let err = data::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingData { set, .. } if set == "mnist"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("1 file(s) missing"), "{msg}");
    assert!(
        msg.lines().any(
            |l| l.contains(&format!("{}/", dir.path().join("mnist").display()))
                && l.trim_end().ends_with("t10k-labels-idx1-ubyte")
        ),
        "{msg}"
    );
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut mnist = set_files(7, 4, 3, 5, 10);
    mnist[1] = labels(&label_values(6, 0));
    write_set(dir.path(), "mnist", &mnist, false);
    write_set(dir.path(), "fashion-mnist", &set_files(7, 4, 3, 5, 20), false);
    let err = data::load(dir.path()).unwrap_err();
    let images_file = dir.path().join("mnist/train-images-idx3-ubyte");
    let labels_file = dir.path().join("mnist/train-labels-idx1-ubyte");
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 7,
                labels: 6,
                ..
            }
        ),
        "{err}"
    );
    let msg = message_naming(&err, &images_file);
    assert!(msg.contains(&labels_file.display().to_string()), "{msg}");
    assert!(msg.contains("7 images") && msg.contains("6 labels"), "{msg}");
}

#[test]
fn image_sizes_must_agree() {
    // Tasks of different image sizes load; the modes that feed one size refuse them, naming both
    // tasks and sizes; concat takes them.
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), "mnist", &set_files(7, 4, 3, 5, 10), true);
    write_set(dir.path(), "fashion-mnist", &set_files(7, 4, 4, 4, 20), true);
    let d = data::load(dir.path()).unwrap();
    assert_eq!(d.pixels(), [15, 16]);
    let shape = d.shape();
    for mode in [InputMode::Mixed, InputMode::Sequential] {
        let err = shape.check_mode(mode).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{mode} mode feeds one image size to the network, but task mnist has 3x5 images and task fashion-mnist has 4x4")),
            "{err}"
        );
    }
    shape.check_mode(InputMode::Concat).unwrap();
    assert_eq!(shape.input_dim(InputMode::Concat), 31);

    // Test images of another size than the training images of the same set.
    let mut mnist = set_files(7, 4, 3, 5, 10);
    mnist[2] = images(4, 5, 3, 0);
    write_set(dir.path(), "mnist", &mnist, true);
    let err = data::load(dir.path()).unwrap_err();
    let file = dir.path().join("mnist/t10k-images-idx3-ubyte.gz");
    assert!(message_naming(&err, &file).contains("are 5x3"), "{err}");
}

/// The length of `bytes` once gunzipped (as they are when not gzip).
fn decompressed_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
        out.len()
    } else {
        bytes.len()
    }
}

/// Random inputs and mutations of valid files: the parsers may fail, but must not panic, and what
/// they accept must be consistent.
#[test]
fn parsers_never_panic_on_garbage() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1D8_F022);
    let valid_images = images(5, 3, 4, 9);
    let valid_labels = labels(&label_values(9, 1));
    let seeds = [
        valid_images.clone(),
        gzip(&valid_images),
        valid_labels.clone(),
        gzip(&valid_labels),
    ];
    let file = Path::new("fuzz");
    let mut accepted = 0;
    let start = Instant::now();
    for round in 0..20_000 {
        let bytes: Vec<u8> = match round % 4 {
            // Pure noise, sometimes behind a valid magic.
            0 => {
                let len = rng.random_range(0..64);
                let mut b: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if rng.random_bool(0.5) && b.len() >= 4 {
                    let magic = if rng.random() { IMAGES_MAGIC } else { LABELS_MAGIC };
                    b[..4].copy_from_slice(&magic.to_be_bytes());
                }
                b
            }
            // A valid file with a few bytes changed.
            1 => {
                let mut b = seeds[rng.random_range(0..seeds.len())].clone();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b
            }
            // A valid file truncated or extended.
            2 => {
                let mut b = seeds[rng.random_range(0..seeds.len())].clone();
                let len = rng.random_range(0..b.len() + 8);
                b.resize(len, rng.random());
                b
            }
            // Small dimensions in an otherwise random header (exercises the length checks).
            _ => {
                let mut b = if rng.random() { IMAGES_MAGIC } else { LABELS_MAGIC }
                    .to_be_bytes()
                    .to_vec();
                for _ in 0..3 {
                    let d: u32 = if rng.random_bool(0.8) {
                        rng.random_range(0..4)
                    } else {
                        rng.random()
                    };
                    b.extend_from_slice(&d.to_be_bytes());
                }
                let extra = rng.random_range(0..40);
                b.extend((0..extra).map(|_| rng.random_range(0..12u8)));
                b
            }
        };
        if let Ok(img) = parse_images(&bytes, file) {
            assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
            accepted += 1;
        }
        if let Ok(l) = parse_labels(&bytes, file) {
            // Header and data exactly: one label per byte after the 8-byte header.
            assert_eq!(l.labels.len() + 8, decompressed_len(&bytes));
            accepted += 1;
        }
    }
    // Some inputs must have been valid, or the loop exercised only the first checks.
    assert!(accepted > 100, "only {accepted} inputs parsed");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}

/// The real data, where `SPATIAL_GPU_DATA` points at it (CI sets it, and `SPATIAL_GPU_REQUIRE_DATA`
/// so that a missing variable fails instead of skipping).
#[test]
fn real_data_when_available() {
    let Some(dir) = std::env::var_os(data::ENV_DATA_DIR).filter(|v| !v.is_empty()) else {
        assert!(
            std::env::var_os("SPATIAL_GPU_REQUIRE_DATA").is_none(),
            "SPATIAL_GPU_REQUIRE_DATA is set but SPATIAL_GPU_DATA is not: point it at the data directory"
        );
        eprintln!(
            "skipping the real-data check: SPATIAL_GPU_DATA is not set \
             (set it to a directory holding mnist/ and fashion-mnist/ to run it)"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let start = Instant::now();
    let d = data::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "loaded the real data from {} in {:?}",
        dir.display(),
        start.elapsed()
    );
    for task in &d.tasks {
        assert_eq!(
            (task.train_len(), task.test_len()),
            (60_000, 10_000),
            "{}",
            task.name
        );
        assert_eq!(
            (task.train_images.rows, task.train_images.cols),
            (28, 28),
            "{}",
            task.name
        );
        assert_eq!(task.train_labels.len(), 60_000);
        assert_eq!(task.test_labels.len(), 10_000);
    }
    let histogram = |labels: &[u8]| {
        let mut h = [0usize; 10];
        for &l in labels {
            h[l as usize] += 1;
        }
        h
    };
    assert_eq!(
        histogram(&d.tasks[0].train_labels),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(histogram(&d.tasks[1].train_labels), [6000; 10]);
    assert_eq!(d.image_pixels(), 784);

    // The checksums in FILES match the data (fetch has nothing to download and no mirror to ask).
    let none = data::Mirrors {
        mnist: &[],
        fashion: &[],
        kmnist: &[],
    };
    let report = data::fetch(&dir, &none, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.present.len(), 8);

    // The input modes on the real sizes.
    let test = data::test_set(InputMode::Concat, &d);
    assert_eq!(
        (test.len, test.input_dim, test.inputs.len()),
        (10_000, 1568, 10_000 * 1568)
    );
    let order = data::epoch_order(InputMode::Sequential, &d, 1, 0);
    assert_eq!((order.len(), order.num_batches(256)), (120_000, 469));

    // Animal-MNIST, a third task: 8000 + 2000 images of 10 classes, 800 / 200 per class.
    let names: Vec<String> = ["mnist", "fashion-mnist", "animal-mnist"]
        .map(String::from)
        .to_vec();
    let sources = data::resolve_tasks(&names, &[]).unwrap();
    let d3 = data::load_tasks(&dir, &sources).unwrap_or_else(|e| panic!("{e}"));
    let animal = &d3.tasks[2];
    assert_eq!(
        (animal.train_len(), animal.test_len(), animal.num_classes),
        (8000, 2000, 10)
    );
    assert_eq!(histogram(&animal.train_labels), [800; 10]);
    assert_eq!(histogram(&animal.test_labels), [200; 10]);
    // An epoch pairs over MNIST's 60000; the test set over its 10000, Animal-MNIST's 2000 labelled once.
    assert_eq!(data::epoch_order(InputMode::Concat, &d3, 1, 0).len(), 60_000);
    let test = data::test_set(InputMode::Concat, &d3);
    assert_eq!((test.len, test.input_dim), (10_000, 3 * 784));
    let labelled = (0..test.len).filter(|r| test.labels[r * 3 + 2] >= 0).count();
    assert_eq!(labelled, 2000);
}
