//! Checks on a run's output directory before any training starts, shared by `train` and the grids.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Makes sure `out` can hold a new run: creates it, refuses one that holds another run, and checks
/// that it is writable, all before any training starts.
pub fn prepare_out_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {}: exists and is not a directory", out.display());
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
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
