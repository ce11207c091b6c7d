//! What `train` records beside its checkpoints as it goes: the training history (neuron positions
//! and layer summaries over time, `history.safetensors`) and TensorBoard event files. One
//! [`RunLog`] observes the training loop through [`TrainObserver`].

use crate::backend::Backend;
use crate::checkpoint::{self, Progress};
use crate::config::ModelConfig;
use crate::history::{self, History, HistoryOptions};
use crate::tensorboard::{self, EventWriter};
use crate::train::{EpochMetrics, TrainObserver};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The history file of a run directory.
pub fn history_path(out: &Path) -> PathBuf {
    out.join(history::FILE_NAME)
}

/// The history being recorded and where it is saved.
struct HistoryRecorder {
    history: History,
    path: PathBuf,
    /// Also record every this many steps (0 = epoch ends only).
    every: usize,
    model: ModelConfig,
}

/// Records the history and writes TensorBoard events while a run trains.
#[derive(Default)]
pub struct RunLog {
    history: Option<HistoryRecorder>,
    tensorboard: Option<EventWriter>,
    spatial_layers: Vec<usize>,
}

impl RunLog {
    /// Records the history of the run in `out` every epoch (and every `every` steps when > 0). On a
    /// resume from `start`, the run's history file is read and cut back to `start`, so that the
    /// points recorded from there on give the history of an uninterrupted run.
    pub fn record_history(
        &mut self,
        out: &Path,
        model: &ModelConfig,
        every: usize,
        options: HistoryOptions,
        start: Progress,
    ) -> Result<()> {
        let path = history_path(out);
        // Only this process saves into `out` now: temporary files of a killed one can go.
        checkpoint::remove_stale_temps(&path);
        let history = if start != Progress::default() && path.is_file() {
            let mut h = History::load(&path)?;
            if !h.model.same_model(model) {
                anyhow::bail!(
                    "{}: the history is of another model ({:?}) than the checkpoint's ({:?})",
                    path.display(),
                    h.model.sizes,
                    model.sizes
                );
            }
            h.truncate_after(start);
            h
        } else {
            History::new(model.clone(), options)
        };
        self.history = Some(HistoryRecorder {
            history,
            path,
            every,
            model: model.clone(),
        });
        Ok(())
    }

    /// Writes TensorBoard event files into `dir`, starting with `config` as text.
    pub fn tensorboard<T: serde::Serialize>(
        &mut self,
        dir: &Path,
        spatial_layers: &[usize],
        config: &T,
    ) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--tensorboard {}: cannot create the directory", dir.display()))?;
        let mut w = EventWriter::create(dir).with_context(|| format!("--tensorboard {}", dir.display()))?;
        tensorboard::log_config(&mut w, config)?;
        w.flush()?;
        self.tensorboard = Some(w);
        self.spatial_layers = spatial_layers.to_vec();
        Ok(())
    }

    fn record(&mut self, backend: &mut dyn Backend, progress: Progress) -> Result<()> {
        if let Some(r) = &mut self.history {
            let state = backend.state()?;
            r.history
                .record(progress, &r.model, &state.params)
                .with_context(|| format!("recording the history {}", r.path.display()))?;
        }
        Ok(())
    }
}

impl TrainObserver for RunLog {
    fn start(&mut self, backend: &mut dyn Backend, start: Progress) -> Result<()> {
        // A resumed run's points up to its checkpoint are in the file already; one recorded at a
        // mid-epoch start would be a point the uninterrupted run does not have.
        if start == Progress::default() {
            self.record(backend, start)?;
        }
        Ok(())
    }

    fn step(&mut self, backend: &mut dyn Backend, progress: Progress) -> Result<()> {
        let Some(r) = &self.history else { return Ok(()) };
        let periodic = r.every > 0 && backend.steps().is_multiple_of(r.every as u64);
        if progress.batch == 0 || periodic {
            self.record(backend, progress)?;
        }
        Ok(())
    }

    fn step_interval(&self) -> usize {
        self.history.as_ref().map_or(0, |r| r.every)
    }

    fn saving(&mut self, _progress: Progress) -> Result<()> {
        if let Some(r) = &self.history {
            r.history
                .save(&r.path)
                .with_context(|| format!("saving the history {}", r.path.display()))?;
        }
        Ok(())
    }

    fn epoch(&mut self, metrics: &EpochMetrics) -> Result<()> {
        if let Some(w) = &mut self.tensorboard {
            tensorboard::log_epoch(w, metrics, &self.spatial_layers)?;
            w.flush()?;
        }
        Ok(())
    }
}
