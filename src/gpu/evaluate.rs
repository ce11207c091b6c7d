//! Evaluation on the device: the test set goes to the device once (its inputs as `f32`, its labels
//! as `i32`) and stays there (a different test set is recognised by [`TestKey`]; the last two stay
//! on the device, so that a population of mixed and sequential networks, which evaluate on two test
//! sets in turn, uploads each once); an evaluation is one command encoder and one submit: per batch of
//! up to `capacity` rows, a copy of the batch's rows of the resident inputs into the input buffer,
//! then one compute pass with the evaluation plan (masked or not) and the accuracy kernel
//! (`accuracy.rs`), which adds each head's `(correct, total)` to counters on the device. Only the
//! counters are read back, once at the end. Each batch's uniforms (its size, its first row) sit in
//! their own slots of the plan's chunk (`Compiled::write_chunk_uniforms`, `record_nth`).
//!
//! A population evaluates every network on the same rows in the same dispatches (the evaluation
//! plan's `shared_input`), each into its own counters; [`GpuBackend::count_correct_of`] reads
//! network `k`'s. The forward of every network runs anyway (a dispatch covers all networks along
//! z), so the counts of an evaluation without a mask are kept for every network until the
//! parameters may have changed (the backend's `version`: a training step or chunk, a new state):
//! the members of a population that evaluate between the same two rounds share one pass. An evaluation
//! with a neuron mask (the split: each network has its own) is computed at every call.
//!
//! When the test set does not fit the device (the adapter's largest storage binding), or the
//! backend keeps no data on the device ([`GpuOptions::device_data`](super::GpuOptions)), the
//! evaluation takes the host path (`backend::count_correct_on_host`: the logits batch by batch, read
//! back and counted on the host), and [`GpuBackend::device_test_status`] says why.

use super::accuracy::{counts_len, Accuracy};
use super::buffers;
use super::kernel::{Compiled, Dispatch, Launch};
use super::plan::{self, PlanInputs};
use super::{GpuBackend, Variant};
use crate::data::batches::TestSet;
use crate::model::NeuronMask;
use crate::ops::mask::flatten as flatten_mask;
use anyhow::{bail, Result};
use std::hash::{Hash, Hasher};

/// The most batches one submit of an evaluation holds (each batch has its own uniform slots); a
/// longer test set is evaluated in several submits, still with one read-back. At `--batch-size 256`
/// that is 262 144 rows per submit.
pub const MAX_BATCHES_PER_SUBMIT: usize = 1024;

/// Input values of a test set hashed into its [`TestKey`] (a sample, spread over every row).
const SAMPLED_INPUTS: usize = 1 << 16;

/// What tells one test set from another: its rows and width, and a hash of all its labels and of
/// a sample of [`SAMPLED_INPUTS`] of its input values spread evenly over it (every row of the
/// MNIST test sets is sampled several times). Cheap next to an evaluation. Test sets are built once
/// and never changed (`data::batches::test_set`); one changed in place, keeping its labels and
/// every sampled input, would not be noticed. Equal content at another address is the same key,
/// so the members of a population, each with its own copy of the test set, share one upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestKey {
    pub len: usize,
    pub input_dim: usize,
    pub hash: u64,
}

impl TestKey {
    pub fn of(test: &TestSet) -> TestKey {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        test.labels.hash(&mut h);
        let n = test.inputs.len();
        // An odd step, so that the samples do not keep to a few columns.
        let step = (n / SAMPLED_INPUTS) | 1;
        for i in (0..n).step_by(step) {
            test.inputs[i].to_bits().hash(&mut h);
        }
        if let Some(last) = test.inputs.last() {
            last.to_bits().hash(&mut h);
        }
        TestKey {
            len: test.len,
            input_dim: test.input_dim,
            hash: h.finish(),
        }
    }
}

/// A test set on the device, with the plans that evaluate it.
pub struct DeviceTest {
    pub key: TestKey,
    /// The rows `(len, N_0)` and labels `(len, heads)`.
    pub inputs: wgpu::Buffer,
    pub labels: wgpu::Buffer,
    /// Per network, [`counts_len`] counters `(correct, total)` per head.
    pub counts: wgpu::Buffer,
    /// The evaluation plan and the accuracy kernel, without and with the neuron mask, up to
    /// `chunk` batches per submit.
    plan: Compiled,
    masked_plan: Compiled,
    /// Bytes on the device (inputs, labels, counters).
    pub bytes: u64,
    /// The counters of every network from the last evaluation without a mask, and the backend's
    /// `version` they were computed at.
    unmasked: Option<(u64, Vec<u32>)>,
    /// Evaluation passes run on this test set (for tests and diagnostics).
    passes: u64,
}

/// Whether the test set is on the device.
#[derive(Default)]
pub(crate) enum EvalData {
    /// Nothing uploaded yet.
    #[default]
    No,
    Yes(Box<DeviceTest>),
    /// The test set of this key could not be uploaded (too large for the device), and why.
    Unavailable(TestKey, String),
}

impl GpuBackend {
    /// [`Backend::count_correct`](crate::backend::Backend::count_correct) of network `k`: every
    /// network evaluated on the same rows in one submit, network `k`'s counts read back.
    pub fn count_correct_of(
        &mut self,
        k: usize,
        test: &TestSet,
        keep: Option<&NeuronMask>,
    ) -> Result<Vec<(u64, u64)>> {
        self.ctx.check()?;
        self.check_model(k)?;
        crate::backend::check_test_set(&self.model, test, keep)?;
        let heads = self.model.heads;
        if test.len == 0 {
            return Ok(vec![(0, 0); heads]);
        }
        if !self.make_test_resident(test)? {
            let offsets = self.model.head_offsets();
            let logits = self.logits_of(k, &test.inputs, test.len, keep)?;
            return Ok(crate::ops::accuracy::count_correct(
                &logits,
                &test.labels,
                test.len,
                &offsets,
            ));
        }
        let n = counts_len(heads);
        let pairs = |words: &[u32]| -> Vec<(u64, u64)> {
            words
                .chunks_exact(2)
                .map(|c| (c[0] as u64, c[1] as u64))
                .collect()
        };
        if let EvalData::Yes(dt) = &self.eval {
            match &dt.unmasked {
                Some((version, words)) if keep.is_none() && *version == self.version => {
                    return Ok(pairs(&words[k * n..(k + 1) * n]));
                }
                _ => {}
            }
        }
        if let Some(keep) = keep {
            let flat = flatten_mask(keep, &self.model.sizes)?;
            self.ctx
                .queue
                .write_buffer(&self.bufs.keep, 0, bytemuck::cast_slice(&flat));
        }
        let ats: Vec<Launch> = (0..test.len)
            .step_by(self.capacity)
            .map(|first| Launch {
                first,
                ..self.launch(self.capacity.min(test.len - first), self.step[0].max(1))
            })
            .collect();
        let EvalData::Yes(dt) = &mut self.eval else {
            bail!("the test set is not on the device");
        };
        let plan = if keep.is_some() {
            &mut dt.masked_plan
        } else {
            &mut dt.plan
        };
        let row_bytes = (self.model.sizes[0] * 4) as u64;
        for (c, chunk) in ats.chunks(plan.chunk).enumerate() {
            plan.write_chunk_uniforms(&self.ctx, chunk);
            let mut enc = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("evaluation"),
                });
            if c == 0 {
                enc.clear_buffer(&dt.counts, 0, None);
            }
            for (r, at) in chunk.iter().enumerate() {
                enc.copy_buffer_to_buffer(
                    &dt.inputs,
                    at.first as u64 * row_bytes,
                    &self.bufs.input,
                    0,
                    Some(at.batch as u64 * row_bytes),
                );
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("evaluation batch"),
                    timestamp_writes: None,
                });
                plan.record_nth(&mut pass, at, r, |_| true);
            }
            self.ctx.queue.submit([enc.finish()]);
        }
        dt.passes += 1;
        if keep.is_some() {
            let words = buffers::read_u32(&self.ctx, &dt.counts, k * n, n)?;
            return Ok(pairs(&words));
        }
        let words = buffers::read_u32(&self.ctx, &dt.counts, 0, n * self.models)?;
        let counts = pairs(&words[k * n..(k + 1) * n]);
        dt.unmasked = Some((self.version, words));
        Ok(counts)
    }

    /// Evaluation passes run on the test sets on the device (0 when none is there): one per
    /// evaluation, but for the networks of a population evaluated without a mask at the same
    /// parameters, which share one.
    pub fn evaluation_passes(&self) -> u64 {
        let current = match &self.eval {
            EvalData::Yes(dt) => dt.passes,
            _ => 0,
        };
        current + self.eval_spare.as_ref().map_or(0, |dt| dt.passes)
    }

    /// Test sets on the device (at most two: the one evaluated last and the one before).
    pub fn device_test_sets(&self) -> usize {
        matches!(self.eval, EvalData::Yes(_)) as usize + self.eval_spare.is_some() as usize
    }

    /// Whether the test set last evaluated is on the device; `Err` says why it could not be put
    /// there (the evaluation then takes the host path).
    pub fn device_test_status(&self) -> std::result::Result<bool, String> {
        match &self.eval {
            EvalData::No => Ok(false),
            EvalData::Yes(_) => Ok(true),
            EvalData::Unavailable(_, why) => Err(why.clone()),
        }
    }

    /// Puts `test` on the device unless it is there already; `false` when the evaluation must take
    /// the host path (no data on the device by the options, or the test set does not fit).
    fn make_test_resident(&mut self, test: &TestSet) -> Result<bool> {
        if !self.opts.device_data {
            return Ok(false);
        }
        let key = TestKey::of(test);
        match &self.eval {
            EvalData::Yes(dt) if dt.key == key => return Ok(true),
            EvalData::Unavailable(k, _) if *k == key => return Ok(false),
            _ => {}
        }
        // The test set before this one stays as the spare (a population of mixed and sequential
        // networks evaluates on two test sets in turn): the one asked for may be it.
        let previous = match std::mem::take(&mut self.eval) {
            EvalData::Yes(dt) => Some(dt),
            _ => None,
        };
        if self.eval_spare.as_ref().is_some_and(|dt| dt.key == key) {
            self.eval = EvalData::Yes(self.eval_spare.take().expect("checked"));
            self.eval_spare = previous;
            return Ok(true);
        }
        // The oldest test set's buffers go before the new ones are made.
        self.eval_spare = previous;
        let heads = self.model.heads;
        let uploaded = self.upload_test(test).or_else(|e| {
            // Room for one test set but not two: drop the spare and try again.
            if self.eval_spare.take().is_some() {
                self.upload_test(test)
            } else {
                Err(e)
            }
        });
        let (inputs, labels, counts) = match uploaded {
            Ok(b) => b,
            Err(e) => {
                self.eval = EvalData::Unavailable(key, format!("{e:#}"));
                return Ok(false);
            }
        };
        let chunk = test.len.div_ceil(self.capacity).min(MAX_BATCHES_PER_SUBMIT);
        let plan = self.counting_plan(false, chunk, &labels, &counts)?;
        let masked_plan = self.counting_plan(true, chunk, &labels, &counts)?;
        let bytes = (test.inputs.len() + test.labels.len() + counts_len(heads) * self.models) as u64 * 4;
        self.eval = EvalData::Yes(Box::new(DeviceTest {
            key,
            inputs,
            labels,
            counts,
            plan,
            masked_plan,
            bytes,
            unmasked: None,
            passes: 0,
        }));
        Ok(true)
    }

    /// The test set's inputs, labels and a zeroed set of counters per network, on the device.
    fn upload_test(&self, test: &TestSet) -> Result<(wgpu::Buffer, wgpu::Buffer, wgpu::Buffer)> {
        // The kernels index rows and labels with 32 bits (`Params::first`).
        if (test.len as u64 + self.capacity as u64) * (self.model.heads as u64).max(1) >= u32::MAX as u64 {
            bail!(
                "a test set of {} rows is too large to index on the GPU with 32 bits",
                test.len
            );
        }
        let inputs = buffers::storage_with(&self.ctx, "test inputs", &test.inputs)?;
        let labels = buffers::storage(&self.ctx, "test labels", test.labels.len())?;
        self.ctx
            .queue
            .write_buffer(&labels, 0, bytemuck::cast_slice(&test.labels));
        let counts = buffers::storage(
            &self.ctx,
            "accuracy counters",
            counts_len(self.model.heads) * self.models,
        )?;
        Ok((inputs, labels, counts))
    }

    /// `plan::evaluation` (masked or not) followed by the accuracy kernel, for up to `chunk`
    /// batches per submit, each matmul of the variant the autotune chose for the backend's own
    /// evaluation plan of the same dispatches.
    fn counting_plan(
        &self,
        masked: bool,
        chunk: usize,
        labels: &wgpu::Buffer,
        counts: &wgpu::Buffer,
    ) -> Result<Compiled> {
        let inputs = PlanInputs {
            model: &self.model,
            layout: &self.layout,
            bufs: &self.bufs,
            capacity: self.capacity,
            variant: Variant::Tiled,
            max_workgroups: self.ctx.caps.max_workgroups,
            shared_input: true,
        };
        let last = self.model.num_layers();
        let mut dispatches = plan::evaluation(&inputs, masked);
        let count = Accuracy {
            heads: self.model.heads,
            width: self.model.output_dim(),
        };
        dispatches.push(
            Dispatch::new(
                count,
                [
                    ("logits", &self.bufs.acts[last]),
                    ("labels", labels),
                    ("head_offsets", &self.bufs.head_offsets),
                    ("counts", counts),
                ],
            )
            .per_model(&[
                ("logits", self.bufs.strides.layer[last]),
                ("counts", counts_len(self.model.heads)),
            ]),
        );
        let label = if masked {
            "masked evaluation with counts"
        } else {
            "evaluation with counts"
        };
        let mut compiled = Compiled::population(&self.ctx, label, dispatches, chunk, self.models)?;
        let tuned = if masked {
            &self.eval_masked_plan
        } else {
            &self.eval_plan
        };
        for (i, (s, t)) in compiled.steps.iter_mut().zip(&tuned.steps).enumerate() {
            match (s.op.matmul_mut(), t.op.matmul()) {
                (Some(mm), Some(chosen)) => {
                    mm.variant = chosen.variant;
                    s.pipeline = mm.pipeline(&self.ctx)?;
                }
                (None, None) => {}
                _ => bail!("{label}: dispatch {i} differs from the evaluation plan's"),
            }
        }
        Ok(compiled)
    }
}
