//! EMNIST-balanced from its one published form: NIST's `gzip.zip`, an archive of every EMNIST split
//! (over 500 MB). `data fetch --tasks emnist-balanced` streams it to a temporary file beside the data
//! (never into memory), checks its MD5 (the only checksum published for it, as torchvision's
//! `datasets/mnist.py`, class `EMNIST`, lists it), takes out the balanced split's four `.gz` members
//! and writes each atomically into `emnist-balanced/` under EMNIST's own names (which the loader
//! reads as well as the usual ones), then deletes the archive. A wrong MD5, an archive without the
//! four members or a member that is not gzip leaves nothing behind.
//!
//! EMNIST's images are stored transposed (each image column by column, as NIST published them);
//! they are used as they are, like the other tasks' files: a fixed permutation of the pixels, which
//! a fully connected network does not notice (a figure of the input images would show them
//! mirrored along the diagonal).

use super::fetch::{download_into, write_atomically, FetchReport};
use super::idx::{decompress, DataError, MAX_DECOMPRESSED};
use super::{builtin_present, EMNIST_BALANCED, EMNIST_BALANCED_FILES};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where an archive can be downloaded from (tried in order) and its MD5 (lower-case hex).
#[derive(Clone, Copy, Debug)]
pub struct ZipSource<'a> {
    pub urls: &'a [&'a str],
    pub md5: &'a str,
}

/// NIST's archive (its only published location) and its published MD5.
pub const EMNIST_ZIP: ZipSource<'static> = ZipSource {
    urls: &[super::fetch::EMNIST_ZIP_URL],
    md5: super::fetch::EMNIST_ZIP_MD5,
};

/// The most bytes the archive may have (it has about 560 MB).
const MAX_ZIP: u64 = 2 << 30;

/// A writer that hashes what passes through it.
struct Md5Writer<W> {
    inner: W,
    md5: Md5,
}

impl<W: Write> Write for Md5Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Makes sure `dir/emnist-balanced/` holds the balanced split (module docs): nothing is done when
/// its four files are already there.
pub fn fetch_emnist_balanced(
    dir: &Path,
    source: &ZipSource,
    progress: bool,
) -> Result<FetchReport, DataError> {
    let set_dir = dir.join(EMNIST_BALANCED);
    let targets: Vec<PathBuf> = EMNIST_BALANCED_FILES
        .iter()
        .map(|m| set_dir.join(format!("{m}.gz")))
        .collect();
    if builtin_present(dir, EMNIST_BALANCED) {
        return Ok(FetchReport {
            downloaded: Vec::new(),
            present: targets.into_iter().filter(|t| t.is_file()).collect(),
        });
    }
    let io = |file: &Path| {
        let file = file.to_path_buf();
        move |error| DataError::Io { file, error }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let archive = dir.join(format!(".emnist-gzip.zip.part-{}", std::process::id()));
    let mut failures = Vec::new();
    let mut wrong_md5 = None;
    for url in source.urls {
        if progress {
            eprintln!("fetching EMNIST's archive (over 500 MB) from {url}");
        }
        let _ = std::fs::remove_file(&archive);
        let file = crate::fsio::create_new_file(&archive).map_err(io(&archive))?;
        let mut out = Md5Writer {
            inner: std::io::BufWriter::new(file),
            md5: Md5::new(),
        };
        let streamed = download_into(url, &mut out, MAX_ZIP, progress).and_then(|_| {
            out.flush().map_err(|e| e.to_string())?;
            Ok(())
        });
        let md5: String = out.md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        drop(out.inner);
        if let Err(detail) = streamed {
            failures.push(format!("{url}: {detail}"));
            continue;
        }
        if md5 != source.md5 {
            failures.push(format!("{url}: MD5 {md5}"));
            wrong_md5 = Some(md5);
            continue;
        }
        let result = extract(&archive, url, &set_dir, &targets, progress);
        let _ = std::fs::remove_file(&archive);
        return result.map(|downloaded| FetchReport {
            downloaded,
            present: Vec::new(),
        });
    }
    let _ = std::fs::remove_file(&archive);
    let detail = format!("every source failed: {}", failures.join("; "));
    Err(match wrong_md5 {
        Some(actual) => DataError::Checksum {
            file: dir.join("gzip.zip"),
            expected: source.md5.to_string(),
            actual,
            detail: format!("MD5 of EMNIST's archive; {detail}"),
        },
        None => DataError::Download {
            url: source.urls.first().copied().unwrap_or("gzip.zip").to_string(),
            detail,
        },
    })
}

/// Takes the balanced split's four members out of the verified archive into `targets`; on any
/// fault, removes those it wrote.
fn extract(
    archive: &Path,
    url: &str,
    set_dir: &Path,
    targets: &[PathBuf],
    progress: bool,
) -> Result<Vec<PathBuf>, DataError> {
    let bad = |detail: String| DataError::Download {
        url: url.to_string(),
        detail,
    };
    let file = std::fs::File::open(archive).map_err(|error| DataError::Io {
        file: archive.to_path_buf(),
        error,
    })?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip archive: {e}")))?;
    // Read and checked all four before writing any, so a faulty archive writes nothing.
    let mut members = Vec::new();
    for member in EMNIST_BALANCED_FILES {
        let want = format!("{member}.gz");
        let name = zip
            .file_names()
            .find(|n| n.rsplit('/').next() == Some(want.as_str()))
            .map(str::to_string)
            .ok_or_else(|| bad(format!("the archive has no member {want}")))?;
        let mut entry = zip.by_name(&name).map_err(|e| bad(format!("{name}: {e}")))?;
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_DECOMPRESSED)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        decompress(&bytes, Path::new(&name)).map_err(|e| bad(format!("{name}: {e}")))?;
        members.push(bytes);
    }
    std::fs::create_dir_all(set_dir).map_err(|error| DataError::Io {
        file: set_dir.to_path_buf(),
        error,
    })?;
    let mut written = Vec::new();
    for (target, bytes) in targets.iter().zip(&members) {
        if let Err(e) = write_atomically(target, bytes) {
            for w in &written {
                let _ = std::fs::remove_file(w);
            }
            return Err(e);
        }
        if progress {
            eprintln!("saved {} ({} bytes)", target.display(), bytes.len());
        }
        written.push(target.clone());
    }
    Ok(written)
}
