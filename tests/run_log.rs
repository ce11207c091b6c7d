//! The history `train` records is kept in step with its checkpoints: a run stopped (mid-epoch, at an
//! epoch's end, repeatedly) and resumed from its checkpoint alone writes a history file byte for
//! byte equal to that of a run that went straight through.

mod support;

use spatial_gpu::backend::Backend;
use spatial_gpu::checkpoint::Progress;
use spatial_gpu::config::{InputMode, ModelConfig};
use spatial_gpu::history::{History, HistoryOptions};
use spatial_gpu::run_log::{history_path, RunLog};
use spatial_gpu::train::{self, Outcome};
use std::path::Path;
use support::*;

fn log_for(out: &Path, model: &ModelConfig, every: usize, start: Progress) -> RunLog {
    let mut log = RunLog::default();
    log.record_history(out, model, every, HistoryOptions::default(), start)
        .unwrap();
    log
}

fn history_resumes_exactly(stops: &[u64], checkpoint_every: usize, history_every: usize, what: &str) {
    let data = small_data();
    let (model, cfg) = small_configs(InputMode::Concat, &data, 3, 5);

    let straight = tempfile::tempdir().unwrap();
    let mut b = new_backend(&model, &cfg);
    let mut log = log_for(straight.path(), &model, history_every, Progress::default());
    let opts = quiet_options(straight.path());
    let outcome = train::train_observed(&mut b, &data, &opts, Progress::default(), &mut log).unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
    let reference = std::fs::read(history_path(straight.path())).unwrap();
    let h = History::load(&history_path(straight.path())).unwrap();
    // 8 batches per epoch, 3 epochs: the start, every epoch's end and every `history_every` steps.
    let periodic = if history_every > 0 {
        (1..=24u64)
            .filter(|s| s % history_every as u64 == 0 && s % 8 != 0)
            .count()
    } else {
        0
    };
    assert_eq!(h.points.len(), 1 + 3 + periodic, "{what}");
    assert_eq!(h.points[0].progress, Progress::default(), "{what}");

    let dir = tempfile::tempdir().unwrap();
    let mut opts = quiet_options(dir.path());
    opts.checkpoint_every = checkpoint_every;
    let mut backend = Wrapped::new(new_backend(&model, &cfg));
    let mut start = Progress::default();
    for &k in stops {
        backend.stop_at = Some(k);
        backend.stop.store(false, std::sync::atomic::Ordering::SeqCst);
        opts.stop = Some(backend.stop.clone());
        let mut log = log_for(dir.path(), &model, history_every, start);
        let outcome = train::train_observed(&mut backend, &data, &opts, start, &mut log).unwrap();
        assert!(
            matches!(outcome, Outcome::Interrupted(_)),
            "{what}: stop after {k}: {outcome:?}"
        );
        let (inner, progress) = resumed_backend(dir.path(), None);
        backend = Wrapped::new(inner);
        start = progress;
    }
    opts.stop = None;
    let mut log = log_for(dir.path(), &model, history_every, start);
    let outcome = train::train_observed(&mut backend, &data, &opts, start, &mut log).unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)), "{what}: {outcome:?}");
    let resumed = std::fs::read(history_path(dir.path())).unwrap();
    assert!(
        resumed == reference,
        "{what}: the resumed run's history file differs from the straight run's"
    );
    assert!(backend.steps() == 24, "{what}");
}

#[test]
fn stopped_and_resumed_run_writes_the_same_history_every_epoch() {
    history_resumes_exactly(
        &[3, 8, 13],
        0,
        0,
        "epochs only, stops mid-epoch and at an epoch's end",
    );
}

#[test]
fn stopped_and_resumed_run_writes_the_same_history_every_n_steps() {
    // Periodic checkpoints after the stop's point are past the history points of the first run.
    history_resumes_exactly(&[5, 11, 20], 2, 3, "every 3 steps, checkpoints every 2");
}

#[test]
fn a_history_of_another_model_is_refused_on_resume() {
    let data = small_data();
    let (model, _) = small_configs(InputMode::Concat, &data, 1, 5);
    let dir = tempfile::tempdir().unwrap();
    let mut other = model.clone();
    other.sizes[1] += 1;
    History::new(other, HistoryOptions::default())
        .save(&history_path(dir.path()))
        .unwrap();
    let mut log = RunLog::default();
    let err = log
        .record_history(
            dir.path(),
            &model,
            0,
            HistoryOptions::default(),
            Progress { epoch: 1, batch: 0 },
        )
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("history.safetensors") && msg.contains("another model"),
        "{msg}"
    );
}
