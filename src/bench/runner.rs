//! Our side of the race: one of our backends training on the concat stream of batches, timed by
//! the wall clock and by the CPU time of the thread that runs it.

use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::data::batches::{epoch_order, Batch, EpochOrder};
use crate::data::Datasets;
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::Instant;

/// The time of some training steps: wall clock, and CPU time of the thread that ran them.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    pub seconds: f64,
    /// Seconds the measuring thread was on a CPU (`CLOCK_THREAD_CPUTIME_ID`; PyTorch's
    /// `time.thread_time()`, or `process_time()` with several threads). On a shared machine the
    /// wall clock also counts the time other processes had the core; this does not.
    pub cpu_seconds: Option<f64>,
    pub samples: usize,
}

impl Timing {
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-12)
    }
    pub fn samples_per_cpu_second(&self) -> Option<f64> {
        self.cpu_seconds.map(|c| self.samples as f64 / c.max(1e-12))
    }
}

/// CPU time of the calling thread, in seconds (64-bit Linux; `None` elsewhere).
pub fn thread_cpu_seconds() -> Option<f64> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `ts` is a valid `struct timespec` (two 64-bit fields on 64-bit Linux).
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Some(ts.sec as f64 + ts.nsec as f64 * 1e-9);
        }
    }
    None
}

/// One of our backends training one network on the concat stream of batches, epoch after epoch.
pub struct OurRunner<'a> {
    backend: Box<dyn Backend>,
    data: &'a Datasets,
    order: EpochOrder,
    epoch: usize,
    next: usize,
    batch: Batch,
    train: TrainConfig,
    /// Whether this thread's CPU time is the program's (the single-threaded CPU backend).
    cpu_clock: bool,
}

impl<'a> OurRunner<'a> {
    /// A runner of `backend`, which trains the model of `train` from its initial state. `cpu_clock`:
    /// the backend computes on this thread alone, so this thread's CPU time is the program's.
    pub fn new(backend: Box<dyn Backend>, train: TrainConfig, data: &'a Datasets, cpu_clock: bool) -> Self {
        let order = epoch_order(train.mode, data, train.seed, 0);
        let batch = Batch::with_capacity(train.batch_size, data.input_dim(train.mode));
        OurRunner {
            backend,
            data,
            order,
            epoch: 0,
            next: 0,
            batch,
            train,
            cpu_clock,
        }
    }

    pub fn name(&self) -> String {
        self.backend.name()
    }

    /// Times `steps` training steps (batch assembly included); the clock stops after the losses
    /// are read back.
    pub fn run(&mut self, steps: usize) -> Result<Timing> {
        let bs = self.train.batch_size;
        let cpu0 = thread_cpu_seconds();
        let t0 = Instant::now();
        let mut samples = 0;
        let mut left = steps;
        while left > 0 {
            if self.next == self.order.num_batches(bs) {
                self.epoch += 1;
                self.order = epoch_order(self.train.mode, self.data, self.train.seed, self.epoch);
                self.next = 0;
            }
            // As `train` does: the CPU builds each batch and steps; the GPU gathers them on the
            // device and submits `steps_per_submit` steps at a time.
            let end = (self.next + left).min(self.order.num_batches(bs));
            self.backend
                .train_batches(self.data, &self.order, self.next..end, &mut self.batch)?;
            samples += (end * bs).min(self.order.len()) - self.next * bs;
            left -= end - self.next;
            self.next = end;
        }
        // Reading the losses back waits for the device too; the explicit wait says so.
        self.backend.synchronize()?;
        let losses = self.backend.take_losses()?;
        let seconds = t0.elapsed().as_secs_f64();
        // A GPU backend works in other threads too (a driver's, or lavapipe's): no CPU time then.
        let cpu_seconds = thread_cpu_seconds()
            .zip(cpu0)
            .map(|(b, a)| b - a)
            .filter(|_| self.cpu_clock);
        if let Some(l) = losses {
            if !l.is_finite() {
                bail!("{}: the loss is not finite ({l:?})", self.backend.name());
            }
        }
        Ok(Timing {
            seconds,
            cpu_seconds,
            samples,
        })
    }
}
