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

    /// The lower-case hex SHA-256 of each of the four files as read, decompressed, in the order of
    /// [`SET_FILES`]. The parsers accept a file only if it is exactly its header and its data, so
    /// the file is rebuilt from what was parsed: the digest of a real file is the one published in
    /// [`FILES`], whether it was stored gzipped or not.
    pub fn digests(&self) -> [String; 4] {
        use sha2::{Digest, Sha256};
        let hex = |h: Sha256| -> String { h.finalize().iter().map(|b| format!("{b:02x}")).collect() };
        let images = |i: &IdxImages| {
            let mut h = Sha256::new();
            h.update(idx::IMAGES_MAGIC.to_be_bytes());
            for d in [i.count, i.rows, i.cols] {
                h.update((d as u32).to_be_bytes());
            }
            h.update(&i.pixels);
            hex(h)
        };
        let labels = |l: &[u8]| {
            let mut h = Sha256::new();
            h.update(idx::LABELS_MAGIC.to_be_bytes());
            h.update((l.len() as u32).to_be_bytes());
            h.update(l);
            hex(h)
        };
        [
            images(&self.train_images),
            labels(&self.train_labels),
            images(&self.test_images),
            labels(&self.test_labels),
        ]
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

    /// What identifies the data: for each of the eight files, its name under the data directory
    /// (`mnist/train-images-idx3-ubyte`, ...) and the hex SHA-256 of its decompressed content (see
    /// [`TaskData::digests`]). A checkpoint records them, so that a run is resumed or evaluated on
    /// its own data only (`checkpoint::check_data`). Hashes about 110 MB for the real sets (the two
    /// sets in parallel): a fraction of a second.
    pub fn digests(&self) -> Vec<(String, String)> {
        let (mnist, fashion) = std::thread::scope(|s| {
            let fashion = s.spawn(|| self.fashion.digests());
            let mnist = self.mnist.digests();
            let fashion = fashion
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (mnist, fashion)
        });
        [(MNIST, mnist), (FASHION, fashion)]
            .into_iter()
            .flat_map(|(set, d)| {
                SET_FILES
                    .iter()
                    .zip(d)
                    .map(move |(name, hex)| (format!("{set}/{name}"), hex))
            })
            .collect()
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

/// What is at `path`: `Ok(None)` if nothing, `Ok(Some(true))` for the kind wanted (a directory if
/// `dir`, else a regular file), and an error saying exactly what is there otherwise: another kind
/// of file (a FIFO, a directory, ...), a symbolic link loop, a dangling link, a path that cannot be
/// read. "Missing" is only ever said of what is really not there.
fn probe(path: &Path, dir: bool) -> Result<Option<bool>, DataError> {
    let bad = |problem: String| DataError::BadPath {
        path: path.to_path_buf(),
        problem,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match std::fs::symlink_metadata(path) {
                Ok(_) => Err(bad(format!(
                    "a symbolic link to {}, which does not exist",
                    std::fs::read_link(path).map_or("?".into(), |t| t.display().to_string())
                ))),
                Err(_) => Ok(None),
            };
        }
        Err(e) => return Err(bad(format!("cannot be read ({e})"))),
    };
    let kind = file_kind(&meta.file_type());
    match (dir, kind) {
        (true, "directory") | (false, "regular file") => Ok(Some(true)),
        (true, _) => Err(bad(format!("is a {kind}, not a directory"))),
        (false, _) => Err(bad(format!("is a {kind}, not a regular file"))),
    }
}

/// A file type in words.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if t.is_dir() {
        "directory"
    } else if t.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// The file `dir/name` or `dir/name.gz`, whichever exists (the uncompressed one if both do); an
/// error if either is there but not a readable regular file.
fn locate(dir: &Path, name: &str) -> Result<Option<PathBuf>, DataError> {
    let plain = dir.join(name);
    if probe(&plain, false)?.is_some() {
        return Ok(Some(plain));
    }
    let gz = dir.join(format!("{name}.gz"));
    Ok(probe(&gz, false)?.map(|_| gz))
}

/// Where the set's four files are: `Ok(Ok)` with their paths, or `Ok(Err)` with the paths that
/// were looked for in `dir/set` and not found; `Err` if something in the way is not what it should
/// be (see [`probe`]). Fashion-MNIST falls back to [`DEBIAN_FASHION_DIR`].
fn locate_set(dir: &Path, set: &str) -> Result<Result<[PathBuf; 4], Vec<PathBuf>>, DataError> {
    let set_dir = dir.join(set);
    let found = match probe(dir, true)?.and(probe(&set_dir, true)?) {
        Some(_) => {
            let mut found: [Option<PathBuf>; 4] = Default::default();
            for (f, name) in found.iter_mut().zip(SET_FILES) {
                *f = locate(&set_dir, name)?;
            }
            found
        }
        None => Default::default(),
    };
    if let [Some(a), Some(b), Some(c), Some(d)] = found.clone() {
        return Ok(Ok([a, b, c, d]));
    }
    if set == FASHION {
        let debian = Path::new(DEBIAN_FASHION_DIR);
        if let [Ok(Some(a)), Ok(Some(b)), Ok(Some(c)), Ok(Some(d))] =
            SET_FILES.map(|name| locate(debian, name))
        {
            return Ok(Ok([a, b, c, d]));
        }
    }
    Ok(Err(SET_FILES
        .iter()
        .zip(found)
        .filter(|(_, f)| f.is_none())
        .map(|(name, _)| set_dir.join(name))
        .collect()))
}

/// The files [`load`] would not find (with or without `.gz`), as entries of [`FILES`], so that the
/// caller can fetch just those with [`fetch_files`]. Empty when everything is there. (Something in
/// the way that is not a file, which [`load`] reports, counts as missing here: fetching then says
/// why it cannot write the file.)
pub fn find_missing(dir: &Path) -> Vec<FileSpec> {
    let mut missing = Vec::new();
    for set in [MNIST, FASHION] {
        let located = locate_set(dir, set)
            .unwrap_or_else(|_| Err(SET_FILES.iter().map(|name| dir.join(set).join(name)).collect()));
        if let Err(paths) = located {
            for path in paths {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                missing.extend(FILES.iter().filter(|f| f.set == set && f.name == name));
            }
        }
    }
    missing
}

/// The message of [`DataError::MissingData`]: a few lines saying which files are missing, folder by
/// folder, how to fetch them, and how to install them by hand.
pub fn missing_data_message(dir: &Path, expected: &[PathBuf]) -> String {
    let mut folders: Vec<(&Path, Vec<String>)> = Vec::new();
    for path in expected {
        let folder = path.parent().unwrap_or(dir);
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        match folders.iter_mut().find(|(f, _)| *f == folder) {
            Some((_, names)) => names.push(name),
            None => folders.push((folder, vec![name])),
        }
    }
    let width = folders
        .iter()
        .map(|(f, _)| f.display().to_string().len())
        .max()
        .unwrap_or(0);
    let mut msg = format!(
        "{}: MNIST / Fashion-MNIST data not found: {} file(s) missing (each may also be gzipped, as NAME.gz):",
        dir.display(),
        expected.len()
    );
    for (folder, names) in &folders {
        let folder = format!("{}/", folder.display());
        msg += &format!("\n  {folder:<w$} {}", names.join(", "), w = width + 1);
    }
    msg += &format!(
        "\nTo download them: spatial-gpu data fetch --data-dir {}\n{}\nOr give --data-dir (or set {ENV_DATA_DIR} to) a directory that holds them.",
        dir.display(),
        install_by_hand(dir, &MIRRORS)
    );
    msg
}

/// How to install the data by hand, in a few lines: which files, where each set can be downloaded
/// (the first of `mirrors`), and where they go.
pub fn install_by_hand(dir: &Path, mirrors: &Mirrors) -> String {
    let mut msg = format!(
        "By hand: download NAME.gz for NAME in {} from",
        SET_FILES.join(", ")
    );
    for set in [MNIST, FASHION] {
        if let Some(base) = mirrors.for_set(set).first() {
            msg += &format!("\n  {set:<13}  {base}");
        }
    }
    msg += &format!(
        "\ninto {}/ and {}/ (gzipped or not).",
        dir.join(MNIST).display(),
        dir.join(FASHION).display()
    );
    msg
}

/// Reads both sets from `dir` (layout in the module docs) and checks them: counts of images and
/// labels agree, labels are classes, every image of both sets has one size.
///
/// Files are not checked against their SHA-256 here (that is [`fetch`]'s job), so a user may bring
/// other IDX data of the same shape. The two sets are read in parallel.
pub fn load(dir: &Path) -> Result<Datasets, DataError> {
    let mnist_files = locate_set(dir, MNIST)?;
    let fashion_files = locate_set(dir, FASHION)?;
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
