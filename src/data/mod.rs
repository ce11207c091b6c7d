//! Tasks: named IDX data sets (MNIST, Fashion-MNIST, Animal-MNIST, KMNIST, EMNIST-balanced, or any
//! directory of IDX files), finding them on disk, fetching them, reading them, and turning them into
//! the batches of the three input modes (METHOD.md, "Training").
//!
//! Layout of a data directory (each file also accepted with a `.gz` suffix; the file's content, not
//! its name, decides whether it is gunzipped):
//!
//! ```text
//! DIR/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte}
//! DIR/fashion-mnist/{the same four names}
//! DIR/animal-mnist/, DIR/kmnist/, DIR/emnist-balanced/ {the same four names}
//! ```
//!
//! EMNIST-balanced is also found under its own names (`emnist-balanced-train-images-idx3-ubyte`,
//! ...), as the published archive holds them. A task given as `--task NAME=DIR` is read from `DIR`
//! with the same four names. Fashion-MNIST is also taken from Debian's `dataset-fashion-mnist`
//! package ([`DEBIAN_FASHION_DIR`]) when `DIR/fashion-mnist` lacks it.

pub mod batches;
pub mod emnist;
pub mod fetch;
pub mod idx;
pub mod sources;

pub use batches::{epoch_order, test_set, Batch, EpochOrder, Example, TestSet};
pub use fetch::{fetch, fetch_files, network_reachable, FetchReport, FileSpec, Mirrors, FILES, MIRRORS};
pub use idx::{parse_images, parse_labels, read_images, read_labels, DataError, IdxImages, IdxLabels};
pub use sources::{check_task_name, default_sources, parse_task_spec, resolve_tasks, TaskSource};

use crate::config::{DataShape, TaskHead, TaskShape};
use std::path::{Path, PathBuf};

/// Environment variable naming the data directory when no option does.
pub const ENV_DATA_DIR: &str = "SPATIAL_GPU_DATA";
/// Folder (under the data directory) and name of the MNIST set.
pub const MNIST: &str = "mnist";
/// Folder (under the data directory) and name of the Fashion-MNIST set.
pub const FASHION: &str = "fashion-mnist";
/// Folder and name of Animal-MNIST (ten animal silhouettes, 8000 train and 2000 test images).
pub const ANIMAL: &str = "animal-mnist";
/// Folder and name of Kuzushiji-MNIST.
pub const KMNIST: &str = "kmnist";
/// Folder and name of EMNIST's balanced split (47 classes).
pub const EMNIST_BALANCED: &str = "emnist-balanced";
/// The tasks known by name, each read from the folder of that name under the data directory.
pub const BUILTIN_TASKS: [&str; 5] = [MNIST, FASHION, ANIMAL, KMNIST, EMNIST_BALANCED];
/// Where Debian's `dataset-fashion-mnist` package installs the set.
pub const DEBIAN_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The four files of each set, in the order train images, train labels, test images, test labels.
pub const SET_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];
/// EMNIST's own names of the balanced split's files (in the published `gzip.zip`), in the order of
/// [`SET_FILES`].
pub const EMNIST_BALANCED_FILES: [&str; 4] = [
    "emnist-balanced-train-images-idx3-ubyte",
    "emnist-balanced-train-labels-idx1-ubyte",
    "emnist-balanced-test-images-idx3-ubyte",
    "emnist-balanced-test-labels-idx1-ubyte",
];

/// One task's data: training and test images with their labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskData {
    /// The task's name: a built-in name (`mnist`, `fashion-mnist`, ...) or a `--task NAME=DIR` one.
    pub name: String,
    /// Classes of the task: 1 + the largest training label. Every test label is below it.
    pub num_classes: usize,
    pub train_images: IdxImages,
    pub train_labels: Vec<u8>,
    pub test_images: IdxImages,
    pub test_labels: Vec<u8>,
}

impl TaskData {
    /// Reads the four files `[train images, train labels, test images, test labels]` and checks that
    /// each image file has as many images as its label file has labels, that test images have the
    /// training images' size, and that every test label is one of the classes the training labels
    /// have (`1 + max`).
    pub fn from_files(name: &str, files: &[PathBuf; 4]) -> Result<TaskData, DataError> {
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
        let task = TaskData::new(name, train_images, train_labels, test_images, test_labels);
        task.check_labels(&files[3])?;
        Ok(task)
    }

    /// A task from its parts; the class count is read from the training labels (see
    /// [`TaskData::check_labels`] for the test labels).
    pub fn new(
        name: &str,
        train_images: IdxImages,
        train_labels: Vec<u8>,
        test_images: IdxImages,
        test_labels: Vec<u8>,
    ) -> TaskData {
        let num_classes = train_labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        TaskData {
            name: name.to_string(),
            num_classes,
            train_images,
            train_labels,
            test_images,
            test_labels,
        }
    }

    /// Every test label must be one of the training labels' classes: an error naming the task and
    /// `test_labels_file` otherwise.
    pub fn check_labels(&self, test_labels_file: &Path) -> Result<(), DataError> {
        match self
            .test_labels
            .iter()
            .position(|&l| l as usize >= self.num_classes)
        {
            None => Ok(()),
            Some(index) => Err(DataError::LabelOutOfRange {
                file: test_labels_file.to_path_buf(),
                task: self.name.clone(),
                index,
                label: self.test_labels[index],
                classes: self.num_classes,
            }),
        }
    }

    pub fn train_len(&self) -> usize {
        self.train_images.count
    }

    pub fn test_len(&self) -> usize {
        self.test_images.count
    }

    /// The task as the model sees it: its head and image size.
    pub fn shape(&self) -> TaskShape {
        TaskShape {
            head: TaskHead::new(&self.name, self.num_classes),
            rows: self.train_images.rows,
            cols: self.train_images.cols,
        }
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

/// The tasks of a run, in head order: task `t`'s labels go to head `t`.
///
/// Concat and mixed inputs show one example of every task at once. An epoch is one pass over the
/// largest training set; a smaller set is repeated in fresh permutations until it is as long
/// ([`batches::epoch_order`], METHOD.md "Tasks"). With equal sizes (the real MNIST and
/// Fashion-MNIST) that is one permutation of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasets {
    pub tasks: Vec<TaskData>,
}

impl Datasets {
    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The tasks' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name.clone()).collect()
    }

    /// The task named `name`.
    pub fn task(&self, name: &str) -> Option<&TaskData> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// What the data decides about the model: each task's head and image size.
    pub fn shape(&self) -> DataShape {
        DataShape {
            tasks: self.tasks.iter().map(TaskData::shape).collect(),
        }
    }

    /// Pixels per image of each task (784 each for the real 28x28 data).
    pub fn pixels(&self) -> Vec<usize> {
        self.tasks.iter().map(|t| t.train_images.image_len()).collect()
    }

    /// Pixels per image of the first task (784 for the real data).
    pub fn image_pixels(&self) -> usize {
        self.pixels().first().copied().unwrap_or(0)
    }

    /// Width of the network's input in `mode` (1568 for concat, 784 otherwise, on MNIST and
    /// Fashion-MNIST).
    pub fn input_dim(&self, mode: crate::config::InputMode) -> usize {
        // `mode.input_dim(&self.pixels())`, without allocating (every batch asks).
        let pixels = self.tasks.iter().map(|t| t.train_images.image_len());
        match mode {
            crate::config::InputMode::Concat => pixels.sum(),
            _ => pixels.max().unwrap_or(0),
        }
    }

    /// Training examples per epoch in concat and mixed modes: the largest training count.
    pub fn train_pairs(&self) -> usize {
        self.tasks.iter().map(TaskData::train_len).max().unwrap_or(0)
    }

    /// Test examples in concat and mixed modes: the largest test count (every task's test examples
    /// are each evaluated once; see [`batches::test_set`]).
    pub fn test_pairs(&self) -> usize {
        self.tasks.iter().map(TaskData::test_len).max().unwrap_or(0)
    }

    /// What identifies the data: for each task's four files, its name as `TASK/FILE`
    /// (`mnist/train-images-idx3-ubyte`, ...) and the hex SHA-256 of its decompressed content (see
    /// [`TaskData::digests`]). A checkpoint records them, so that a run is resumed or evaluated on
    /// its own data only (`checkpoint::check_data`). Hashes about 55 MB per real set (the sets in
    /// parallel): a fraction of a second.
    pub fn digests(&self) -> Vec<(String, String)> {
        let all: Vec<[String; 4]> = std::thread::scope(|s| {
            let handles: Vec<_> = self.tasks.iter().map(|t| s.spawn(|| t.digests())).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        });
        self.tasks
            .iter()
            .zip(all)
            .flat_map(|(task, d)| {
                SET_FILES
                    .iter()
                    .zip(d)
                    .map(move |(name, hex)| (format!("{}/{name}", task.name), hex))
            })
            .collect()
    }

    /// A small made-up pair of tasks named `mnist` and `fashion-mnist`, 10 classes each, for tests
    /// and benchmarks that must not need the real data (see [`Datasets::synthetic_tasks`]).
    pub fn synthetic(train: usize, test: usize, rows: usize, cols: usize, seed: u64) -> Datasets {
        let spec = |name| SyntheticTask {
            name,
            classes: 10,
            rows,
            cols,
            train,
            test,
        };
        Datasets::synthetic_tasks(&[spec(MNIST), spec(FASHION)], seed)
    }

    /// Made-up tasks of any image sizes and class counts.
    ///
    /// Each task has random class prototypes (pixels 0 or 255 with probability 1/2); an example is
    /// its class's prototype with about 10% of its pixels flipped, so a network can learn the classes.
    /// Labels are random; the task has `classes` classes whether or not its labels use them all.
    /// Everything comes from `seed`.
    pub fn synthetic_tasks(tasks: &[SyntheticTask], seed: u64) -> Datasets {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut task = |spec: &SyntheticTask| {
            let (rows, cols, classes) = (spec.rows, spec.cols, spec.classes);
            assert!(
                (1..=255).contains(&classes),
                "a made-up task has 1 to 255 classes"
            );
            let n = rows * cols;
            let prototypes: Vec<Vec<u8>> = (0..classes)
                .map(|_| (0..n).map(|_| if rng.random() { 255 } else { 0 }).collect())
                .collect();
            let mut make = |count: usize| {
                // Drawn as `u8` (as they always were), so the made-up data of a seed stays the same.
                let labels: Vec<u8> = (0..count).map(|_| rng.random_range(0..classes as u8)).collect();
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
            let (train_images, train_labels) = make(spec.train);
            let (test_images, test_labels) = make(spec.test);
            TaskData {
                name: spec.name.to_string(),
                num_classes: classes,
                train_images,
                train_labels,
                test_images,
                test_labels,
            }
        };
        Datasets {
            tasks: tasks.iter().map(&mut task).collect(),
        }
    }
}

/// One made-up task of [`Datasets::synthetic_tasks`].
#[derive(Clone, Copy, Debug)]
pub struct SyntheticTask {
    pub name: &'static str,
    pub classes: usize,
    pub rows: usize,
    pub cols: usize,
    pub train: usize,
    pub test: usize,
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

/// The folder a task is read from: its `--task` directory, or `dir/NAME` for a built-in task.
pub fn task_dir(dir: &Path, source: &TaskSource) -> PathBuf {
    source.dir.clone().unwrap_or_else(|| dir.join(&source.name))
}

/// Where the task's four files are: `Ok(Ok)` with their paths, or `Ok(Err)` with the paths that
/// were looked for in its folder ([`task_dir`]) and not found; `Err` if something in the way is not
/// what it should be (see [`probe`]). Fashion-MNIST falls back to [`DEBIAN_FASHION_DIR`];
/// EMNIST-balanced is also found under its own file names ([`EMNIST_BALANCED_FILES`]).
fn locate_set(dir: &Path, source: &TaskSource) -> Result<Result<[PathBuf; 4], Vec<PathBuf>>, DataError> {
    let set_dir = task_dir(dir, source);
    let parent_ok = match &source.dir {
        Some(_) => Some(true),
        None => probe(dir, true)?,
    };
    let builtin = source.dir.is_none();
    let found = match parent_ok.and(probe(&set_dir, true)?) {
        Some(_) => {
            let mut found: [Option<PathBuf>; 4] = Default::default();
            for (i, (f, name)) in found.iter_mut().zip(SET_FILES).enumerate() {
                *f = locate(&set_dir, name)?;
                if f.is_none() && builtin && source.name == EMNIST_BALANCED {
                    *f = locate(&set_dir, EMNIST_BALANCED_FILES[i])?;
                }
            }
            found
        }
        None => Default::default(),
    };
    if let [Some(a), Some(b), Some(c), Some(d)] = found.clone() {
        return Ok(Ok([a, b, c, d]));
    }
    if builtin && source.name == FASHION {
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

/// Whether all four files of the built-in task `name` are in `dir` (gzipped or not).
pub fn builtin_present(dir: &Path, name: &str) -> bool {
    let source = TaskSource {
        name: name.to_string(),
        dir: None,
    };
    matches!(locate_set(dir, &source), Ok(Ok(_)))
}

/// The files of MNIST and Fashion-MNIST that [`load`] would not find (see [`find_missing_of`]).
pub fn find_missing(dir: &Path) -> Vec<FileSpec> {
    find_missing_of(dir, &[MNIST, FASHION])
}

/// The files of the built-in tasks `sets` that loading would not find (with or without `.gz`), as
/// entries of [`FILES`], so that the caller can fetch just those with [`fetch_files`]. Empty when
/// everything is there; a task without published files (Animal-MNIST, EMNIST-balanced) adds
/// nothing. (Something in the way that is not a file, which loading reports, counts as missing
/// here: fetching then says why it cannot write the file.)
pub fn find_missing_of(dir: &Path, sets: &[&str]) -> Vec<FileSpec> {
    let mut missing = Vec::new();
    for &set in sets {
        let source = TaskSource {
            name: set.to_string(),
            dir: None,
        };
        let located = locate_set(dir, &source)
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
/// folder, and, for built-in tasks, how to fetch them or install them by hand.
pub fn missing_data_message(dir: &Path, sets: &str, expected: &[PathBuf]) -> String {
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
    let names: Vec<&str> = sets.split(" and ").collect();
    let shown: Vec<String> = names.iter().map(|n| crate::config::display_name(n)).collect();
    let mut msg = format!(
        "{}: {} data not found: {} file(s) missing (each may also be gzipped, as NAME.gz):",
        dir.display(),
        shown.join(" / "),
        expected.len()
    );
    for (folder, names) in &folders {
        let folder = format!("{}/", folder.display());
        msg += &format!("\n  {folder:<w$} {}", names.join(", "), w = width + 1);
    }
    let fetchable: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !MIRRORS.for_set(n).is_empty() || *n == EMNIST_BALANCED)
        .collect();
    if !fetchable.is_empty() {
        let tasks = if fetchable == [MNIST, FASHION] || fetchable == [MNIST] || fetchable == [FASHION] {
            String::new()
        } else {
            format!(" --tasks {}", fetchable.join(","))
        };
        msg += &format!(
            "\nTo download them: spatial-gpu data fetch --data-dir {}{tasks}\n{}",
            dir.display(),
            install_by_hand_of(dir, &MIRRORS, &fetchable)
        );
    }
    for name in &names {
        if let Some(how) = no_mirror_note(name) {
            msg += &format!("\n{how}");
        }
    }
    msg += &format!("\nOr give --data-dir (or set {ENV_DATA_DIR} to) a directory that holds them.");
    msg
}

/// How to get a built-in task that `data fetch` cannot download, in one line; `None` for the others.
pub fn no_mirror_note(name: &str) -> Option<String> {
    match name {
        ANIMAL => Some(
            "animal-mnist has no published IDX files: convert the PyPI package animal-mnist as docs/METHOD.md (\"Tasks\") says."
                .into(),
        ),
        EMNIST_BALANCED => Some(format!(
            "emnist-balanced is published only inside one archive of over 500 MB, {} (MD5 {}); `data fetch` takes \
             the four files out of it. By hand: unzip it and copy the four emnist-balanced-*-idx?-ubyte.gz files into the \
             emnist-balanced/ folder.",
            fetch::EMNIST_ZIP_URL,
            fetch::EMNIST_ZIP_MD5
        )),
        _ => None,
    }
}

/// How to install MNIST and Fashion-MNIST by hand (see [`install_by_hand_of`]).
pub fn install_by_hand(dir: &Path, mirrors: &Mirrors) -> String {
    install_by_hand_of(dir, mirrors, &[MNIST, FASHION])
}

/// How to install the sets `sets` by hand, in a few lines: which files, where each set can be
/// downloaded (the first of `mirrors`), and where they go.
pub fn install_by_hand_of(dir: &Path, mirrors: &Mirrors, sets: &[&str]) -> String {
    let mut msg = format!(
        "By hand: download NAME.gz for NAME in {} from",
        SET_FILES.join(", ")
    );
    for &set in sets {
        if let Some(base) = mirrors.for_set(set).first() {
            msg += &format!("\n  {set:<13}  {base}");
        }
    }
    let folders: Vec<String> = sets
        .iter()
        .map(|s| format!("{}/", dir.join(s).display()))
        .collect();
    let folders = match folders.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => folders.join(""),
    };
    msg += &format!("\ninto {folders} (gzipped or not).");
    msg
}

/// Reads MNIST and Fashion-MNIST from `dir` (see [`load_tasks`]).
pub fn load(dir: &Path) -> Result<Datasets, DataError> {
    load_tasks(dir, &default_sources())
}

/// Reads the tasks `sources` (built-in ones from `dir`, layout in the module docs) and checks each:
/// counts of images and labels agree, a task's images share one size, every test label is one of
/// the task's classes (read from its training labels). Tasks may have different image sizes and
/// class counts: the input mode decides whether that is allowed (`DataShape::check_mode`).
///
/// Files are not checked against their SHA-256 here (that is [`fetch`]'s job), so a user may bring
/// other IDX data of the same shape. The tasks are read in parallel. Every missing file of every
/// task is reported at once.
pub fn load_tasks(dir: &Path, sources: &[TaskSource]) -> Result<Datasets, DataError> {
    let mut files = Vec::with_capacity(sources.len());
    let mut missing_sets = Vec::new();
    let mut expected = Vec::new();
    for source in sources {
        match locate_set(dir, source)? {
            Ok(f) => files.push(f),
            Err(paths) => {
                missing_sets.push(source.name.as_str());
                expected.extend(paths);
            }
        }
    }
    if !missing_sets.is_empty() {
        return Err(DataError::MissingData {
            set: missing_sets.join(" and "),
            dir: dir.to_path_buf(),
            expected,
        });
    }
    let tasks: Vec<Result<TaskData, DataError>> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .iter()
            .zip(&files)
            .map(|(source, f)| s.spawn(move || TaskData::from_files(&source.name, f)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    Ok(Datasets {
        tasks: tasks.into_iter().collect::<Result<_, _>>()?,
    })
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
        assert_eq!(a.tasks[1].train_images.pixels.len(), 50 * 12);
        assert_eq!(a.tasks[0].test_labels.len(), 20);
        assert!(a.tasks[0].train_labels.iter().all(|&l| l < 10));
        assert_eq!((a.train_pairs(), a.test_pairs()), (50, 20));
        assert_eq!(a.names(), ["mnist", "fashion-mnist"]);
    }

    #[test]
    fn synthetic_tasks_of_other_sizes() {
        let spec = |name, classes, rows, train| SyntheticTask {
            name,
            classes,
            rows,
            cols: rows,
            train,
            test: 7,
        };
        let d = Datasets::synthetic_tasks(&[spec("small", 3, 8, 30), spec("big", 10, 28, 50)], 1);
        assert_eq!(d.pixels(), [64, 784]);
        assert_eq!(d.input_dim(crate::config::InputMode::Concat), 848);
        assert_eq!(d.tasks[0].num_classes, 3);
        assert!(d.tasks[0].train_labels.iter().all(|&l| l < 3));
        assert_eq!((d.train_pairs(), d.test_pairs()), (50, 7));
    }

    #[test]
    fn resolving_tasks() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let custom = vec![("mine".to_string(), PathBuf::from("/d"))];
        let s = resolve_tasks(&names(&["mnist", "mine"]), &custom).unwrap();
        assert_eq!(s[0].dir, None);
        assert_eq!(s[1].dir.as_deref(), Some(Path::new("/d")));
        let e = resolve_tasks(&names(&["mnist", "nope"]), &custom).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("unknown task nope") && msg.contains("animal-mnist") && msg.contains("mine"),
            "{msg}"
        );
        let e = resolve_tasks(&names(&["mnist", "mnist"]), &[]).unwrap_err();
        assert!(e.to_string().contains("task mnist is named twice"), "{e}");
        let twice = vec![custom[0].clone(), custom[0].clone()];
        assert!(resolve_tasks(&names(&["mine"]), &twice).is_err());
        assert!(parse_task_spec("a b=/x").is_err());
        assert!(parse_task_spec("ab").is_err());
        assert!(parse_task_spec("ab=").is_err());
        assert_eq!(
            parse_task_spec("a.b-c=/x/y=z").unwrap(),
            ("a.b-c".into(), PathBuf::from("/x/y=z"))
        );
    }

    #[test]
    fn resolve_prefers_the_option() {
        assert_eq!(resolve_data_dir(Some(Path::new("/x/y"))), PathBuf::from("/x/y"));
    }
}
