//! Reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number, one big-endian `u32` per dimension, then the data. The
//! magic is `00 00 TT DD`: two zero bytes, the element type (`0x08` = unsigned byte, the only one
//! these data sets use) and the number of dimensions (3 for images: count, rows, cols; 1 for labels).
//!
//! The parsers treat their input as untrusted: they are what a fuzzer calls. They never panic, never
//! allocate from a size the header claims (only from bytes that really arrived), check every size
//! with checked arithmetic against the actual length, and cap what a gzip stream may inflate to.
//! Gzip is recognised by its magic bytes (`1f 8b`), not by the file name, so a mis-named file works.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The most bytes a file may hold or a gzip stream may inflate to. The largest real file
/// (60000 images of 28x28) is 47 MB; the cap turns a gzip bomb or a wrong file into a clean error.
pub const MAX_DECOMPRESSED: u64 = 256 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Deflate cannot compress better than about 1032:1, so a stream of `n` bytes inflates to at most
/// `1032 * n` bytes (plus a little): a bound on the capacity hint we take from the gzip trailer.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// A stack of `count` greyscale images, each `rows x cols`, row-major, one byte per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` bytes: image `i` is `pixels[i * rows * cols..(i + 1) * rows * cols]`.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Pixels per image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `i`. Panics if `i >= count`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// The labels of an IDX label file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxLabels {
    pub labels: Vec<u8>,
}

/// Everything that can go wrong finding, fetching or reading the data. Every message starts with
/// the file (or directory, or URL) at fault, so a user knows where to look.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // The OS error is part of the message and deliberately not the error's `source`: anyhow's
    // `{:#}` prints the chain of sources, which would repeat its text.
    #[error("{}: {error}", .file.display())]
    Io { file: PathBuf, error: std::io::Error },
    /// Something is at a path of the data directory, but not what should be there (see `probe` in
    /// `data/mod.rs`): a FIFO, a file for a directory, a symbolic link loop, an unreadable path.
    #[error("{}: {problem}", .path.display())]
    BadPath { path: PathBuf, problem: String },
    #[error(
        "{}: not an IDX {what} file: magic number is {found:#010x}, expected {expected:#010x}",
        .file.display(),
        what = if *.expected == IMAGES_MAGIC { "image" } else { "label" }
    )]
    BadMagic {
        file: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{}: truncated: the header needs {expected_len} bytes of header and data, the file has only {actual_len}",
        .file.display()
    )]
    Truncated {
        file: PathBuf,
        /// Header plus data, as the header's dimensions say (saturating at `u64::MAX`).
        expected_len: u64,
        actual_len: u64,
    },
    #[error(
        "{}: {} unexpected bytes after the data: the header needs {expected_len} bytes, the file has {actual_len}",
        .file.display(),
        .actual_len - .expected_len
    )]
    Padded {
        file: PathBuf,
        expected_len: u64,
        actual_len: u64,
    },
    #[error("{}: a dimension in the header is zero (dimensions {dims:?})", .file.display())]
    ZeroDimension { file: PathBuf, dims: Vec<u32> },
    #[error("{}: larger than the {limit}-byte limit (decompressed); not an MNIST file", .file.display())]
    TooLarge { file: PathBuf, limit: u64 },
    #[error(
        "{}: label {label} at index {index} is not one of task {task}'s {classes} classes (0..={}, read from its training labels)",
        .file.display(),
        .classes - 1
    )]
    LabelOutOfRange {
        file: PathBuf,
        task: String,
        index: usize,
        label: u8,
        classes: usize,
    },
    #[error("unknown task {name}: the known tasks are {} (or define one with --task {name}=DIR, a directory of the four IDX files)", .known.join(", "))]
    UnknownTask { name: String, known: Vec<String> },
    #[error("{what}: task {name} is named twice")]
    DuplicateTask { name: String, what: String },
    #[error("--task {spec}: {problem}")]
    BadTaskSpec { spec: String, problem: String },
    #[error(
        "{}: {images} images, but {} has {labels} labels",
        .images_file.display(),
        .labels_file.display()
    )]
    CountMismatch {
        images_file: PathBuf,
        labels_file: PathBuf,
        images: usize,
        labels: usize,
    },
    #[error(
        "{}: images are {rows}x{cols}, but those of {} are {reference_rows}x{reference_cols}; a task's images must share one size",
        .file.display(),
        .reference_file.display()
    )]
    ShapeMismatch {
        file: PathBuf,
        rows: usize,
        cols: usize,
        reference_file: PathBuf,
        reference_rows: usize,
        reference_cols: usize,
    },
    #[error("{}: corrupt gzip stream: {detail}", .file.display())]
    BadGzip { file: PathBuf, detail: String },
    #[error("{}", crate::data::missing_data_message(.dir, .set, .expected))]
    MissingData {
        /// Which task(s), joined by ` and `: `mnist`, `fashion-mnist and animal-mnist`, ...
        set: String,
        /// The data directory that was searched.
        dir: PathBuf,
        /// Every file that was looked for and not found (each also accepted with a `.gz` suffix).
        expected: Vec<PathBuf>,
    },
    #[error(
        "{}: SHA-256 mismatch: expected {expected}, got {actual} ({detail})",
        .file.display()
    )]
    Checksum {
        file: PathBuf,
        expected: String,
        actual: String,
        /// Where the bad copy came from and what the other mirrors said.
        detail: String,
    },
    #[error("{url}: {detail}")]
    Download { url: String, detail: String },
}

/// Parses an IDX image file (3 dimensions, unsigned bytes) from raw or gzip bytes.
/// `file` only names the source in errors.
pub fn parse_images(bytes: &[u8], file: &Path) -> Result<IdxImages, DataError> {
    let raw = decompress(bytes, file)?;
    let dims = parse_header(&raw, IMAGES_MAGIC, 3, file)?;
    let [count, rows, cols] = [dims[0], dims[1], dims[2]];
    let header_len = 4 + 4 * 3;
    let data = take_data(raw, header_len, &dims, file)?;
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels: data,
    })
}

/// Parses an IDX label file (1 dimension, unsigned bytes) from raw or gzip bytes. Any byte is a
/// label: a task's classes are read from its training labels (`TaskData::from_files` checks the
/// test labels against them). `file` only names the source in errors.
pub fn parse_labels(bytes: &[u8], file: &Path) -> Result<IdxLabels, DataError> {
    let raw = decompress(bytes, file)?;
    let dims = parse_header(&raw, LABELS_MAGIC, 1, file)?;
    let labels = take_data(raw, 4 + 4, &dims, file)?;
    Ok(IdxLabels { labels })
}

/// Reads and parses an IDX image file, raw or gzip.
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    parse_images(&read_capped(path)?, path)
}

/// Reads and parses an IDX label file, raw or gzip.
pub fn read_labels(path: &Path) -> Result<IdxLabels, DataError> {
    parse_labels(&read_capped(path)?, path)
}

/// Reads a whole file, refusing one larger than [`MAX_DECOMPRESSED`] before reading it.
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, DataError> {
    let io_err = |error| DataError::Io {
        file: path.to_path_buf(),
        error,
    };
    let len = std::fs::metadata(path).map_err(io_err)?.len();
    if len > MAX_DECOMPRESSED {
        return Err(DataError::TooLarge {
            file: path.to_path_buf(),
            limit: MAX_DECOMPRESSED,
        });
    }
    std::fs::read(path).map_err(io_err)
}

/// True when `bytes` start with the gzip magic `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// The bytes, inflated if they are gzip (by magic, not by name), borrowed as they are otherwise.
/// Concatenated gzip members are accepted (as `gunzip` does); anything after the last member that is
/// not another valid member is an error. The output is capped at [`MAX_DECOMPRESSED`] bytes.
pub fn decompress<'a>(bytes: &'a [u8], file: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if !is_gzip(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    // The trailer's ISIZE (uncompressed length mod 2^32) saves re-allocations for real files. It is
    // untrusted, so the hint is bounded by what deflate could possibly produce from this many bytes.
    let hint = match bytes.len().checked_sub(4) {
        Some(at) if bytes.len() >= 18 => {
            let isize = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            (isize as u64)
                .min(MAX_DEFLATE_RATIO.saturating_mul(bytes.len() as u64))
                .min(MAX_DECOMPRESSED) as usize
        }
        _ => 0,
    };
    let mut out = Vec::with_capacity(hint);
    let mut decoder = MultiGzDecoder::new(bytes).take(MAX_DECOMPRESSED + 1);
    decoder.read_to_end(&mut out).map_err(|e| DataError::BadGzip {
        file: file.to_path_buf(),
        detail: e.to_string(),
    })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DataError::TooLarge {
            file: file.to_path_buf(),
            limit: MAX_DECOMPRESSED,
        });
    }
    Ok(Cow::Owned(out))
}

/// Checks the magic number and reads the `ndims` big-endian dimensions; none may be zero.
fn parse_header(raw: &[u8], magic: u32, ndims: usize, file: &Path) -> Result<Vec<u32>, DataError> {
    let header_len = 4 + 4 * ndims;
    let truncated = || DataError::Truncated {
        file: file.to_path_buf(),
        expected_len: header_len as u64,
        actual_len: raw.len() as u64,
    };
    let word = |i: usize| -> Option<u32> {
        let b = raw.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0).ok_or_else(truncated)?;
    if found != magic {
        return Err(DataError::BadMagic {
            file: file.to_path_buf(),
            found,
            expected: magic,
        });
    }
    let dims: Vec<u32> = (1..=ndims)
        .map(word)
        .collect::<Option<_>>()
        .ok_or_else(truncated)?;
    if dims.contains(&0) {
        return Err(DataError::ZeroDimension {
            file: file.to_path_buf(),
            dims,
        });
    }
    Ok(dims)
}

/// Checks that `raw` is exactly the header plus the product of `dims` bytes, and returns the data.
/// The expected length is computed with checked (saturating) arithmetic, so an absurd header fails
/// as `Truncated` without allocating anything.
fn take_data(raw: Cow<'_, [u8]>, header_len: usize, dims: &[u32], file: &Path) -> Result<Vec<u8>, DataError> {
    let data_len = dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
    let expected_len = (header_len as u64).saturating_add(data_len);
    let actual_len = raw.len() as u64;
    if actual_len < expected_len {
        return Err(DataError::Truncated {
            file: file.to_path_buf(),
            expected_len,
            actual_len,
        });
    }
    if actual_len > expected_len {
        return Err(DataError::Padded {
            file: file.to_path_buf(),
            expected_len,
            actual_len,
        });
    }
    Ok(match raw {
        Cow::Borrowed(b) => b[header_len..].to_vec(),
        Cow::Owned(mut v) => {
            v.drain(..header_len);
            v
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_bytes(count: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [count, rows, cols] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..count * rows * cols).map(|i| (i % 251) as u8));
        b
    }

    #[test]
    fn parses_raw_images() {
        let img = parse_images(&images_bytes(7, 3, 5), Path::new("x")).unwrap();
        assert_eq!((img.count, img.rows, img.cols), (7, 3, 5));
        assert_eq!(img.pixels.len(), 105);
        assert_eq!(img.image(1)[0], 15);
    }

    #[test]
    fn huge_header_in_tiny_input_is_truncated() {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [u32::MAX, u32::MAX, u32::MAX] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.resize(100, 0);
        match parse_images(&b, Path::new("huge")) {
            Err(DataError::Truncated {
                expected_len,
                actual_len,
                ..
            }) => {
                assert_eq!(expected_len, u64::MAX);
                assert_eq!(actual_len, 100);
            }
            other => panic!("expected Truncated, got {other:?}"),
        }
    }

    #[test]
    fn short_input_is_truncated_not_bad_magic() {
        for n in 0..4 {
            let b = &IMAGES_MAGIC.to_be_bytes()[..n];
            assert!(matches!(
                parse_images(b, Path::new("s")),
                Err(DataError::Truncated { .. })
            ));
        }
    }
}
