//! Records the git commit the program is built from, for the provenance of its runs
//! (`src/provenance.rs`): `SPATIAL_GPU_COMMIT` is `git rev-parse HEAD` (40 hex digits) and
//! `SPATIAL_GPU_COMMIT_DIRTY` is `true` or `false` as `git status --porcelain` lists changes or not.
//! Outside a git repository of this crate (a crates.io download: its `.cargo_vcs_info.json` names the
//! commit it was packaged from, if any) or without git, the commit is `unknown` and so is the flag.
//!
//! The script reruns when HEAD moves (a commit, a checkout), when the branch it points to moves, and
//! when the index or the sources change (which may make the tree dirty or clean), so the values are
//! never those of an older state of the tree.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `.cargo_vcs_info.json` (written by `cargo package`) names, if any.
fn packaged_commit(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let rest = &text[text.find("\"sha1\"")? + 6..];
    let start = rest.find('"')? + 1;
    let sha = &rest[start..start + rest[start..].find('"')?];
    is_commit(sha).then(|| sha.to_lowercase())
}

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    for path in ["build.rs", "Cargo.toml", "Cargo.lock", "src", "shaders"] {
        println!("cargo:rerun-if-changed={path}");
    }
    // A path that does not exist would make cargo rerun the script (and rebuild the crate) every time.
    let watch = |path: &Path| {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    };
    watch(&dir.join(".cargo_vcs_info.json"));
    // Only a repository that tracks this crate's Cargo.toml describes this build (not, say, a
    // repository that happens to contain cargo's registry, where a crates.io download lives).
    let ours = git(&dir, &["ls-files", "--error-unmatch", "Cargo.toml"]).is_some();
    let head = if ours {
        git(&dir, &["rev-parse", "HEAD"]).filter(|c| is_commit(c))
    } else {
        None
    };
    let (commit, dirty) = match head {
        Some(commit) => {
            // The files whose change moves HEAD or changes the status; `--git-path` finds them in a
            // worktree and in a plain repository alike.
            let mut files = vec!["HEAD".to_string(), "index".to_string(), "packed-refs".to_string()];
            if let Some(r) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
                files.push(r);
            }
            for p in files {
                if let Some(path) = git(&dir, &["rev-parse", "--git-path", &p]) {
                    watch(&dir.join(path));
                }
            }
            let dirty = match git(&dir, &["status", "--porcelain"]) {
                Some(s) => (!s.is_empty()).to_string(),
                None => "unknown".to_string(),
            };
            (commit, dirty)
        }
        None => match packaged_commit(&dir) {
            Some(c) => (c, "unknown".to_string()),
            None => ("unknown".to_string(), "unknown".to_string()),
        },
    };
    println!("cargo:rustc-env=SPATIAL_GPU_COMMIT={commit}");
    println!("cargo:rustc-env=SPATIAL_GPU_COMMIT_DIRTY={dirty}");
}
