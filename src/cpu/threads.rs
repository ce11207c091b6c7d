//! The CPU backend's threads (`--threads N`): a pool of `N` workers, and the fixed partition of
//! each op's output among them.
//!
//! Results do not depend on the thread count, bit for bit: every output element is computed by
//! exactly one task, with the same operations in the same order as on one thread, and every sum that
//! crosses tasks (a loss) is added up afterwards in a fixed order. The partition only decides *who*
//! computes an element, never *how*:
//! - a matrix product is split along the rows of its output (batch rows for the forward pass and the
//!   input gradient, output neurons for the weight gradient); `matrixmultiply` sums each element over
//!   `k` in blocks that depend on `k` alone, so a block of rows gets the same bits as the whole;
//! - the transport and density costs are split over output neurons; the transport's input-position
//!   gradient, a sum over output neurons, is a second pass split over input neurons, each summing
//!   over all output neurons in order;
//! - element-wise passes (Adam, zeroing) are split into chunks.
//!
//! `tests/cpu_threads.rs` checks that 1, 2 and 3 threads give the same parameters after several steps.
//! One thread runs everything on the calling thread, with no pool at all.

use anyhow::{bail, Result};
use std::ops::Range;

/// Rows of a matrix product's output handed to a task at least (matrixmultiply's kernel is 8 rows
/// tall on x86-64: a block of 8 wastes none of it).
pub const ROW_ALIGN: usize = 8;
/// Elements of an element-wise pass handed to a task at least (below this, waking a thread costs
/// more than the work).
pub const MIN_CHUNK: usize = 16 * 1024;

/// The CPU backend's worker threads.
pub struct Threads {
    count: usize,
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Threads({})", self.count)
    }
}

impl Threads {
    /// One thread: everything runs on the caller's thread.
    pub fn one() -> Threads {
        Threads { count: 1, pool: None }
    }

    /// `count` threads (at least 1): a pool of `count` workers when `count > 1`.
    pub fn new(count: usize) -> Result<Threads> {
        if count == 0 {
            bail!("--threads 0: the CPU backend needs at least one thread");
        }
        if count == 1 {
            return Ok(Threads::one());
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(count)
            .thread_name(|k| format!("spatial-gpu-cpu-{k}"))
            .build()
            .map_err(|e| anyhow::anyhow!("--threads {count}: cannot start the threads: {e}"))?;
        Ok(Threads {
            count,
            pool: Some(pool),
        })
    }

    /// The number of threads.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether more than one thread works.
    pub fn parallel(&self) -> bool {
        self.pool.is_some()
    }

    /// Runs `f` with a scope whose spawned tasks run on the pool (on the caller's thread with one
    /// thread, where `f` should not be called: see [`Threads::parallel`]).
    pub fn scope<'s, F>(&self, f: F)
    where
        F: for<'a> FnOnce(&'a rayon::Scope<'s>) + Send,
    {
        match &self.pool {
            Some(pool) => pool.scope(f),
            None => rayon::scope(f),
        }
    }

    /// The blocks of `n` rows a pass is split into: about one per thread, each a multiple of
    /// `align` rows (the last may be shorter).
    pub fn blocks(&self, n: usize, align: usize) -> impl Iterator<Item = Range<usize>> {
        let per = n.div_ceil(self.count).div_ceil(align.max(1)) * align.max(1);
        let per = per.max(1);
        (0..n.div_ceil(per)).map(move |k| k * per..((k + 1) * per).min(n))
    }

    /// Runs `f(first, chunk)` over the chunks of `data` (`data.len() / width` rows of `width`
    /// elements, split as by [`Threads::blocks`]), in parallel; `first` is the chunk's first row.
    pub fn rows_mut<T: Send>(
        &self,
        data: &mut [T],
        width: usize,
        align: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let n = data.len().checked_div(width).unwrap_or(0);
        if !self.parallel() || n == 0 {
            f(0, data);
            return;
        }
        let f = &f;
        self.scope(|s| {
            let mut rest = data;
            for r in self.blocks(n, align) {
                let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(r.len() * width);
                rest = tail;
                s.spawn(move |_| f(r.start, chunk));
            }
        });
    }

    /// Runs `f(first, chunk)` over chunks of at least [`MIN_CHUNK`] elements of `data`, in parallel
    /// (for element-wise passes).
    pub fn chunks_mut<T: Send>(&self, data: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
        let align = MIN_CHUNK.max(data.len().div_ceil(self.count));
        self.rows_mut(data, 1, align, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_rows_once_in_order() {
        for count in 1..=5 {
            let t = Threads::new(count).unwrap();
            for n in [0usize, 1, 7, 8, 9, 63, 256, 257] {
                for align in [1, 8] {
                    let blocks: Vec<_> = t.blocks(n, align).collect();
                    let mut next = 0;
                    for b in &blocks {
                        assert_eq!(b.start, next, "{count} threads, {n} rows");
                        assert!(b.end > b.start);
                        next = b.end;
                    }
                    assert_eq!(next, n);
                    assert!(blocks.len() <= count, "{count} threads, {n} rows: {blocks:?}");
                }
            }
        }
    }

    #[test]
    fn rows_mut_visits_every_row_once() {
        let t = Threads::new(3).unwrap();
        let mut v = vec![0u32; 5 * 41];
        t.rows_mut(&mut v, 5, 1, |first, chunk| {
            for (k, row) in chunk.chunks_exact_mut(5).enumerate() {
                row.fill((first + k) as u32 + 1);
            }
        });
        for (r, row) in v.chunks_exact(5).enumerate() {
            assert!(row.iter().all(|&x| x == r as u32 + 1));
        }
        assert!(Threads::new(0).is_err());
    }
}
