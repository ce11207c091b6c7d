//! Where a run came from: the program (name, version, git commit), the command line, the data, and
//! when each invocation that trained it ran. `summary.json` holds it as `provenance`; each checkpoint
//! holds the invocations so far (metadata `provenance`), so that a resumed run keeps its earlier
//! start and the times of every segment.
//!
//! Times are RFC 3339 in UTC with milliseconds (`2026-12-03T07:10:52.123Z`), formatted from
//! [`SystemTime`] by `humantime`.

use crate::checkpoint::Progress;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The program's name.
pub const PROGRAM: &str = env!("CARGO_PKG_NAME");
/// The program's version (Cargo.toml).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit the program was built from (40 hex digits), or `unknown` when it was built outside
/// a git repository (e.g. from crates.io) or without git (see `build.rs`).
pub const COMMIT: &str = env!("SPATIAL_GPU_COMMIT");
/// `true` when the working tree had uncommitted changes at build time, `false` when it had none,
/// `unknown` with an unknown commit.
pub const COMMIT_DIRTY: &str = env!("SPATIAL_GPU_COMMIT_DIRTY");

/// The commit's dirty flag: `None` when unknown.
pub fn commit_dirty() -> Option<bool> {
    match COMMIT_DIRTY {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// One run of the program: what was run, by which build, where, on which data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// [`PROGRAM`].
    pub program: String,
    /// [`VERSION`].
    pub version: String,
    /// [`COMMIT`].
    pub commit: String,
    /// Uncommitted changes in the build's working tree (`null`: unknown, see [`COMMIT_DIRTY`]).
    pub commit_dirty: Option<bool>,
    /// The command line as given, program first.
    pub argv: Vec<String>,
    /// `argv` as one line a POSIX shell reads back as `argv` (each word quoted where needed).
    pub command: String,
    /// The working directory, which relative paths of `argv` are relative to.
    pub working_directory: String,
    /// The data directory, absolute (`null` when the data did not come from a directory).
    pub data_dir: Option<String>,
    /// The `--config` file, absolute, when one was given.
    pub config_file: Option<String>,
}

impl Invocation {
    /// This build run with `argv`, on the data in `data_dir`, with options from `config_file`.
    pub fn new(argv: Vec<String>, data_dir: Option<&Path>, config_file: Option<&Path>) -> Invocation {
        Invocation {
            program: PROGRAM.to_string(),
            version: VERSION.to_string(),
            commit: COMMIT.to_string(),
            commit_dirty: commit_dirty(),
            command: argv.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" "),
            argv,
            working_directory: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            data_dir: data_dir.map(absolute),
            config_file: config_file.map(absolute),
        }
    }

    /// [`Invocation::new`] with this process's command line.
    pub fn from_env(data_dir: Option<&Path>, config_file: Option<&Path>) -> Invocation {
        let argv = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Invocation::new(argv, data_dir, config_file)
    }
}

/// `path` made absolute: with symbolic links resolved where it exists, else joined to the working
/// directory.
fn absolute(path: &Path) -> String {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Where a run stood, for a segment's ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct At {
    /// Epochs finished.
    pub epoch: usize,
    /// Batches finished in the epoch under way.
    pub batch: usize,
}

impl From<Progress> for At {
    fn from(p: Progress) -> At {
        At {
            epoch: p.epoch,
            batch: p.batch,
        }
    }
}

/// One invocation that trained a run, from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it saved its last checkpoint: at the run's last epoch, or before it was interrupted,
    /// killed or failed (a run resumed after its last epoch, which trains nothing: when it ended).
    pub ended: String,
    /// Where the run stood when it started.
    pub from: At,
    /// Where the run stood when it ended.
    pub to: At,
    /// The backend it trained on.
    pub backend: String,
    #[serde(flatten)]
    pub invocation: Invocation,
}

/// The invocations that trained a run so far (checkpoint metadata `provenance`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segments {
    pub segments: Vec<Segment>,
}

impl Segments {
    /// The record a checkpoint's metadata holds (`None` when it has none, or one this build cannot
    /// read: then the earlier segments are unknown).
    pub fn from_metadata(text: Option<&str>) -> Segments {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    /// Starts a new segment now, at `from`.
    pub fn start(&mut self, invocation: Invocation, backend: String, from: Progress) {
        let now = now();
        self.segments.push(Segment {
            started: now.clone(),
            ended: now,
            from: from.into(),
            to: from.into(),
            backend,
            invocation,
        });
    }

    /// The current segment has reached `to`, now.
    pub fn reach(&mut self, to: Progress) {
        if let Some(s) = self.segments.last_mut() {
            s.ended = now();
            s.to = to.into();
        }
    }

    /// As JSON, for the checkpoint's metadata.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("segments serialise")
    }
}

/// `summary.json`'s `provenance`: the invocation that wrote it, the run's data, its start and end,
/// and every segment of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The invocation that finished the run (the last segment's).
    #[serde(flatten)]
    pub invocation: Invocation,
    /// Each data file (`mnist/train-images-idx3-ubyte`, ...) and the hex SHA-256 of its content.
    pub data: BTreeMap<String, String>,
    /// When the run started: its first known segment's start (RFC 3339, UTC).
    pub started: String,
    /// When it finished (RFC 3339, UTC).
    pub finished: String,
    /// Every invocation that trained it, in order. A run resumed from a checkpoint written before
    /// checkpoints recorded them starts with the resumed segment.
    pub segments: Vec<Segment>,
}

impl Provenance {
    /// The provenance of a run whose last segment just ended.
    pub fn new(segments: Segments, data: &[(String, String)]) -> Provenance {
        let segments = segments.segments;
        let last = segments.last().expect("a run has a segment");
        Provenance {
            invocation: last.invocation.clone(),
            data: data.iter().cloned().collect(),
            started: segments[0].started.clone(),
            finished: last.ended.clone(),
            segments,
        }
    }
}

/// The time now, RFC 3339 in UTC.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// `t` as RFC 3339 in UTC with milliseconds, `1970-01-01T00:00:00.000Z` for a time before 1970.
pub fn rfc3339(t: SystemTime) -> String {
    // humantime formats instants from 1970 on; a clock set before that reads as 1970.
    humantime::format_rfc3339_millis(t.max(UNIX_EPOCH)).to_string()
}

/// `word` as one POSIX shell word: as it is when it holds nothing a shell would split or expand,
/// else in single quotes (a quote inside written `'\''`).
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339(UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(86_399, 999), "1970-01-01T23:59:59.999Z");
        // Leap days: 2000 (divisible by 400) has one, 2100 (by 100) has not.
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(951_868_800, 0), "2000-03-01T00:00:00.000Z");
        assert_eq!(at(1_709_164_800, 5), "2024-02-29T00:00:00.005Z");
        assert_eq!(at(4_107_456_000, 0), "2100-02-28T00:00:00.000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(1_798_761_599, 0), "2026-12-31T23:59:59.000Z");
        assert_eq!(at(253_402_300_799, 0), "9999-12-31T23:59:59.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn shell_words_read_back_as_given() {
        assert_eq!(shell_quote("--alpha"), "--alpha");
        assert_eq!(shell_quote("runs/a-1"), "runs/a-1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("my runs"), "'my runs'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn segments_round_trip_through_metadata_and_keep_the_first_start() {
        let mut s = Segments::default();
        let inv = Invocation::new(vec!["spatial-gpu".into(), "train".into()], None, None);
        s.start(inv.clone(), "cpu".into(), Progress::default());
        s.reach(Progress { epoch: 1, batch: 3 });
        let mut back = Segments::from_metadata(Some(&s.to_json()));
        assert_eq!(back, s);
        back.start(inv, "cpu".into(), Progress { epoch: 1, batch: 3 });
        back.reach(Progress { epoch: 2, batch: 0 });
        let p = Provenance::new(back.clone(), &[("mnist/x".into(), "ab".into())]);
        assert_eq!(p.started, s.segments[0].started);
        assert_eq!(p.finished, back.segments[1].ended);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].from, At { epoch: 1, batch: 3 });
        assert_eq!(Segments::from_metadata(Some("not json")), Segments::default());
        assert_eq!(Segments::from_metadata(None), Segments::default());
    }
}
