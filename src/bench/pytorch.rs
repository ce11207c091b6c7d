//! The PyTorch baseline (`bench/pytorch_baseline.py`) as a child process: whether it can run, its
//! equality check against our reference file, and the long-lived `--serve` process that answers
//! timing requests.

use super::runner::Timing;
use super::BASELINE_SCRIPT;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

/// Whether `python` can import torch, numpy and safetensors: `Ok(torch version)` or why not.
pub fn probe_pytorch(python: &Path) -> std::result::Result<String, String> {
    let out = Command::new(python)
        .args(["-c", "import torch, numpy, safetensors; print(torch.__version__)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed")
            .trim();
        Err(format!(
            "{} cannot import torch, numpy and safetensors: {last}",
            python.display()
        ))
    }
}

/// The baseline script on disk: `--script`, or the built-in copy written to a temporary file
/// (removed on drop).
pub struct Script {
    pub path: PathBuf,
    temporary: bool,
}

impl Script {
    pub fn new(given: Option<&Path>) -> Result<Script> {
        if let Some(p) = given {
            return Ok(Script {
                path: p.to_path_buf(),
                temporary: false,
            });
        }
        let path =
            std::env::temp_dir().join(format!("spatial-gpu-pytorch-baseline-{}.py", std::process::id()));
        std::fs::write(&path, BASELINE_SCRIPT).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Script {
            path,
            temporary: true,
        })
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `python`'s torch can use CUDA: `Ok(())`, or why not (for `--torch-device cuda`).
pub fn probe_cuda(python: &Path) -> std::result::Result<(), String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import torch; print(torch.__version__, torch.cuda.is_available())",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match text.rsplit_once(' ') {
        Some((_, "True")) if out.status.success() => Ok(()),
        Some((version, _)) if out.status.success() => Err(format!(
            "{} has torch {version} without a usable CUDA device (torch.cuda.is_available() is false)",
            python.display()
        )),
        _ => Err(format!("{} cannot import torch", python.display())),
    }
}

/// `python`, with the thread variables of OpenMP, MKL and OpenBLAS set to `threads` (left alone
/// for PyTorch's own default, `None`).
fn python_command(python: &Path, threads: Option<usize>) -> Command {
    let mut cmd = Command::new(python);
    if let Some(threads) = threads {
        let t = threads.to_string();
        for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"] {
            cmd.env(var, &t);
        }
    }
    cmd
}

/// `--threads N` of the script: 0 for PyTorch's own default.
fn threads_arg(threads: Option<usize>) -> String {
    threads.unwrap_or(0).to_string()
}

/// Runs `pytorch_baseline.py --check reference` on `device`: `(passed, its output)`.
pub fn run_check(
    python: &Path,
    script: &Path,
    reference: &Path,
    threads: Option<usize>,
    device: &str,
) -> Result<(bool, String)> {
    let out = python_command(python, threads)
        .arg(script)
        .arg("--check")
        .arg(reference)
        .arg("--threads")
        .arg(threads_arg(threads))
        .arg("--device")
        .arg(device)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// The baseline as a server process (`--serve`): one request per measurement.
pub struct PyServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub info: serde_json::Value,
}

#[derive(Serialize)]
struct PyRequest<'a> {
    spatial: bool,
    batch_size: usize,
    hidden: &'a [usize],
    alpha: f32,
    beta: f32,
    steps: usize,
    warmup: usize,
    variant: &'a str,
}

impl PyServer {
    /// The server on `threads` threads (`None`: PyTorch's own default) and `device`.
    pub fn start(
        python: &Path,
        script: &Path,
        data_dir: &Path,
        threads: Option<usize>,
        device: &str,
    ) -> Result<PyServer> {
        let mut child = python_command(python, threads)
            .arg(script)
            .arg("--serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--threads")
            .arg(threads_arg(threads))
            .arg("--device")
            .arg(device)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", python.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut server = PyServer {
            child,
            stdin: Some(stdin),
            stdout,
            info: serde_json::Value::Null,
        };
        server.info = server
            .read_reply()
            .context("the PyTorch baseline did not start")?;
        Ok(server)
    }

    fn read_reply(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                bail!("the PyTorch baseline exited (see its messages above)");
            }
            // Anything that is not a JSON object (a library's warning) is passed on.
            if line.trim_start().starts_with('{') {
                return Ok(serde_json::from_str(&line)?);
            }
            eprint!("pytorch: {line}");
        }
    }

    /// Times `steps` steps of PyTorch's `variant` (`eager`, or `graph` on CUDA).
    #[allow(clippy::too_many_arguments)]
    pub fn measure(
        &mut self,
        variant: &str,
        spatial: bool,
        batch_size: usize,
        hidden: &[usize],
        alpha: f32,
        beta: f32,
        steps: usize,
        warmup: usize,
    ) -> Result<Timing> {
        let req = PyRequest {
            spatial,
            batch_size,
            hidden,
            alpha,
            beta,
            steps,
            warmup,
            variant,
        };
        let stdin = self.stdin.as_mut().expect("open until drop");
        writeln!(stdin, "{}", serde_json::to_string(&req)?)?;
        stdin.flush()?;
        let v = self.read_reply()?;
        let seconds = v["seconds"]
            .as_f64()
            .ok_or_else(|| anyhow!("bad reply from the baseline: {v}"))?;
        let samples = v["samples"]
            .as_u64()
            .ok_or_else(|| anyhow!("bad reply from the baseline: {v}"))? as usize;
        Ok(Timing {
            seconds,
            cpu_seconds: v["cpu_seconds"].as_f64(),
            samples,
        })
    }

    /// The server's thread count (`torch.get_num_threads()`).
    pub fn threads(&self) -> Option<usize> {
        self.info["threads"].as_u64().map(|t| t as usize)
    }

    pub fn framework(&self) -> String {
        self.info["framework"].as_str().unwrap_or("pytorch").to_string()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // Closing stdin ends the server's loop; wait for it so no process is left behind.
        drop(self.stdin.take());
        let _ = self.child.wait_timeout_or_kill();
    }
}

trait WaitOrKill {
    fn wait_timeout_or_kill(&mut self) -> std::io::Result<()>;
}

impl WaitOrKill for Child {
    fn wait_timeout_or_kill(&mut self) -> std::io::Result<()> {
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < 5.0 {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.kill()?;
        self.wait().map(|_| ())
    }
}
