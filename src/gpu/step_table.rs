//! The step table: what each network of a population does in each recording of a chunk, as one
//! [`StepRecord`] per (recording, network) in a storage buffer, record `r · models + z` for network
//! `z` in recording `r`. The networks of a population share every dispatch, whose size is that of
//! the largest batch of the recording ([`Launch::batch`]), but each network has its own batch: its
//! rows (fewer at the end of its epoch; 0 when it sits the step out), where the batch starts in its
//! own epoch order, its input mode (mixed and sequential share the input width, not the epoch's
//! length), and its own Adam step. So networks whose epochs differ in length (the mixed input's
//! 235 batches and the sequential input's 469), or that stand at different points of their runs,
//! train in the same dispatches, each exactly its own schedule.
//!
//! Four kernels read it: the gather (rows, first, mode: the rows past the network's own are written
//! empty, inputs 0 and no labels), the loss (`softmax_xent.wgsl`: those rows have no loss and no
//! gradient, and the mean is over the network's own rows), the loss reduction (the task loss's
//! `1/B` is the network's own; a network sitting out adds nothing) and Adam (a network sitting out
//! is left unchanged; the bias corrections are of its own step). Every other kernel runs over the
//! largest batch: the extra rows of a network with fewer carry zero gradients, which add exact
//! zeros to its sums (the weight and bias gradients), so its numbers equal those of the same step
//! alone (only the sign of an exact zero may differ).
//!
//! The WGSL struct is repeated in each of the four shaders (WGSL has no include);
//! `tests/gpu_uniform_layout.rs` checks each copy against [`StepRecord`]'s layout.
//!
//! [`Launch::batch`]: super::kernel::Launch::batch

use crate::ops::adam::AdamStep;
use crate::ops::softmax_xent::inv_batch;
use bytemuck::{Pod, Zeroable};

/// The name of the WGSL struct that mirrors [`StepRecord`], and the storage binding that holds
/// the table in every shader that reads it.
pub const WGSL_STRUCT: &str = "StepRecord";
pub const BINDING: &str = "steps";

/// One network's part of one recording (`struct StepRecord` in the shaders that read it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepRecord {
    /// Rows of the network's batch; 0: the network sits this recording out.
    pub rows: u32,
    /// The batch's first example in the network's epoch order (the gather's).
    pub first: u32,
    /// The network's input mode (`gather::mode_code`).
    pub mode: u32,
    /// `1/rows` as the CPU computes it (`ops::softmax_xent::inv_batch`): the task loss's mean.
    pub inv_rows: f32,
    /// Adam's bias corrections `1 − β1^t`, `1 − β2^t` at the network's own step `t`
    /// (`AdamStep::corrections`).
    pub c1: f32,
    pub c2: f32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// The fields of [`StepRecord`] with their byte offsets, in order (for the layout test).
pub const FIELDS: &[(&str, usize)] = &[
    ("rows", std::mem::offset_of!(StepRecord, rows)),
    ("first", std::mem::offset_of!(StepRecord, first)),
    ("mode", std::mem::offset_of!(StepRecord, mode)),
    ("inv_rows", std::mem::offset_of!(StepRecord, inv_rows)),
    ("c1", std::mem::offset_of!(StepRecord, c1)),
    ("c2", std::mem::offset_of!(StepRecord, c2)),
    ("_pad0", std::mem::offset_of!(StepRecord, _pad0)),
    ("_pad1", std::mem::offset_of!(StepRecord, _pad1)),
];

impl StepRecord {
    /// A network's batch of `rows` rows from `first` of its order, in `mode`, trained at Adam step
    /// `adam.step`.
    pub fn active(rows: usize, first: usize, mode: u32, adam: AdamStep) -> StepRecord {
        let (c1, c2) = adam.corrections();
        StepRecord {
            rows: rows as u32,
            first: first as u32,
            mode,
            inv_rows: inv_batch(rows),
            c1,
            c2,
            ..StepRecord::default()
        }
    }

    /// A network that sits the recording out (its run is over, or its part of the chunk is).
    pub fn idle(mode: u32) -> StepRecord {
        StepRecord {
            mode,
            ..StepRecord::default()
        }
    }

    /// Whether the network trains in this recording.
    pub fn is_active(&self) -> bool {
        self.rows > 0
    }
}

/// Records in a table for `chunk` recordings of `models` networks.
pub fn len(chunk: usize, models: usize) -> usize {
    chunk.max(1) * models.max(1)
}

/// The table's bytes (records in order, recording-major).
pub fn bytes(records: &[StepRecord]) -> &[u8] {
    bytemuck::cast_slice(records)
}

/// Words (4 bytes) per record, for sizing the buffer.
pub const WORDS: usize = std::mem::size_of::<StepRecord>() / 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    #[test]
    fn a_record_is_eight_words_and_idle_has_no_rows() {
        assert_eq!(std::mem::size_of::<StepRecord>(), 32);
        assert_eq!(WORDS, 8);
        assert!(!StepRecord::idle(2).is_active());
        let adam = AdamStep::of(&TrainConfig::default(), 3);
        let r = StepRecord::active(96, 59904, 1, adam);
        assert!(r.is_active());
        assert_eq!(r.inv_rows, 1.0 / 96.0);
        assert_eq!((r.c1, r.c2), adam.corrections());
        assert_eq!(FIELDS.last().map(|f| f.1), Some(28));
    }
}
