//! Checks on a run's output directory before any training starts, shared by `train` and the grids,
//! and the lock that keeps a second process out of a run directory while one writes it.

use anyhow::{bail, Context, Result};
use std::fs::{File, TryLockError};
use std::path::Path;

/// Where the lock of a run directory lives where a directory cannot be locked itself (not Unix);
/// its content is meaningless, only its OS lock counts.
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a run directory, held until dropped (or the process dies: the OS releases
/// it, so a killed run never leaves a stale lock behind).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock of the run directory `dir` (which must exist), or fails at once, naming the
/// directory and `option`, if another process holds it: two processes writing one run would mix
/// their checkpoints and metrics. On Unix the directory itself is locked, so that a lock leaves no
/// file behind in a directory it was refused (or a run could not start) in.
pub fn lock_run_dir(dir: &Path, option: &str) -> Result<RunLock> {
    let target = if cfg!(unix) {
        dir.to_path_buf()
    } else {
        dir.join(LOCK_FILE)
    };
    let file = if cfg!(unix) {
        File::open(&target)
    } else {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&target)
    }
    .with_context(|| {
        format!(
            "{option} {}: cannot open {} to lock it",
            dir.display(),
            target.display()
        )
    })?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => bail!(
            "{option} {}: another spatial-gpu process is writing this run directory (it holds its lock); \
             wait for it to finish, or choose another directory",
            dir.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("{option} {}: cannot lock {}", dir.display(), target.display()))
        }
    }
}

/// Makes sure `out` can hold a new run: creates it, locks it, refuses one that holds another run,
/// and checks that it is writable, all before any training starts. The lock is taken before the
/// check, so that of two processes given the same directory one gets it and the other an error.
pub fn prepare_out_dir(out: &Path) -> Result<RunLock> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let lock = lock_run_dir(out, "--out")?;
    check_new_run_dir(out)?;
    Ok(lock)
}

/// Refuses a directory that holds a run, and one that cannot be written; forgets the empty
/// `metrics.jsonl` a run leaves when it fails before its first checkpoint (nothing of it can be
/// resumed, so the directory starts afresh). The caller holds the directory's lock.
pub fn check_new_run_dir(out: &Path) -> Result<()> {
    forget_unsaved_start(out);
    for existing in [
        crate::train::checkpoint_path(out),
        crate::train::summary_path(out),
        crate::train::metrics_path(out),
    ] {
        if existing.exists() {
            bail!(
                "--out {}: the directory already holds a run ({} exists); continue it with `spatial-gpu train --resume {}` or choose another --out",
                out.display(),
                existing.display(),
                out.display()
            );
        }
    }
    check_writable(out, "--out")
}

/// Removes the `metrics.jsonl` of a run that saved no checkpoint, when it holds no line (a metrics
/// line is only written after its epoch's checkpoint, so an empty file is all such a run leaves).
pub fn forget_unsaved_start(dir: &Path) {
    let metrics = crate::train::metrics_path(dir);
    let unsaved = !crate::train::checkpoint_path(dir).exists() && !crate::train::summary_path(dir).exists();
    if unsaved && std::fs::metadata(&metrics).is_ok_and(|m| m.is_file() && m.len() == 0) {
        let _ = std::fs::remove_file(metrics);
    }
}

/// Fails unless a file can be created in `dir` (`option` names the option in the message).
pub fn check_writable(dir: &Path, option: &str) -> Result<()> {
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| {
        format!(
            "{option} {}: cannot create a file in the directory",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
