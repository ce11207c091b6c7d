//! Downloading MNIST, Fashion-MNIST and KMNIST from public mirrors, verified by SHA-256.
//!
//! For each file not already present and valid, each mirror of its set is tried in turn for
//! `<name>.gz`. The download is gunzipped in memory (capped, see [`MAX_DECOMPRESSED`]) and the
//! SHA-256 of the *uncompressed* bytes is checked against [`FILES`] (MNIST, Fashion-MNIST); for
//! KMNIST ([`KMNIST_FILES`]), whose published checksums are of the `.gz` files, the SHA-256 of the
//! bytes as served. A mismatch moves on to the next mirror.
//!
//! Animal-MNIST is not downloaded: it has no published IDX files; `data fetch` says how to install it
//! by hand (`super::no_mirror_note`). EMNIST-balanced is published only inside one zip archive of
//! over 500 MB ([`EMNIST_ZIP_URL`]): `super::emnist` fetches that. Only a verified download is written: to a temporary file in the same directory, synced,
//! then renamed over the final name, so a failed or interrupted fetch never leaves a partial file
//! under a name [`super::load`] would read.
//!
//! What is stored: the bytes the mirror served, as `<name>.gz` (about 40 MB for both sets instead of
//! 110 MB uncompressed; [`super::load`] gunzips them in well under a second). A server that decoded
//! the gzip on the fly (`Content-Encoding: gzip`) hands us the uncompressed file; that is stored as
//! `<name>`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::idx::{decompress, is_gzip, read_capped, DataError, MAX_DECOMPRESSED};

/// One file of a data set and the SHA-256 of its uncompressed content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The set's folder under the data directory: `"mnist"` or `"fashion-mnist"`.
    pub set: &'static str,
    /// The file's name without `.gz`.
    pub name: &'static str,
    /// Lower-case hex SHA-256 of the uncompressed file (of the `.gz` file as published when
    /// `gzipped`).
    pub sha256: &'static str,
    /// Whether `sha256` is that of the gzipped file as published (KMNIST publishes only those),
    /// rather than of the uncompressed content.
    pub gzipped: bool,
}

/// The eight files, with the checksums published in the project's data README.
pub const FILES: [FileSpec; 8] = [
    FileSpec {
        set: "mnist",
        name: "train-images-idx3-ubyte",
        gzipped: false,
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    FileSpec {
        set: "mnist",
        name: "train-labels-idx1-ubyte",
        gzipped: false,
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    FileSpec {
        set: "mnist",
        name: "t10k-images-idx3-ubyte",
        gzipped: false,
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    FileSpec {
        set: "mnist",
        name: "t10k-labels-idx1-ubyte",
        gzipped: false,
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    FileSpec {
        set: "fashion-mnist",
        name: "train-images-idx3-ubyte",
        gzipped: false,
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    FileSpec {
        set: "fashion-mnist",
        name: "train-labels-idx1-ubyte",
        gzipped: false,
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    FileSpec {
        set: "fashion-mnist",
        name: "t10k-images-idx3-ubyte",
        gzipped: false,
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    FileSpec {
        set: "fashion-mnist",
        name: "t10k-labels-idx1-ubyte",
        gzipped: false,
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

/// KMNIST's four files, with the SHA-256 of each `.gz` file as published by torchvision's dataset
/// definitions (`torchvision/prototype/datasets/_builtin/mnist.py`, class `KMNIST`, `_CHECKSUMS`;
/// the same values in torchvision-ruby). The KMNIST authors publish MD5s of the same `.gz` files
/// (`bdb82020997e1d708af4cf47b453dcf7`, ... in torchvision's `datasets/mnist.py`); SHA-256 is the
/// stronger of the two published, so it is the one checked.
pub const KMNIST_FILES: [FileSpec; 4] = [
    FileSpec {
        set: "kmnist",
        name: "train-images-idx3-ubyte",
        gzipped: true,
        sha256: "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
    },
    FileSpec {
        set: "kmnist",
        name: "train-labels-idx1-ubyte",
        gzipped: true,
        sha256: "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
    },
    FileSpec {
        set: "kmnist",
        name: "t10k-images-idx3-ubyte",
        gzipped: true,
        sha256: "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
    },
    FileSpec {
        set: "kmnist",
        name: "t10k-labels-idx1-ubyte",
        gzipped: true,
        sha256: "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
    },
];

/// EMNIST's only published form: one zip archive of every split (over 500 MB), and its MD5 as
/// torchvision's `datasets/mnist.py` (class `EMNIST`) lists it; see `super::emnist`.
pub const EMNIST_ZIP_URL: &str = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip";
pub const EMNIST_ZIP_MD5: &str = "58c8d27c78d21e728a6bc7b3cc06412e";

/// The files of a built-in set that `data fetch` can download (none for a set without mirrors).
pub fn files_of(set: &str) -> &'static [FileSpec] {
    match set {
        super::MNIST => &FILES[..4],
        super::FASHION => &FILES[4..],
        super::KMNIST => &KMNIST_FILES,
        _ => &[],
    }
}

/// Base URLs that serve `<base><name>.gz`, per set, tried in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mirrors<'a> {
    pub mnist: &'a [&'a str],
    pub fashion: &'a [&'a str],
    pub kmnist: &'a [&'a str],
}

impl<'a> Mirrors<'a> {
    /// The mirrors of `set` (`"mnist"`, `"fashion-mnist"` or `"kmnist"`); none for another set.
    pub fn for_set(&self, set: &str) -> &'a [&'a str] {
        match set {
            super::MNIST => self.mnist,
            super::FASHION => self.fashion,
            super::KMNIST => self.kmnist,
            _ => &[],
        }
    }
}

/// The public mirrors. (yann.lecun.com is left out: it has answered 403 to downloads for years.)
pub const MIRRORS: Mirrors<'static> = Mirrors {
    mnist: &[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    fashion: &[
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    // The KMNIST authors' own server (the URL of their README and of torchvision).
    kmnist: &["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"],
};

/// The most bytes one download may have (the largest file is 26 MB compressed).
const MAX_DOWNLOAD: u64 = MAX_DECOMPRESSED;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`fetch_files`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Files written by this fetch.
    pub downloaded: Vec<PathBuf>,
    /// Files that were already there with the right checksum, left alone.
    pub present: Vec<PathBuf>,
}

/// Fetches whichever of the eight [`FILES`] `dir` lacks (see [`fetch_files`]).
pub fn fetch(dir: &Path, mirrors: &Mirrors, progress: bool) -> Result<FetchReport, DataError> {
    fetch_files(dir, &FILES, mirrors, progress)
}

/// Makes sure `dir/<set>/<name>` (or `.gz`) exists with the right checksum for every spec: files
/// already there and valid are skipped, others are downloaded (module docs). Stops at the first
/// file that no mirror could deliver: a [`DataError::Checksum`] if some mirror served wrong bytes
/// (naming the file and both hashes), a [`DataError::Download`] otherwise. Files fetched before
/// that stay (they are valid); nothing is left of the failed one. With `progress`, reports each file
/// on stderr with a progress bar.
pub fn fetch_files(
    dir: &Path,
    specs: &[FileSpec],
    mirrors: &Mirrors,
    progress: bool,
) -> Result<FetchReport, DataError> {
    let mut report = FetchReport::default();
    for spec in specs {
        match fetch_one(dir, spec, mirrors, progress)? {
            Fetched::Present(path) => report.present.push(path),
            Fetched::Downloaded(path) => report.downloaded.push(path),
        }
    }
    Ok(report)
}

enum Fetched {
    Present(PathBuf),
    Downloaded(PathBuf),
}

fn fetch_one(dir: &Path, spec: &FileSpec, mirrors: &Mirrors, progress: bool) -> Result<Fetched, DataError> {
    let set_dir = dir.join(spec.set);
    let plain = set_dir.join(spec.name);
    let gz = set_dir.join(format!("{}.gz", spec.name));
    let existing: Vec<PathBuf> = [&plain, &gz]
        .into_iter()
        .filter(|p| p.is_file())
        .cloned()
        .collect();
    for path in &existing {
        if is_valid(path, spec) {
            return Ok(Fetched::Present(path.clone()));
        }
    }
    let mut failures = Vec::new();
    let mut wrong_hash = None;
    let urls: Vec<String> = mirrors
        .for_set(spec.set)
        .iter()
        .map(|base| file_url(base, spec.name))
        .collect();
    for url in &urls {
        if progress {
            eprintln!("fetching {}/{}.gz from {url}", spec.set, spec.name);
        }
        let body = match download(url, progress) {
            Ok(body) => body,
            Err(detail) => {
                failures.push(format!("{url}: {detail}"));
                continue;
            }
        };
        let raw = match decompress(&body, Path::new(url)) {
            Ok(raw) => raw,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        if spec.gzipped && !is_gzip(&body) {
            failures.push(format!(
                "{url}: served uncompressed, and the published checksum is of the .gz file"
            ));
            continue;
        }
        let actual = sha256_hex(if spec.gzipped { &body } else { &raw });
        if actual != spec.sha256 {
            failures.push(format!("{url}: SHA-256 {actual}"));
            wrong_hash = Some(actual);
            continue;
        }
        let target = if is_gzip(&body) { &gz } else { &plain };
        // Created only now, so a failed fetch leaves the directory as it was.
        std::fs::create_dir_all(&set_dir).map_err(|error| DataError::Io {
            file: set_dir.clone(),
            error,
        })?;
        write_atomically(target, &body)?;
        // A corrupt copy under the other name would shadow or confuse the good one.
        for stale in existing.iter().filter(|p| *p != target) {
            let _ = std::fs::remove_file(stale);
        }
        if progress {
            eprintln!("saved {} ({} bytes)", target.display(), body.len());
        }
        return Ok(Fetched::Downloaded(target.clone()));
    }

    Err(match wrong_hash {
        Some(actual) => DataError::Checksum {
            file: plain,
            expected: spec.sha256.to_string(),
            actual,
            detail: if failures.is_empty() {
                format!("no mirror is known for set {}", spec.set)
            } else {
                format!("every mirror failed: {}", failures.join("; "))
            },
        },
        None => DataError::Download {
            url: urls
                .first()
                .cloned()
                .unwrap_or_else(|| format!("{}/{}.gz", spec.set, spec.name)),
            detail: format!(
                "{}\n{}",
                if failures.is_empty() {
                    format!("no mirror is known for set {}", spec.set)
                } else {
                    format!(
                        "a download of {}/{}.gz was tried from every mirror, and failed:\n  {}",
                        spec.set,
                        spec.name,
                        failures.join("\n  ")
                    )
                },
                match spec.set {
                    super::MNIST | super::FASHION => super::install_by_hand(dir, mirrors),
                    set => super::install_by_hand_of(dir, mirrors, &[set]),
                }
            ),
        },
    })
}

/// `<base>/<name>.gz`, whether or not `base` ends with a slash.
fn file_url(base: &str, name: &str) -> String {
    format!("{}/{name}.gz", base.trim_end_matches('/'))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// True when the file (raw or gzip) has the spec's checksum once uncompressed (for a `gzipped`
/// spec: when it is the published `.gz` file itself).
fn is_valid(path: &Path, spec: &FileSpec) -> bool {
    let Ok(bytes) = read_capped(path) else {
        return false;
    };
    if spec.gzipped {
        return sha256_hex(&bytes) == spec.sha256;
    }
    decompress(&bytes, path).is_ok_and(|raw| sha256_hex(&raw) == spec.sha256)
}

/// An HTTP agent. A mirror on this machine (a test's server) is reached directly: a proxy from the
/// environment could not reach it.
fn agent(url: &str, timeout: Duration) -> ureq::Agent {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("");
    let loopback = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host == *h || host.starts_with(&format!("{h}:")));
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
        .timeout_global(Some(timeout))
        .http_status_as_error(false);
    if loopback {
        config = config.proxy(None);
    }
    config.build().into()
}

/// The body of `url`, or why not.
fn download(url: &str, progress: bool) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    download_into(url, &mut body, MAX_DOWNLOAD, progress)?;
    Ok(body)
}

/// Streams the body of `url` into `out`, at most `limit` bytes (more is an error); returns its
/// length, or says why not.
pub(super) fn download_into(
    url: &str,
    out: &mut dyn Write,
    limit: u64,
    progress: bool,
) -> Result<u64, String> {
    let mut response = agent(url, DOWNLOAD_TIMEOUT)
        .get(url)
        .call()
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    let len = response.body().content_length();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(len.unwrap_or(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "  {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let reader = response.body_mut().with_config().limit(limit).reader();
    let n = std::io::copy(&mut bar.wrap_read(reader), out).map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    Ok(n)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it to `path`, so `path`
/// is either absent, its old content, or the whole new content. The temporary is removed on error.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let tmp = path.with_file_name(format!(".{name}.part-{}", std::process::id()));
    let result = (|| {
        // Created exclusively: never through a link planted at the temporary name.
        let mut file = crate::fsio::create_new_file(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::Io {
            file: path.to_path_buf(),
            error,
        });
    }
    // Make the rename itself durable (best effort: not every platform can open a directory).
    if let Some(parent) = path.parent() {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Whether any mirror answers at all, within a few seconds: lets the program fetch the data on its
/// own when it can, and say what to do when it cannot. Any HTTP answer below 500 counts.
pub fn network_reachable(mirrors: &Mirrors) -> bool {
    let name = FILES[0].name;
    mirrors.mnist.iter().chain(mirrors.fashion).any(|base| {
        // KMNIST's one server is not asked: the question is whether the default sets can come.
        let url = file_url(base, name);
        agent(&url, PROBE_TIMEOUT)
            .head(&url)
            .call()
            .is_ok_and(|r| r.status().as_u16() < 500)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(file_url("http://a/b/", "x"), "http://a/b/x.gz");
        assert_eq!(file_url("http://a/b", "x"), "http://a/b/x.gz");
    }

    #[test]
    fn files_cover_both_sets() {
        for set in [super::super::MNIST, super::super::FASHION] {
            let names: Vec<_> = FILES.iter().filter(|f| f.set == set).map(|f| f.name).collect();
            assert_eq!(names, super::super::SET_FILES);
        }
        assert!(FILES.iter().chain(&KMNIST_FILES).all(|f| f.sha256.len() == 64));
        let names: Vec<_> = files_of(super::super::KMNIST).iter().map(|f| f.name).collect();
        assert_eq!(names, super::super::SET_FILES);
        assert!(files_of(super::super::ANIMAL).is_empty());
    }
}
