//! Loss reduction: the losses of a step are sums of per-row partial values times a scale
//! (`1/B` for the task loss, the transport scale, `1/N²` for density), kept per loss in an
//! accumulator of `1 + 2·|L|` values: the task, then transport and density of each spatial layer.

/// Where each loss sits in the accumulator of a model with `spatial` spatial layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossSlots {
    pub spatial: usize,
}

impl LossSlots {
    pub const TASK: usize = 0;

    pub fn transport(&self, s: usize) -> usize {
        1 + s
    }

    pub fn density(&self, s: usize) -> usize {
        1 + self.spatial + s
    }

    /// Values in the accumulator.
    pub fn len(&self) -> usize {
        1 + 2 * self.spatial
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}
