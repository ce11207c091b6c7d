//! `fetch_files` against a tiny HTTP server on 127.0.0.1: files land verified and atomically, present
//! files are skipped, a 404 falls through to the next mirror, and a wrong checksum leaves nothing.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::*;
use spatial_gpu::data::{self, fetch::sha256_hex, DataError, FileSpec, Mirrors};

/// A one-thread HTTP/1.1 server: answers GET and HEAD for the paths in `files`, 404 otherwise,
/// one request per connection. Records every request line's path.
struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                // A client that hangs up early must not stop the server.
                let _ = handle(stream, &files, &log);
            }
        });
        Server { base, requests }
    }

    fn url(&self, dir: &str) -> String {
        format!("{}/{dir}/", self.base)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn handle(
    mut stream: TcpStream,
    files: &HashMap<String, Vec<u8>>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    log.lock().unwrap().push(path.to_string());
    let (status, body): (&str, &[u8]) = match files.get(path) {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"not found"),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Small valid sets for both names, as (raw files per set, specs with their real checksums).
fn small_sets() -> (HashMap<&'static str, [Vec<u8>; 4]>, Vec<FileSpec>) {
    let sets = HashMap::from([
        ("mnist", set_files(7, 4, 3, 5, 10)),
        ("fashion-mnist", set_files(7, 4, 3, 5, 20)),
    ]);
    let specs = data::FILES
        .iter()
        .map(|f| {
            let i = data::SET_FILES.iter().position(|n| *n == f.name).unwrap();
            let hash = sha256_hex(&sets[f.set][i]);
            FileSpec {
                sha256: Box::leak(hash.into_boxed_str()),
                ..*f
            }
        })
        .collect();
    (sets, specs)
}

/// The server's files: each set's gzipped files under `/good/<set>/<name>.gz`.
fn served(sets: &HashMap<&'static str, [Vec<u8>; 4]>) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    for (set, raw) in sets {
        for (name, bytes) in data::SET_FILES.iter().zip(raw) {
            files.insert(format!("/good/{set}/{name}.gz"), gzip(bytes));
        }
    }
    files
}

#[test]
fn downloads_verify_land_and_are_skipped_next_time() {
    let (sets, specs) = small_sets();
    let files = served(&sets);
    let server = Server::start(files.clone());
    // The first mirror of each set has nothing (404): every file must come from the second.
    let (m404, f404) = (server.url("missing"), server.url("missing"));
    let (mgood, fgood) = (server.url("good/mnist"), server.url("good/fashion-mnist"));
    let mirrors = Mirrors {
        mnist: &[&m404, &mgood],
        fashion: &[&f404, &fgood],
        kmnist: &[],
    };
    let dir = tempfile::tempdir().unwrap();
    let report = data::fetch_files(dir.path(), &specs, &mirrors, false).unwrap();
    assert_eq!(report.downloaded.len(), 8);
    assert!(report.present.is_empty());

    // Every file is the served gzip, under <set>/<name>.gz, and nothing else is there.
    let mut expected = Vec::new();
    for spec in &specs {
        let rel = format!("{}/{}.gz", spec.set, spec.name);
        let on_disk = std::fs::read(dir.path().join(&rel)).unwrap();
        assert_eq!(on_disk, files[&format!("/good/{rel}")], "{rel}");
        expected.push(rel);
    }
    expected.sort();
    assert_eq!(list_files(dir.path()), expected);
    let loaded = data::load(dir.path()).unwrap();
    assert_eq!(loaded.tasks[0].train_labels, label_values(7, 10));

    // Each file was asked of the 404 mirror first, then of the good one.
    let requests = server.requests();
    assert_eq!(requests.len(), 16, "{requests:?}");
    for pair in requests.chunks(2) {
        assert!(
            pair[0].starts_with("/missing/") && pair[1].starts_with("/good/"),
            "{pair:?}"
        );
    }

    // A second fetch finds everything in place and asks the server nothing.
    let again = data::fetch_files(dir.path(), &specs, &mirrors, false).unwrap();
    assert!(again.downloaded.is_empty());
    assert_eq!(again.present.len(), 8);
    assert_eq!(server.requests().len(), 16);
}

#[test]
fn wrong_checksum_is_rejected_and_leaves_nothing() {
    let (sets, mut specs) = small_sets();
    let server = Server::start(served(&sets));
    let good = server.url("good/mnist");
    let mirrors = Mirrors {
        mnist: &[&good, &good],
        fashion: &[],
        kmnist: &[],
    };
    let wrong = "0".repeat(64);
    specs[1].sha256 = Box::leak(wrong.clone().into_boxed_str());
    let actual = sha256_hex(&sets["mnist"][1]);
    let dir = tempfile::tempdir().unwrap();
    let err = data::fetch_files(dir.path(), &specs[1..2], &mirrors, false).unwrap_err();
    let file = dir.path().join("mnist/train-labels-idx1-ubyte");
    assert!(
        matches!(&err, DataError::Checksum { file: f, .. } if *f == file),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}:", file.display())), "{msg}");
    assert!(msg.contains(&wrong) && msg.contains(&actual), "{msg}");
    // Both mirrors were tried, and nothing at all was written.
    assert_eq!(server.requests().len(), 2);
    assert_eq!(list_files(dir.path()), Vec::<String>::new());
    assert!(!dir.path().join("mnist").exists());
}

#[test]
fn all_mirrors_missing_is_a_download_error() {
    let server = Server::start(HashMap::new());
    let (a, b) = (server.url("a"), server.url("b"));
    let mirrors = Mirrors {
        mnist: &[&a, &b],
        fashion: &[],
        kmnist: &[],
    };
    let dir = tempfile::tempdir().unwrap();
    let err = data::fetch_files(dir.path(), &data::FILES[..1], &mirrors, false).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{a}train-images-idx3-ubyte.gz:")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{b}train-images-idx3-ubyte.gz: HTTP 404")),
        "{msg}"
    );
    assert_eq!(list_files(dir.path()), Vec::<String>::new());
}

#[test]
fn corrupt_local_copy_is_replaced() {
    let (sets, specs) = small_sets();
    let server = Server::start(served(&sets));
    let good = server.url("good/mnist");
    let mirrors = Mirrors {
        mnist: &[&good],
        fashion: &[],
        kmnist: &[],
    };
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("mnist/train-images-idx3-ubyte");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"not the file").unwrap();
    let report = data::fetch_files(dir.path(), &specs[..1], &mirrors, false).unwrap();
    assert_eq!(
        report.downloaded,
        [dir.path().join("mnist/train-images-idx3-ubyte.gz")]
    );
    assert_eq!(list_files(dir.path()), ["mnist/train-images-idx3-ubyte.gz"]);
}

#[test]
fn a_mirror_serving_uncompressed_bytes_is_stored_uncompressed() {
    let (sets, specs) = small_sets();
    let raw = sets["fashion-mnist"][3].clone();
    let server = Server::start(HashMap::from([(
        "/plain/t10k-labels-idx1-ubyte.gz".to_string(),
        raw.clone(),
    )]));
    let plain = server.url("plain");
    let mirrors = Mirrors {
        mnist: &[],
        fashion: &[&plain],
        kmnist: &[],
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = specs
        .iter()
        .find(|s| s.set == "fashion-mnist" && s.name == "t10k-labels-idx1-ubyte")
        .unwrap();
    data::fetch_files(dir.path(), std::slice::from_ref(spec), &mirrors, false).unwrap();
    let path = dir.path().join("fashion-mnist/t10k-labels-idx1-ubyte");
    assert_eq!(std::fs::read(path).unwrap(), raw);
}

#[test]
fn reachability_probe() {
    let server = Server::start(HashMap::new());
    let up = server.url("x");
    assert!(data::network_reachable(&Mirrors {
        mnist: &[&up],
        fashion: &[],
        kmnist: &[],
    }));
    // A port nobody listens on (bound, then released) refuses the connection at once.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    assert!(!data::network_reachable(&Mirrors {
        mnist: &[&closed],
        fashion: &[&closed],
        kmnist: &[],
    }));
    assert!(!data::network_reachable(&Mirrors {
        mnist: &[],
        fashion: &[],
        kmnist: &[],
    }));
}

/// KMNIST's published checksums are of the `.gz` files: the bytes as served are checked (before
/// gunzipping), a present `.gz` is recognised by its own hash, and a mirror that serves the file
/// uncompressed cannot be verified and is refused.
#[test]
fn kmnist_is_verified_by_the_sha256_of_its_gz_files() {
    let raw = set_files(9, 4, 3, 3, 40);
    let gz: Vec<Vec<u8>> = raw.iter().map(|b| gzip(b)).collect();
    let mut files = HashMap::new();
    for (name, bytes) in data::SET_FILES.iter().zip(&gz) {
        files.insert(format!("/k/{name}.gz"), bytes.clone());
    }
    // The uncompressed label file, served where the .gz should be.
    files.insert("/plain/train-labels-idx1-ubyte.gz".to_string(), raw[1].clone());
    let server = Server::start(files);
    let specs: Vec<FileSpec> = data::fetch::KMNIST_FILES
        .iter()
        .zip(&gz)
        .map(|(f, bytes)| {
            assert!(f.gzipped);
            FileSpec {
                sha256: Box::leak(sha256_hex(bytes).into_boxed_str()),
                ..*f
            }
        })
        .collect();
    let (plain, good) = (server.url("plain"), server.url("k"));
    let mirrors = Mirrors {
        mnist: &[],
        fashion: &[],
        kmnist: &[&plain, &good],
    };
    let dir = tempfile::tempdir().unwrap();
    let report = data::fetch_files(dir.path(), &specs, &mirrors, false).unwrap();
    assert_eq!(report.downloaded.len(), 4);
    let mut want: Vec<String> = data::SET_FILES.iter().map(|n| format!("kmnist/{n}.gz")).collect();
    want.sort();
    assert_eq!(list_files(dir.path()), want);
    let again = data::fetch_files(dir.path(), &specs, &mirrors, false).unwrap();
    assert_eq!(again.present.len(), 4);
    let sources = data::resolve_tasks(&["kmnist".to_string()], &[]).unwrap();
    let d = data::load_tasks(dir.path(), &sources).unwrap();
    assert_eq!(d.tasks[0].train_labels, label_values(9, 40));

    // Only the mirror that serves the file uncompressed: refused, saying why; nothing written.
    let only_plain = Mirrors {
        mnist: &[],
        fashion: &[],
        kmnist: &[&plain],
    };
    let empty = tempfile::tempdir().unwrap();
    let err = data::fetch_files(empty.path(), &specs[1..2], &only_plain, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("served uncompressed, and the published checksum is of the .gz file"),
        "{err}"
    );
    assert_eq!(list_files(empty.path()), Vec::<String>::new());

    // The real table: KMNIST's files and the published SHA-256 of each .gz.
    let names: Vec<&str> = data::fetch::files_of("kmnist").iter().map(|f| f.name).collect();
    assert_eq!(names, data::SET_FILES);
    assert_eq!(
        data::fetch::KMNIST_FILES[0].sha256,
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"
    );
    assert_eq!(
        data::MIRRORS.for_set("kmnist"),
        ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    );
}

/// A zip archive of `members` (name, bytes), deflated as NIST's is.
fn zip_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// EMNIST-balanced comes out of one archive checked by its MD5: the four members land under
/// EMNIST's names in emnist-balanced/ and load; the archive itself is not kept; a second fetch
/// downloads nothing; a wrong MD5 or an archive without the members writes nothing.
#[test]
fn emnist_balanced_is_taken_out_of_its_verified_archive() {
    use spatial_gpu::data::emnist::{fetch_emnist_balanced, ZipSource};
    let raw = set_files(12, 5, 28, 28, 17);
    let mut members: Vec<(String, Vec<u8>)> = data::EMNIST_BALANCED_FILES
        .iter()
        .zip(&raw)
        .map(|(name, bytes)| (format!("gzip/{name}.gz"), gzip(bytes)))
        .collect();
    // Another split in the same archive is left alone.
    members.push((
        "gzip/emnist-digits-train-labels-idx1-ubyte.gz".into(),
        gzip(&raw[1]),
    ));
    let archive = zip_of(&members);
    let partial = zip_of(&members[1..]);
    let mut files = HashMap::new();
    files.insert("/good/gzip.zip".to_string(), archive.clone());
    files.insert("/partial/gzip.zip".to_string(), partial.clone());
    let server = Server::start(files);
    let (good, missing) = (
        format!("{}/good/gzip.zip", server.base),
        format!("{}/missing/gzip.zip", server.base),
    );
    let md5 = md5_hex(&archive);
    let urls = [missing.as_str(), good.as_str()];
    let source = ZipSource {
        urls: &urls,
        md5: &md5,
    };

    let dir = tempfile::tempdir().unwrap();
    let report = fetch_emnist_balanced(dir.path(), &source, false).unwrap();
    assert_eq!(report.downloaded.len(), 4);
    let mut want: Vec<String> = data::EMNIST_BALANCED_FILES
        .iter()
        .map(|n| format!("emnist-balanced/{n}.gz"))
        .collect();
    want.sort();
    assert_eq!(
        list_files(dir.path()),
        want,
        "the four members only, no archive left"
    );
    let sources = data::resolve_tasks(&["emnist-balanced".to_string()], &[]).unwrap();
    let d = data::load_tasks(dir.path(), &sources).unwrap();
    assert_eq!(d.tasks[0].train_labels, label_values(12, 17));
    let before = server.requests().len();
    let again = fetch_emnist_balanced(dir.path(), &source, false).unwrap();
    assert_eq!((again.downloaded.len(), again.present.len()), (0, 4));
    assert_eq!(
        server.requests().len(),
        before,
        "nothing downloaded the second time"
    );

    // The right archive under a wrong published MD5: refused naming both, nothing written.
    let empty = tempfile::tempdir().unwrap();
    let only_good = [good.as_str()];
    let wrong = ZipSource {
        urls: &only_good,
        md5: "00000000000000000000000000000000",
    };
    let err = fetch_emnist_balanced(empty.path(), &wrong, false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&md5) && msg.contains("00000000000000000000000000000000"),
        "{msg}"
    );
    assert_eq!(list_files(empty.path()), Vec::<String>::new());

    // An archive that lacks a member: named, nothing written.
    let partial_url = format!("{}/partial/gzip.zip", server.base);
    let partial_md5 = md5_hex(&partial);
    let only_partial = [partial_url.as_str()];
    let lacking = ZipSource {
        urls: &only_partial,
        md5: &partial_md5,
    };
    let err = fetch_emnist_balanced(empty.path(), &lacking, false).unwrap_err();
    assert!(
        err.to_string()
            .contains("emnist-balanced-train-images-idx3-ubyte.gz"),
        "{err}"
    );
    assert_eq!(list_files(empty.path()), Vec::<String>::new());
}
