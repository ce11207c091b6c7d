//! MNIST and Fashion-MNIST: finding them on disk, fetching them, reading them, and turning them into
//! the batches of the three input modes (METHOD.md, "Training").
//!
//! Layout of a data directory (each file also accepted with a `.gz` suffix; the file's content, not
//! its name, decides whether it is gunzipped):
//!
//! ```text
//! DIR/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}
//! DIR/fashion-mnist/{the same four names}
//! ```
//!
//! Fashion-MNIST is also taken from Debian's `dataset-fashion-mnist` package
//! ([`DEBIAN_FASHION_DIR`]) when `DIR/fashion-mnist` lacks it.

pub mod batches;
pub mod fetch;
pub mod idx;

pub use batches::{epoch_order, test_set, Batch, EpochOrder, Example, TestSet};
pub use fetch::{fetch, fetch_files, network_reachable, FetchReport, FileSpec, Mirrors, FILES, MIRRORS};
pub use idx::{parse_images, parse_labels, read_images, read_labels, DataError, IdxImages, IdxLabels};

use std::path::{Path, PathBuf};

/// Environment variable naming the data directory when no option does.
pub const ENV_DATA_DIR: &str = "SPATIAL_GPU_DATA";
/// Folder (under the data directory) and name of the MNIST set.
pub const MNIST: &str = "mnist";
/// Folder (under the data directory) and name of the Fashion-MNIST set.
pub const FASHION: &str = "fashion-mnist";
/// Where Debian's `dataset-fashion-mnist` package installs the set.
pub const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The four files of each set, in the order train images, train labels, test images, test labels.
pub const SET_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// One task's data: training and test images with their labels (classes 0..=9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskData {
    /// `"mnist"` or `"fashion-mnist"`.
    pub name: &'static str,
    pub train_images: IdxImages,
    pub train_labels: Vec<u8>,
    pub test_images: IdxImages,
    pub test_labels: Vec<u8>,
}

impl TaskData {
    /// Reads the four files `[train images, train labels, test images, test labels]` and checks that
    /// each image file has as many images as its label file has labels, and that test images have the
    /// training images' size.
    pub fn from_files(name: &'static str, files: &[PathBuf; 4]) -> Result<TaskData, DataError> {
        let train_images = read_images(&files[0])?;
        let train_labels = read_labels(&files[1])?.labels;
        let test_images = read_images(&files[2])?;
        let test_labels = read_labels(&files[3])?.labels;
        for (images, labels, images_file, labels_file) in [
            (&train_images, &train_labels, &files[0], &files[1]),
            (&test_images, &test_labels, &files[2], &files[3]),
        ] {
            if images.count != labels.len() {
                return Err(DataError::CountMismatch {
                    images_file: images_file.clone(),
                    labels_file: labels_file.clone(),
                    images: images.count,
                    labels: labels.len(),
                });
            }
        }
        check_shape(&test_images, &files[2], &train_images, &files[0])?;
        Ok(TaskData {
            name,
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }

    pub fn train_len(&self) -> usize {
        self.train_images.count
    }

    pub fn test_len(&self) -> usize {
        self.test_images.count
    }
}

fn check_shape(
    images: &IdxImages,
    file: &Path,
    reference: &IdxImages,
    reference_file: &Path,
) -> Result<(), DataError> {
    if (images.rows, images.cols) == (reference.rows, reference.cols) {
        return Ok(());
    }
    Err(DataError::ShapeMismatch {
        file: file.to_path_buf(),
        rows: images.rows,
        cols: images.cols,
        reference_file: reference_file.to_path_buf(),
        reference_rows: reference.rows,
        reference_cols: reference.cols,
    })
}

/// Both tasks. All their images have one size (checked by [`load`]), since one network reads both.
///
/// Concat and mixed inputs pair MNIST with Fashion-MNIST examples. The real sets have equal counts
/// (60000 train, 10000 test); if a pair of sets does not, pairing runs over the smaller count
/// ([`Datasets::train_pairs`], [`Datasets::test_pairs`]): each epoch uses every example of the
/// smaller set once and a fresh random subset of the larger one; the test pairs the first examples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasets {
    pub mnist: TaskData,
    pub fashion: TaskData,
}

impl Datasets {
    /// Pixels per image (784 for the real 28x28 data).
    pub fn image_pixels(&self) -> usize {
        self.mnist.train_images.image_len()
    }

    /// Width of the network's input in `mode` (1568 for concat, 784 otherwise, on real data).
    pub fn input_dim(&self, mode: crate::config::InputMode) -> usize {
        mode.input_dim(self.image_pixels())
    }

    /// Training pairs per epoch in concat and mixed modes: the smaller of the two training counts.
    pub fn train_pairs(&self) -> usize {
        self.mnist.train_len().min(self.fashion.train_len())
    }

    /// Test pairs in concat and mixed modes: the smaller of the two test counts.
    pub fn test_pairs(&self) -> usize {
        self.mnist.test_len().min(self.fashion.test_len())
    }

    /// A small made-up pair of tasks for tests and benchmarks that must not need the real data.
    ///
    /// Each task has 10 random class prototypes (pixels 0 or 255 with probability 1/2); an example is
    /// its class's prototype with about 10% of its pixels flipped, so a network can learn the classes.
    /// Labels are random. Everything comes from `seed`.
    pub fn synthetic(train: usize, test: usize, rows: usize, cols: usize, seed: u64) -> Datasets {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut task = |name: &'static str| {
            let n = rows * cols;
            let prototypes: Vec<Vec<u8>> = (0..10)
                .map(|_| (0..n).map(|_| if rng.random() { 255 } else { 0 }).collect())
                .collect();
            let mut make = |count: usize| {
                let labels: Vec<u8> = (0..count).map(|_| rng.random_range(0..10)).collect();
                let mut pixels = Vec::with_capacity(count * n);
                for &label in &labels {
                    for &p in &prototypes[label as usize] {
                        pixels.push(if rng.random_bool(0.1) { 255 - p } else { p });
                    }
                }
                let images = IdxImages {
                    count,
                    rows,
                    cols,
                    pixels,
                };
                (images, labels)
            };
            let (train_images, train_labels) = make(train);
            let (test_images, test_labels) = make(test);
            TaskData {
                name,
                train_images,
                train_labels,
                test_images,
                test_labels,
            }
        };
        let mnist = task(MNIST);
        let fashion = task(FASHION);
        Datasets { mnist, fashion }
    }
}

/// The data directory: `option` if given, else `$SPATIAL_GPU_DATA` if set and not empty, else
/// `<user cache dir>/spatial-gpu/data` (e.g. `~/.cache/spatial-gpu/data`), else `./data`.
pub fn resolve_data_dir(option: Option<&Path>) -> PathBuf {
    if let Some(dir) = option {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os(ENV_DATA_DIR).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    match dirs::cache_dir() {
        Some(cache) => cache.join("spatial-gpu").join("data"),
        None => PathBuf::from("data"),
    }
}

/// The file `dir/name` or `dir/name.gz`, whichever exists (the uncompressed one if both do).
fn locate(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Some(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    gz.is_file().then_some(gz)
}

/// Where the set's four files are: `Ok` with their paths, or `Err` with the paths that were looked
/// for in `dir/set` and not found. Fashion-MNIST falls back to [`DEBIAN_FASHION_DIR`].
fn locate_set(dir: &Path, set: &str) -> Result<[PathBuf; 4], Vec<PathBuf>> {
    let set_dir = dir.join(set);
    let found = SET_FILES.map(|name| locate(&set_dir, name));
    if let [Some(a), Some(b), Some(c), Some(d)] = found.clone() {
        return Ok([a, b, c, d]);
    }
    if set == FASHION {
        let debian = Path::new(DEBIAN_FASHION_DIR);
        if let [Some(a), Some(b), Some(c), Some(d)] = SET_FILES.map(|name| locate(debian, name)) {
            return Ok([a, b, c, d]);
        }
    }
    Err(SET_FILES
        .iter()
        .zip(found)
        .filter(|(_, f)| f.is_none())
        .map(|(name, _)| set_dir.join(name))
        .collect())
}

/// The files [`load`] would not find (with or without `.gz`), as entries of [`FILES`], so that the
/// caller can fetch just those with [`fetch_files`]. Empty when everything is there.
pub fn find_missing(dir: &Path) -> Vec<FileSpec> {
    let mut missing = Vec::new();
    for set in [MNIST, FASHION] {
        if let Err(paths) = locate_set(dir, set) {
            for path in paths {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                missing.extend(FILES.iter().filter(|f| f.set == set && f.name == name));
            }
        }
    }
    missing
}

/// Reads both sets from `dir` (layout in the module docs) and checks them: counts of images and
/// labels agree, labels are classes, every image of both sets has one size.
///
/// Files are not checked against their SHA-256 here (that is [`fetch`]'s job), so a user may bring
/// other IDX data of the same shape. The two sets are read in parallel.
pub fn load(dir: &Path) -> Result<Datasets, DataError> {
    let mnist_files = locate_set(dir, MNIST);
    let fashion_files = locate_set(dir, FASHION);
    let (mnist_files, fashion_files) = match (mnist_files, fashion_files) {
        (Ok(m), Ok(f)) => (m, f),
        (m, f) => {
            let mut sets = Vec::new();
            let mut expected = Vec::new();
            for (set, result) in [(MNIST, m), (FASHION, f)] {
                if let Err(paths) = result {
                    sets.push(set);
                    expected.extend(paths);
                }
            }
            return Err(DataError::MissingData {
                set: sets.join(" and "),
                dir: dir.to_path_buf(),
                expected,
            });
        }
    };
    let (mnist, fashion) = std::thread::scope(|s| {
        let fashion = s.spawn(|| TaskData::from_files(FASHION, &fashion_files));
        let mnist = TaskData::from_files(MNIST, &mnist_files);
        let fashion = fashion
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (mnist, fashion)
    });
    let (mnist, fashion) = (mnist?, fashion?);
    check_shape(
        &fashion.train_images,
        &fashion_files[0],
        &mnist.train_images,
        &mnist_files[0],
    )?;
    Ok(Datasets { mnist, fashion })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_is_deterministic_and_shaped() {
        let a = Datasets::synthetic(50, 20, 4, 3, 7);
        assert_eq!(a, Datasets::synthetic(50, 20, 4, 3, 7));
        assert_ne!(a, Datasets::synthetic(50, 20, 4, 3, 8));
        assert_eq!(a.image_pixels(), 12);
        assert_eq!(a.fashion.train_images.pixels.len(), 50 * 12);
        assert_eq!(a.mnist.test_labels.len(), 20);
        assert!(a.mnist.train_labels.iter().all(|&l| l < 10));
        assert_eq!((a.train_pairs(), a.test_pairs()), (50, 20));
    }

    #[test]
    fn resolve_prefers_the_option() {
        assert_eq!(resolve_data_dir(Some(Path::new("/x/y"))), PathBuf::from("/x/y"));
    }
}
