//! The Python snippet of docs/CHECKPOINTS.md loads a checkpoint and prints its shapes. Runs it when
//! python3 with safetensors and numpy is present; skips (saying why) otherwise, unless
//! SPATIAL_GPU_REQUIRE_PYTHON=1 (set by .ci/run, which installs them), where it fails instead.

mod support;

use spatial_gpu::config::InputMode;
use spatial_gpu::train;
use std::process::Command;
use support::*;

const START: &str = "<!-- python-snippet:start -->";
const END: &str = "<!-- python-snippet:end -->";

/// The code between the markers of docs/CHECKPOINTS.md, without the Markdown fence.
fn snippet() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CHECKPOINTS.md")).unwrap();
    let start = doc.find(START).expect("start marker in docs/CHECKPOINTS.md") + START.len();
    let end = doc[start..].find(END).expect("end marker in docs/CHECKPOINTS.md") + start;
    let block = doc[start..end].trim();
    let code = block
        .strip_prefix("```python")
        .and_then(|b| b.strip_suffix("```"))
        .expect("a ```python block");
    code.trim_matches('\n').to_string() + "\n"
}

/// Why Python cannot run the snippet here, if it cannot.
fn python_missing() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
    {
        Err(e) => Some(format!("python3 cannot be run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "python3 lacks safetensors or numpy: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

#[test]
fn snippet_has_five_lines() {
    assert_eq!(snippet().lines().count(), 5, "{}", snippet());
}

#[test]
fn python_snippet_prints_the_checkpoint_shapes() {
    if let Some(reason) = python_missing() {
        if std::env::var("SPATIAL_GPU_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
            panic!("SPATIAL_GPU_REQUIRE_PYTHON=1 but {reason}");
        }
        eprintln!("skipped: {reason}");
        return;
    }
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 1, 1);
    let dir = tempfile::tempdir().unwrap();
    train_through(&model, &cfg, &data, dir.path());
    let script = dir.path().join("snippet.py");
    std::fs::write(&script, snippet()).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg(train::checkpoint_path(dir.path()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the snippet failed:\n{}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );

    let s = &model.sizes; // [32, 12, 10, 10, 8, 20]
    let shape = |dims: &[usize]| match dims {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut expected = Vec::new();
    for prefix in ["", "adam_m.", "adam_v."] {
        for l in 1..s.len() {
            expected.push(format!(
                "{prefix}layer{l}.weight {} float32",
                shape(&[s[l], s[l - 1]])
            ));
            expected.push(format!("{prefix}layer{l}.bias {} float32", shape(&[s[l]])));
        }
        for (l, &n) in s.iter().enumerate() {
            expected.push(format!("{prefix}layer{l}.position {} float32", shape(&[n, 2])));
        }
    }
    expected.sort();
    let mut lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.remove(0),
        "sizes [32, 12, 10, 10, 8, 20] epochs done 1",
        "{stdout}"
    );
    assert_eq!(lines, expected, "{stdout}");
}
