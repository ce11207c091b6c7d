//! The three input modes of METHOD.md ("Training") as batches of `f32` inputs and per-head labels,
//! for any number M of tasks (task `t`'s label goes to head `t`).
//!
//! - Concat: one image of every task side by side, `[mnist_i, fashion_j, ...]` (the sum of the
//!   tasks' image sizes; sizes may differ), every label.
//! - Mixed: the M images summed element-wise (one image size, values in [0, M]), every label.
//! - Sequential: one image of one task (one image size), the label of its own head only.
//!
//! Pixels are scaled to [0, 1] as `value / 255`. Labels are `M` per example, in task order;
//! `-1` means "this head has no label for this example" (sequential mode, and a test row past the
//! end of a smaller test set).
//!
//! Each epoch's order depends only on `(seed, epoch)`, never on earlier epochs, so a run resumed at
//! epoch `e` sees exactly the batches an uninterrupted run would have seen.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Datasets;
use crate::config::InputMode;

/// Label value meaning "no label for this head" (the loss skips it).
pub const NO_LABEL: i32 = -1;

/// Mixed into the seed so the data order draws from other random numbers than, say, the
/// initialisation, which may start from the same seed. (An arbitrary odd constant.)
const SHUFFLE_STREAM: u64 = 0x5348_5546_464c_4531; // "SHUFFLE1"

/// One batch, laid out for the network: `inputs` is `size x input_dim` row-major and `labels` is
/// `size x M`: the label of each task per example, [`NO_LABEL`] where a head has none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub size: usize,
    pub input_dim: usize,
    pub inputs: Vec<f32>,
    pub labels: Vec<i32>,
}

impl Batch {
    /// An empty batch with room for `max_size` examples of `input_dim` values (and two heads'
    /// labels: the vector grows once for more), so a training loop can refill one allocation with
    /// [`EpochOrder::fill_batch`].
    pub fn with_capacity(max_size: usize, input_dim: usize) -> Batch {
        Batch {
            size: 0,
            input_dim,
            inputs: Vec::with_capacity(max_size * input_dim),
            labels: Vec::with_capacity(max_size * 2),
        }
    }
}

/// One training example of an epoch, as indices into the training sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Example<'a> {
    /// Concat and mixed: training example `indices[t]` of each task `t`.
    Paired(&'a [u32]),
    /// Sequential: training example `index` of task `task`.
    One { task: usize, index: u32 },
}

/// The order of the examples in one epoch (see [`epoch_order`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochOrder {
    mode: InputMode,
    tasks: usize,
    /// Concat and mixed: `len x tasks` training indices, row-major.
    paired: Vec<u32>,
    /// Sequential: `(task, index)` per example.
    single: Vec<(u32, u32)>,
}

pub use crate::rng::splitmix64;

/// The random numbers of one epoch's data order: a ChaCha8 key derived from `seed` alone, and the
/// epoch as ChaCha's stream number, so every epoch has its own independent stream that can be
/// computed directly.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(seed ^ SHUFFLE_STREAM));
    rng.set_stream(epoch as u64);
    rng
}

/// The order of epoch `epoch` of a run with `seed`, from `(seed, epoch)` only.
///
/// Concat and mixed: an epoch is one pass over the largest training set, of `n` examples. For each
/// task in order, its training indices are shuffled, and a set smaller than `n` appends fresh
/// shuffles of itself until it has `n` (the last one cut short); the k-th example pairs the k-th
/// index of every task. Every example of every task is seen each epoch, those of a smaller set
/// about `n / len` times, never twice in a row within one pass. With two sets of equal size this is
/// METHOD.md's "MNIST example i with Fashion example perm[i], in shuffled order" (pairing
/// `sigma(k)` with `tau(k)` pairs `i` with the uniformly random permutation `tau(sigma^-1(i))`), and
/// exactly the order of the two-task program before tasks could be chosen.
///
/// Sequential: every training example of every task once, the tasks' examples chained in task
/// order and shuffled together.
pub fn epoch_order(mode: InputMode, data: &Datasets, seed: u64, epoch: usize) -> EpochOrder {
    let mut rng = epoch_rng(seed, epoch);
    let tasks = data.tasks.len();
    let mut paired = Vec::new();
    let mut single = Vec::new();
    match mode {
        InputMode::Concat | InputMode::Mixed => {
            let n = data.train_pairs();
            let columns: Vec<Vec<u32>> = data
                .tasks
                .iter()
                .map(|task| {
                    let len = task.train_len() as u32;
                    let mut column: Vec<u32> = Vec::with_capacity(n + len as usize);
                    while len > 0 && column.len() < n {
                        let mut perm: Vec<u32> = (0..len).collect();
                        perm.shuffle(&mut rng);
                        column.extend(perm);
                    }
                    column.truncate(n);
                    column
                })
                .collect();
            paired.reserve(n * tasks);
            for k in 0..n {
                paired.extend(columns.iter().map(|c| c[k]));
            }
        }
        InputMode::Sequential => {
            for (t, task) in data.tasks.iter().enumerate() {
                single.extend((0..task.train_len() as u32).map(|i| (t as u32, i)));
            }
            single.shuffle(&mut rng);
        }
    }
    EpochOrder {
        mode,
        tasks,
        paired,
        single,
    }
}

impl EpochOrder {
    /// Examples in the epoch.
    pub fn len(&self) -> usize {
        match self.mode {
            InputMode::Sequential => self.single.len(),
            _ => self.paired.len() / self.tasks.max(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Example `k` of the epoch.
    pub fn example(&self, k: usize) -> Example<'_> {
        match self.mode {
            InputMode::Sequential => {
                let (task, index) = self.single[k];
                Example::One {
                    task: task as usize,
                    index,
                }
            }
            _ => Example::Paired(&self.paired[k * self.tasks..(k + 1) * self.tasks]),
        }
    }

    /// The examples, in order.
    pub fn examples(&self) -> impl Iterator<Item = Example<'_>> + '_ {
        (0..self.len()).map(|k| self.example(k))
    }

    /// The order as the GPU's gather reads it (`shaders/gather.wgsl`): concat and mixed, the
    /// training index of every task per example; sequential, `(task, index)` per example.
    pub fn device_indices(&self) -> Vec<u32> {
        match self.mode {
            InputMode::Sequential => self.single.iter().flat_map(|&(t, i)| [t, i]).collect(),
            _ => self.paired.clone(),
        }
    }

    /// `device_indices().len()`, without building them.
    pub fn device_indices_len(&self) -> usize {
        match self.mode {
            InputMode::Sequential => 2 * self.single.len(),
            _ => self.paired.len(),
        }
    }

    /// The mode the order was made for.
    pub fn mode(&self) -> InputMode {
        self.mode
    }

    /// Batches of `batch_size` in the epoch; the last one may be smaller (it is kept, not dropped).
    pub fn num_batches(&self, batch_size: usize) -> usize {
        assert!(batch_size > 0, "batch size must be at least 1");
        self.len().div_ceil(batch_size)
    }

    /// Writes batch `batch_index` (examples `batch_index * batch_size ..`, at most `batch_size` of
    /// them) into `out`, reusing its allocation: nothing is allocated when `out` came from
    /// [`Batch::with_capacity`] with at least this batch size and input width (and a first batch
    /// has grown its labels to the number of tasks).
    ///
    /// Panics if `mode` is not the mode the order was made for (a concat order serves mixed too:
    /// both are pairs), or if the batch index is past the end: both are bugs in the caller.
    pub fn fill_batch(
        &self,
        data: &Datasets,
        mode: InputMode,
        batch_index: usize,
        batch_size: usize,
        out: &mut Batch,
    ) {
        let pairs = |m: InputMode| m != InputMode::Sequential;
        assert_eq!(
            pairs(mode),
            pairs(self.mode),
            "fill_batch in {mode} mode from an order made for {} mode",
            self.mode
        );
        let batches = self.num_batches(batch_size);
        assert!(
            batch_index < batches,
            "batch {batch_index} is past the end of an epoch of {batches} batches"
        );
        let start = batch_index * batch_size;
        let end = (start + batch_size).min(self.len());
        let m = data.tasks.len();
        out.size = end - start;
        out.input_dim = data.input_dim(mode);
        // Every value is overwritten below: resizing only changes the length (within capacity).
        out.inputs.resize(out.size * out.input_dim, 0.0);
        out.labels.clear();
        out.labels.reserve(out.size * m);
        let rows = out.inputs.chunks_exact_mut(out.input_dim.max(1));
        // The images are read at random places of ~100 MB: fetch those of a few examples ahead
        // while converting this one, so that the memory latency overlaps the work.
        const AHEAD: usize = 4;
        let prefetch = |k: usize| {
            if k >= end {
                return;
            }
            match self.example(k) {
                Example::Paired(indices) => {
                    for (task, &i) in data.tasks.iter().zip(indices) {
                        crate::simd::prefetch(task.train_images.image(i as usize));
                    }
                }
                Example::One { task, index } => {
                    crate::simd::prefetch(data.tasks[task].train_images.image(index as usize));
                }
            }
        };
        for k in start..end.min(start + AHEAD) {
            prefetch(k);
        }
        for (k, row) in (start..end).zip(rows) {
            prefetch(k + AHEAD);
            match self.example(k) {
                Example::Paired(indices) => {
                    let images = data
                        .tasks
                        .iter()
                        .zip(indices)
                        .map(|(task, &i)| Some(task.train_images.image(i as usize)));
                    write_input(mode, images, row);
                    for (task, &i) in data.tasks.iter().zip(indices) {
                        out.labels.push(task.train_labels[i as usize] as i32);
                    }
                }
                Example::One { task, index } => {
                    let image = data.tasks[task].train_images.image(index as usize);
                    write_input(mode, std::iter::once(Some(image)), row);
                    for t in 0..m {
                        out.labels.push(if t == task {
                            data.tasks[t].train_labels[index as usize] as i32
                        } else {
                            NO_LABEL
                        });
                    }
                }
            }
        }
    }
}

/// Scales a pixel to [0, 1].
#[inline(always)]
fn scale(p: u8) -> f32 {
    p as f32 / 255.0
}

crate::multiversion! {
    /// `out[k] = scale(pixels[k])`: a vectorised loop (the conversion and division of 16 pixels at
    /// a time on AVX-512), the same values as [`scale`].
    fn scale_into(out: &mut [f32], pixels: &[u8]) {
        for (o, &p) in out.iter_mut().zip(pixels) {
            *o = scale(p);
        }
    }
}

crate::multiversion! {
    /// `out[k] += scale(pixels[k])`, vectorised: after [`scale_into`] of the first image, the
    /// same values as `scale(a[k]) + scale(b[k])` for two images.
    fn scale_add_into(out: &mut [f32], pixels: &[u8]) {
        for (o, &p) in out.iter_mut().zip(pixels) {
            *o += scale(p);
        }
    }
}

/// Writes one example's input into `out` (exactly its length) from its images in task order
/// (`None` for a task without one): the images side by side (concat, and sequential's one image),
/// or their element-wise sum (mixed).
fn write_input<'a>(mode: InputMode, images: impl Iterator<Item = Option<&'a [u8]>>, out: &mut [f32]) {
    match mode {
        InputMode::Mixed => {
            for (k, image) in images.flatten().enumerate() {
                if k == 0 {
                    scale_into(out, image);
                } else {
                    scale_add_into(out, image);
                }
            }
        }
        InputMode::Concat | InputMode::Sequential => {
            let mut at = 0;
            for image in images.flatten() {
                scale_into(&mut out[at..at + image.len()], image);
                at += image.len();
            }
            debug_assert_eq!(at, out.len(), "the images fill the input row");
        }
    }
}

/// The whole test set of a mode, laid out like a [`Batch`]: `inputs` is `len x input_dim`,
/// `labels` is `len x M`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSet {
    pub inputs: Vec<f32>,
    pub labels: Vec<i32>,
    pub len: usize,
    pub input_dim: usize,
}

/// The test set of `mode`, in which every test example of every task is scored exactly once, so
/// that a task's accuracy is over exactly its own test set.
///
/// Concat and mixed: row `i` (for `i` below the largest test count, [`Datasets::test_pairs`])
/// shows test example `i` of every task, labelled; a task whose test set is smaller shows its
/// example `i mod len` there, unlabelled ([`NO_LABEL`]), so that the input has every task's image
/// as in training but that row does not count for it. With equal test counts every row is
/// labelled on every head. Sequential: each task's test images in task order, each labelled on its
/// own head only.
pub fn test_set(mode: InputMode, data: &Datasets) -> TestSet {
    let m = data.tasks.len();
    let input_dim = data.input_dim(mode);
    let len = match mode {
        InputMode::Concat | InputMode::Mixed => data.test_pairs(),
        InputMode::Sequential => data.tasks.iter().map(|t| t.test_len()).sum(),
    };
    let mut inputs = vec![0.0; len * input_dim];
    let mut labels = Vec::with_capacity(len * m);
    let rows = inputs.chunks_exact_mut(input_dim.max(1));
    match mode {
        InputMode::Concat | InputMode::Mixed => {
            for (i, row) in (0..len).zip(rows) {
                let images = data
                    .tasks
                    .iter()
                    .map(|t| Some(t.test_images.image(i % t.test_len())));
                write_input(mode, images, row);
                for t in &data.tasks {
                    labels.push(if i < t.test_len() {
                        t.test_labels[i] as i32
                    } else {
                        NO_LABEL
                    });
                }
            }
        }
        InputMode::Sequential => {
            let examples = data
                .tasks
                .iter()
                .enumerate()
                .flat_map(|(t, task)| (0..task.test_len()).map(move |i| (t, i)));
            for ((t, i), row) in examples.zip(rows) {
                let task = &data.tasks[t];
                write_input(mode, std::iter::once(Some(task.test_images.image(i))), row);
                for u in 0..m {
                    labels.push(if u == t {
                        task.test_labels[i] as i32
                    } else {
                        NO_LABEL
                    });
                }
            }
        }
    }
    TestSet {
        inputs,
        labels,
        len,
        input_dim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{IdxImages, TaskData};
    use std::collections::HashSet;

    /// `n` images of `pixels` pixels each, image `i` filled with the value `base + i`.
    fn images(n: usize, base: u8, pixels: usize) -> IdxImages {
        IdxImages {
            count: n,
            rows: 1,
            cols: pixels,
            pixels: (0..n)
                .flat_map(|i| std::iter::repeat_n(base + i as u8, pixels))
                .collect(),
        }
    }

    /// A task with recognisable pixels: train image `i` is all `base + i`; `test` test images,
    /// `base + 100 + i`. Label `i` is `i % 10`.
    fn task(name: &str, n: usize, test: usize, base: u8, pixels: usize) -> TaskData {
        let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
        let mut t = TaskData::new(
            name,
            images(n, base, pixels),
            labels(n),
            images(test, base + 100, pixels),
            labels(test),
        );
        t.num_classes = 10;
        t
    }

    /// A tiny pair of sets: MNIST train image `i` is all `i`, Fashion's all `50 + i`; 3 test
    /// images each, MNIST's `100 + i`, Fashion's `150 + i`. Label `i` is `i % 10`.
    fn tiny(n_mnist: usize, n_fashion: usize, pixels: usize) -> Datasets {
        Datasets {
            tasks: vec![
                task(crate::data::MNIST, n_mnist, 3, 0, pixels),
                task(crate::data::FASHION, n_fashion, 3, 50, pixels),
            ],
        }
    }

    fn all_modes() -> [InputMode; 3] {
        [InputMode::Concat, InputMode::Mixed, InputMode::Sequential]
    }

    fn pairs(order: &EpochOrder) -> Vec<Vec<u32>> {
        order
            .examples()
            .map(|e| match e {
                Example::Paired(i) => i.to_vec(),
                other => panic!("{other:?} in a paired order"),
            })
            .collect()
    }

    #[test]
    fn every_example_once_per_epoch() {
        let data = tiny(20, 20, 2);
        for mode in all_modes() {
            for epoch in 0..3 {
                let order = epoch_order(mode, &data, 9, epoch);
                match mode {
                    InputMode::Sequential => {
                        let set: HashSet<_> = order.examples().collect();
                        assert_eq!(set.len(), 40, "{mode}: repeated example");
                        assert_eq!(order.len(), 40);
                    }
                    _ => {
                        assert_eq!(order.len(), 20);
                        let p = pairs(&order);
                        let ms: HashSet<u32> = p.iter().map(|p| p[0]).collect();
                        let fs: HashSet<u32> = p.iter().map(|p| p[1]).collect();
                        assert_eq!(ms, (0..20).collect());
                        assert_eq!(fs, (0..20).collect());
                    }
                }
            }
        }
    }

    /// The two-task order as it was before tasks could be chosen: both sets shuffled in turn from
    /// the epoch's stream and zipped; sequential, all MNIST then all Fashion-MNIST, shuffled.
    #[test]
    fn equal_sizes_keep_the_two_task_order() {
        let data = tiny(37, 37, 1);
        for epoch in 0..3 {
            let mut rng = epoch_rng(5, epoch);
            let mut a: Vec<u32> = (0..37).collect();
            let mut b: Vec<u32> = (0..37).collect();
            a.shuffle(&mut rng);
            b.shuffle(&mut rng);
            let want: Vec<Vec<u32>> = a.into_iter().zip(b).map(|(x, y)| vec![x, y]).collect();
            assert_eq!(pairs(&epoch_order(InputMode::Concat, &data, 5, epoch)), want);

            let mut rng = epoch_rng(5, epoch);
            let mut all: Vec<(usize, u32)> = (0..37).map(|i| (0, i)).chain((0..37).map(|i| (1, i))).collect();
            all.shuffle(&mut rng);
            let got: Vec<(usize, u32)> = epoch_order(InputMode::Sequential, &data, 5, epoch)
                .examples()
                .map(|e| match e {
                    Example::One { task, index } => (task, index),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(got, all);
        }
    }

    #[test]
    fn order_depends_on_seed_and_epoch_only() {
        let data = tiny(30, 30, 1);
        for mode in all_modes() {
            let a = epoch_order(mode, &data, 1, 5);
            assert_eq!(a, epoch_order(mode, &data, 1, 5));
            assert_ne!(a, epoch_order(mode, &data, 1, 6));
            assert_ne!(a, epoch_order(mode, &data, 2, 5));
            // A run that went through epochs 0..5 first gets the same epoch 5.
            for e in 0..5 {
                let _ = epoch_order(mode, &data, 1, e);
            }
            assert_eq!(a, epoch_order(mode, &data, 1, 5));
        }
    }

    /// An epoch is a pass over the largest set; a smaller set is repeated in whole fresh
    /// permutations (the last cut short), so each of its examples appears `floor` or `ceil` of
    /// `n / len` times.
    #[test]
    fn unequal_counts_pair_over_the_largest() {
        let data = Datasets {
            tasks: vec![
                task("a", 12, 3, 0, 1),
                task("b", 5, 2, 50, 1),
                task("c", 12, 4, 100, 1),
            ],
        };
        let order = epoch_order(InputMode::Mixed, &data, 3, 0);
        assert_eq!(order.len(), 12);
        let p = pairs(&order);
        for t in [0, 2] {
            let seen: HashSet<u32> = p.iter().map(|r| r[t]).collect();
            assert_eq!(seen.len(), 12, "task {t}: each example once");
        }
        let b: Vec<u32> = p.iter().map(|r| r[1]).collect();
        for chunk in [&b[0..5], &b[5..10]] {
            let set: HashSet<u32> = chunk.iter().copied().collect();
            assert_eq!(set, (0..5).collect(), "whole permutations of the smaller set");
        }
        let tail: HashSet<u32> = b[10..].iter().copied().collect();
        assert_eq!(tail.len(), 2);
        let seq = epoch_order(InputMode::Sequential, &data, 3, 0);
        assert_eq!(seq.len(), 29);
    }

    #[test]
    fn batches_fill_each_mode() {
        let data = tiny(5, 5, 3);
        let mut batch = Batch::with_capacity(2, 6);
        for mode in all_modes() {
            let order = epoch_order(mode, &data, 4, 0);
            let nb = order.num_batches(2);
            assert_eq!(nb, if mode == InputMode::Sequential { 5 } else { 3 });
            for b in 0..nb {
                let cap = (batch.inputs.capacity(), batch.labels.capacity());
                order.fill_batch(&data, mode, b, 2, &mut batch);
                assert_eq!((batch.inputs.capacity(), batch.labels.capacity()), cap);
                // 5 pairs: batches of 2, 2, 1 (the partial one is kept); 10 single images: 5 x 2.
                assert_eq!(batch.size, 2.min(order.len() - 2 * b));
                assert_eq!(batch.inputs.len(), batch.size * batch.input_dim);
                for k in 0..batch.size {
                    let e = order.example(2 * b + k);
                    let row = &batch.inputs[k * batch.input_dim..(k + 1) * batch.input_dim];
                    let labels = &batch.labels[2 * k..2 * k + 2];
                    match (mode, e) {
                        (InputMode::Concat, Example::Paired(&[mnist, fashion])) => {
                            assert_eq!(batch.input_dim, 6);
                            assert!(row[..3].iter().all(|&v| v == mnist as f32 / 255.0));
                            assert!(row[3..].iter().all(|&v| v == (50 + fashion) as f32 / 255.0));
                            assert_eq!(labels, [mnist as i32 % 10, fashion as i32 % 10]);
                        }
                        (InputMode::Mixed, Example::Paired(&[mnist, fashion])) => {
                            assert_eq!(batch.input_dim, 3);
                            let want = mnist as f32 / 255.0 + (50 + fashion) as f32 / 255.0;
                            assert!(row.iter().all(|&v| v == want));
                            assert_eq!(labels, [mnist as i32 % 10, fashion as i32 % 10]);
                        }
                        (InputMode::Sequential, Example::One { task: 0, index: i }) => {
                            assert!(row.iter().all(|&v| v == i as f32 / 255.0));
                            assert_eq!(labels, [i as i32 % 10, NO_LABEL]);
                        }
                        (InputMode::Sequential, Example::One { task: 1, index: j }) => {
                            assert!(row.iter().all(|&v| v == (50 + j) as f32 / 255.0));
                            assert_eq!(labels, [NO_LABEL, j as i32 % 10]);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        }
    }

    /// Three tasks of different image sizes, concatenated: each image in its own segment, every
    /// label in task order.
    #[test]
    fn concat_of_three_sizes() {
        let data = Datasets {
            tasks: vec![
                task("a", 4, 2, 0, 2),
                task("b", 3, 3, 50, 5),
                task("c", 4, 1, 100, 1),
            ],
        };
        assert_eq!(data.input_dim(InputMode::Concat), 8);
        let order = epoch_order(InputMode::Concat, &data, 1, 0);
        let mut batch = Batch::with_capacity(4, 8);
        order.fill_batch(&data, InputMode::Concat, 0, 4, &mut batch);
        for k in 0..4 {
            let Example::Paired(&[a, b, c]) = order.example(k) else {
                panic!()
            };
            let row = &batch.inputs[k * 8..(k + 1) * 8];
            assert!(row[..2].iter().all(|&v| v == a as f32 / 255.0));
            assert!(row[2..7].iter().all(|&v| v == (50 + b) as f32 / 255.0));
            assert_eq!(row[7], (100 + c) as f32 / 255.0);
            assert_eq!(&batch.labels[3 * k..3 * k + 3], [a as i32, b as i32, c as i32]);
        }
        // The test set runs over the largest test set (3); a smaller one's rows past its end are
        // unlabelled, so each task's test examples count once each.
        let t = test_set(InputMode::Concat, &data);
        assert_eq!((t.len, t.input_dim), (3, 8));
        assert_eq!(t.labels, [0, 0, 0, 1, 1, NO_LABEL, NO_LABEL, 2, NO_LABEL]);
        assert_eq!(t.inputs[2 * 8], 100.0 / 255.0, "a's example 0 again, unlabelled");
        for (h, n) in [(0, 2), (1, 3), (2, 1)] {
            let labelled = (0..t.len).filter(|r| t.labels[r * 3 + h] != NO_LABEL).count();
            assert_eq!(labelled, n);
        }
    }

    #[test]
    fn test_sets_of_each_mode() {
        let data = tiny(4, 4, 2);
        let t = test_set(InputMode::Concat, &data);
        assert_eq!((t.len, t.input_dim), (3, 4));
        // MNIST test image i is 100 + i, Fashion's 150 + i; labels i % 10 on both heads.
        assert_eq!(
            t.inputs[4..8],
            [101.0 / 255.0, 101.0 / 255.0, 151.0 / 255.0, 151.0 / 255.0]
        );
        assert_eq!(t.labels, [0, 0, 1, 1, 2, 2]);
        let t = test_set(InputMode::Mixed, &data);
        assert_eq!((t.len, t.input_dim), (3, 2));
        assert_eq!(t.inputs[2], 101.0 / 255.0 + 151.0 / 255.0);
        let t = test_set(InputMode::Sequential, &data);
        assert_eq!((t.len, t.input_dim), (6, 2));
        assert_eq!(t.labels, [0, -1, 1, -1, 2, -1, -1, 0, -1, 1, -1, 2]);
        assert_eq!(t.inputs[2 * 4], 151.0 / 255.0);
    }

    #[test]
    fn pixels_scale_to_unit_interval() {
        assert_eq!(scale(0), 0.0);
        assert_eq!(scale(255), 1.0);
    }
}
