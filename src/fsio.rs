//! File creation that a planted link cannot redirect, shared by the checkpoint writer and the
//! dataset download (both write a temporary file, then rename it into place).

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Creates `path` for writing only if nothing is there (`create_new`: `O_CREAT | O_EXCL`, which
/// by POSIX fails on a symbolic link too, dangling or not, rather than follow it): a link planted
/// at the temporary name must not redirect the write to its target. Something already at `path` (a
/// temporary file a killed process with our pid left behind, or a planted link) is removed (a link
/// itself, never its target) and creation is tried once more.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    let open = || fs::OpenOptions::new().write(true).create_new(true).open(path);
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}
