//! The three input modes of METHOD.md ("Training") as batches of `f32` inputs and per-head labels.
//!
//! - Concat: `[mnist_i, fashion_j]` (2 x 784 values), both labels.
//! - Mixed: `mnist_i + fashion_j` element-wise (784 values in [0, 2]), both labels.
//! - Sequential: one image of either set (784 values), the label of its own head only.
//!
//! Pixels are scaled to [0, 1] as `value / 255`. Labels are `[mnist_label, fashion_label]` per
//! example; `-1` means "this head has no label for this example" (sequential mode).
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
/// `size x 2`: `[mnist_label, fashion_label]` per example, [`NO_LABEL`] where a head has none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub size: usize,
    pub input_dim: usize,
    pub inputs: Vec<f32>,
    pub labels: Vec<i32>,
}

impl Batch {
    /// An empty batch with room for `max_size` examples of `input_dim` values, so a training loop can
    /// refill one allocation with [`EpochOrder::fill_batch`].
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
pub enum Example {
    /// Concat and mixed: MNIST train example `mnist` with Fashion-MNIST train example `fashion`.
    Pair { mnist: u32, fashion: u32 },
    /// Sequential: one MNIST train example.
    Mnist(u32),
    /// Sequential: one Fashion-MNIST train example.
    Fashion(u32),
}

/// The order of the examples in one epoch (see [`epoch_order`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochOrder {
    mode: InputMode,
    examples: Vec<Example>,
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
/// Concat and mixed: the MNIST and the Fashion-MNIST training indices are each shuffled, and the
/// k-th of one is paired with the k-th of the other. This is METHOD.md's "MNIST example i with
/// Fashion example perm[i], in shuffled order" (pairing `sigma(k)` with `tau(k)` pairs `i` with the
/// uniformly random permutation `tau(sigma^-1(i))`); it also covers sets of unequal size, where the
/// epoch has [`Datasets::train_pairs`] examples.
///
/// Sequential: all MNIST then all Fashion-MNIST training examples, shuffled together.
pub fn epoch_order(mode: InputMode, data: &Datasets, seed: u64, epoch: usize) -> EpochOrder {
    let mut rng = epoch_rng(seed, epoch);
    let n_mnist = data.mnist.train_len() as u32;
    let n_fashion = data.fashion.train_len() as u32;
    let examples = match mode {
        InputMode::Concat | InputMode::Mixed => {
            let mut mnist: Vec<u32> = (0..n_mnist).collect();
            let mut fashion: Vec<u32> = (0..n_fashion).collect();
            mnist.shuffle(&mut rng);
            fashion.shuffle(&mut rng);
            mnist
                .into_iter()
                .zip(fashion)
                .map(|(mnist, fashion)| Example::Pair { mnist, fashion })
                .collect()
        }
        InputMode::Sequential => {
            let mut examples: Vec<Example> = (0..n_mnist)
                .map(Example::Mnist)
                .chain((0..n_fashion).map(Example::Fashion))
                .collect();
            examples.shuffle(&mut rng);
            examples
        }
    };
    EpochOrder { mode, examples }
}

impl EpochOrder {
    /// Examples in the epoch.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The examples, in order.
    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// Batches of `batch_size` in the epoch; the last one may be smaller (it is kept, not dropped).
    pub fn num_batches(&self, batch_size: usize) -> usize {
        assert!(batch_size > 0, "batch size must be at least 1");
        self.len().div_ceil(batch_size)
    }

    /// Writes batch `batch_index` (examples `batch_index * batch_size ..`, at most `batch_size` of
    /// them) into `out`, reusing its allocation: nothing is allocated when `out` came from
    /// [`Batch::with_capacity`] with at least this batch size and input width.
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
        out.size = end - start;
        out.input_dim = data.input_dim(mode);
        // Every value is overwritten below: resizing only changes the length (within capacity).
        out.inputs.resize(out.size * out.input_dim, 0.0);
        out.labels.clear();
        let (mnist, fashion) = (&data.mnist, &data.fashion);
        let rows = out.inputs.chunks_exact_mut(out.input_dim.max(1));
        // The images are read at random places of ~100 MB: fetch those of a few examples ahead
        // while converting this one, so that the memory latency overlaps the work.
        const AHEAD: usize = 4;
        let prefetch = |e: Option<&Example>| {
            let (m, f) = match e {
                Some(&Example::Pair { mnist: i, fashion: j }) => (Some(i), Some(j)),
                Some(&Example::Mnist(i)) => (Some(i), None),
                Some(&Example::Fashion(j)) => (None, Some(j)),
                None => (None, None),
            };
            if let Some(i) = m {
                crate::simd::prefetch(mnist.train_images.image(i as usize));
            }
            if let Some(j) = f {
                crate::simd::prefetch(fashion.train_images.image(j as usize));
            }
        };
        for e in &self.examples[start..end.min(start + AHEAD)] {
            prefetch(Some(e));
        }
        for (k, (&example, row)) in self.examples[start..end].iter().zip(rows).enumerate() {
            prefetch(self.examples[start..end].get(k + AHEAD));
            let (m, f) = match example {
                Example::Pair { mnist: i, fashion: j } => (Some(i as usize), Some(j as usize)),
                Example::Mnist(i) => (Some(i as usize), None),
                Example::Fashion(j) => (None, Some(j as usize)),
            };
            write_input(
                mode,
                m.map(|i| mnist.train_images.image(i)),
                f.map(|j| fashion.train_images.image(j)),
                row,
            );
            out.labels
                .push(m.map_or(NO_LABEL, |i| mnist.train_labels[i] as i32));
            out.labels
                .push(f.map_or(NO_LABEL, |j| fashion.train_labels[j] as i32));
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
    /// `out[k] = scale(a[k]) + scale(b[k])`, vectorised.
    fn scale_sum_into(out: &mut [f32], a: &[u8], b: &[u8]) {
        for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
            *o = scale(p) + scale(q);
        }
    }
}

/// Writes one example's input into `out` (exactly its length): both images side by side (concat),
/// their sum (mixed) or the one image there is (sequential).
fn write_input(mode: InputMode, m: Option<&[u8]>, f: Option<&[u8]>, out: &mut [f32]) {
    match (mode, m, f) {
        (InputMode::Mixed, Some(m), Some(f)) => scale_sum_into(out, m, f),
        // Concat, and sequential where exactly one of the two is there.
        _ => {
            let mut at = 0;
            for image in [m, f].into_iter().flatten() {
                scale_into(&mut out[at..at + image.len()], image);
                at += image.len();
            }
            debug_assert_eq!(at, out.len(), "the images fill the input row");
        }
    }
}

/// Appends one example's input (see [`write_input`]).
fn push_input(mode: InputMode, m: Option<&[u8]>, f: Option<&[u8]>, out: &mut Vec<f32>) {
    let len = match (mode, m, f) {
        (InputMode::Mixed, Some(m), Some(_)) => m.len(),
        _ => m.map_or(0, <[u8]>::len) + f.map_or(0, <[u8]>::len),
    };
    let at = out.len();
    out.resize(at + len, 0.0);
    write_input(mode, m, f, &mut out[at..]);
}

/// The whole test set of a mode, laid out like a [`Batch`]: `inputs` is `len x input_dim`,
/// `labels` is `len x 2`.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSet {
    pub inputs: Vec<f32>,
    pub labels: Vec<i32>,
    pub len: usize,
    pub input_dim: usize,
}

/// The test set of `mode`. Concat and mixed pair MNIST test example `i` with Fashion-MNIST test
/// example `i` (for `i` below [`Datasets::test_pairs`]), both labels. Sequential: the MNIST test
/// images (labelled on head 0) followed by the Fashion-MNIST test images (labelled on head 1).
pub fn test_set(mode: InputMode, data: &Datasets) -> TestSet {
    let (mnist, fashion) = (&data.mnist, &data.fashion);
    let examples: Vec<(Option<usize>, Option<usize>)> = match mode {
        InputMode::Concat | InputMode::Mixed => (0..data.test_pairs()).map(|i| (Some(i), Some(i))).collect(),
        InputMode::Sequential => (0..mnist.test_len())
            .map(|i| (Some(i), None))
            .chain((0..fashion.test_len()).map(|j| (None, Some(j))))
            .collect(),
    };
    let input_dim = data.input_dim(mode);
    let mut inputs = Vec::with_capacity(examples.len() * input_dim);
    let mut labels = Vec::with_capacity(examples.len() * 2);
    for &(m, f) in &examples {
        push_input(
            mode,
            m.map(|i| mnist.test_images.image(i)),
            f.map(|j| fashion.test_images.image(j)),
            &mut inputs,
        );
        labels.push(m.map_or(NO_LABEL, |i| mnist.test_labels[i] as i32));
        labels.push(f.map_or(NO_LABEL, |j| fashion.test_labels[j] as i32));
    }
    TestSet {
        inputs,
        labels,
        len: examples.len(),
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

    /// A tiny pair of sets with recognisable pixels: MNIST train image `i` is all `i`, Fashion's all
    /// `50 + i`; 3 test images each, MNIST's `100 + i`, Fashion's `150 + i`. Label `i` is `i % 10`.
    fn tiny(n_mnist: usize, n_fashion: usize, pixels: usize) -> Datasets {
        let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>();
        let task = |name, n, base| TaskData {
            name,
            train_images: images(n, base, pixels),
            train_labels: labels(n),
            test_images: images(3, base + 100, pixels),
            test_labels: labels(3),
        };
        Datasets {
            mnist: task(crate::data::MNIST, n_mnist, 0),
            fashion: task(crate::data::FASHION, n_fashion, 50),
        }
    }

    fn all_modes() -> [InputMode; 3] {
        [InputMode::Concat, InputMode::Mixed, InputMode::Sequential]
    }

    #[test]
    fn every_example_once_per_epoch() {
        let data = tiny(20, 20, 2);
        for mode in all_modes() {
            for epoch in 0..3 {
                let order = epoch_order(mode, &data, 9, epoch);
                let set: HashSet<_> = order.examples().iter().copied().collect();
                assert_eq!(set.len(), order.len(), "{mode}: repeated example");
                match mode {
                    InputMode::Sequential => assert_eq!(order.len(), 40),
                    _ => {
                        assert_eq!(order.len(), 20);
                        let m: HashSet<_> = order
                            .examples()
                            .iter()
                            .map(|e| match e {
                                Example::Pair { mnist, fashion } => (*mnist, *fashion),
                                other => panic!("{other:?} in {mode} mode"),
                            })
                            .collect();
                        let ms: HashSet<u32> = m.iter().map(|p| p.0).collect();
                        let fs: HashSet<u32> = m.iter().map(|p| p.1).collect();
                        assert_eq!(ms, (0..20).collect());
                        assert_eq!(fs, (0..20).collect());
                    }
                }
            }
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

    #[test]
    fn unequal_counts_pair_over_the_smaller() {
        let data = tiny(12, 7, 1);
        let order = epoch_order(InputMode::Mixed, &data, 3, 0);
        assert_eq!(order.len(), 7);
        let seq = epoch_order(InputMode::Sequential, &data, 3, 0);
        assert_eq!(seq.len(), 19);
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
                for (k, e) in order.examples()[2 * b..2 * b + batch.size].iter().enumerate() {
                    let row = &batch.inputs[k * batch.input_dim..(k + 1) * batch.input_dim];
                    let labels = &batch.labels[2 * k..2 * k + 2];
                    match (mode, *e) {
                        (InputMode::Concat, Example::Pair { mnist, fashion }) => {
                            assert_eq!(batch.input_dim, 6);
                            assert!(row[..3].iter().all(|&v| v == mnist as f32 / 255.0));
                            assert!(row[3..].iter().all(|&v| v == (50 + fashion) as f32 / 255.0));
                            assert_eq!(labels, [mnist as i32 % 10, fashion as i32 % 10]);
                        }
                        (InputMode::Mixed, Example::Pair { mnist, fashion }) => {
                            assert_eq!(batch.input_dim, 3);
                            let want = mnist as f32 / 255.0 + (50 + fashion) as f32 / 255.0;
                            assert!(row.iter().all(|&v| v == want));
                            assert_eq!(labels, [mnist as i32 % 10, fashion as i32 % 10]);
                        }
                        (InputMode::Sequential, Example::Mnist(i)) => {
                            assert!(row.iter().all(|&v| v == i as f32 / 255.0));
                            assert_eq!(labels, [i as i32 % 10, NO_LABEL]);
                        }
                        (InputMode::Sequential, Example::Fashion(j)) => {
                            assert!(row.iter().all(|&v| v == (50 + j) as f32 / 255.0));
                            assert_eq!(labels, [NO_LABEL, j as i32 % 10]);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
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
