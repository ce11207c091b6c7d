//! Training from data on the device, many steps per submit: the training sets go to the device
//! once (`gather::DeviceData`), each network's epoch order is an index buffer, and a chunk of up
//! to `steps_per_submit` steps (each a clear of the gradients, the gather and the training step)
//! is recorded into one command encoder and submitted once, with nothing read back. For one
//! network or a population (every network its own order and its own batches, all in the same
//! dispatches: the step table, `step_table.rs`, tells each network its batch in each step).

use super::kernel::{Compiled, Dispatch, Launch};
use super::step_table::StepRecord;
use super::{gather, GpuBackend, Resident};
use crate::data::batches::EpochOrder;
use crate::data::Datasets;
use crate::ops::adam::AdamStep;
use anyhow::{bail, Result};
use std::ops::Range;

impl GpuBackend {
    /// Puts `data`'s training sets on the device (once; the orders go with each training call,
    /// [`GpuBackend::train_resident`]), with room for the longest of `orders` (one per network;
    /// `None` for a network that trains no more); `false` when the batches must come from the host
    /// instead (turned off, or the sets do not fit the device: [`GpuBackend::device_data_status`]
    /// says why).
    pub(crate) fn make_resident(&mut self, data: &Datasets, orders: &[Option<&EpochOrder>]) -> Result<bool> {
        if orders.len() != self.models {
            bail!(
                "{} epoch orders for a population of {}",
                orders.len(),
                self.models
            );
        }
        if !self.opts.device_data || matches!(self.resident, Resident::Unavailable(_)) {
            return Ok(false);
        }
        let order_len = orders
            .iter()
            .flatten()
            .map(|o| o.device_indices_len())
            .max()
            .unwrap_or(0);
        if let Resident::Yes { data: dd, .. } = &self.resident {
            if dd.fingerprint != gather::fingerprint(data) || dd.order_len < order_len {
                self.resident = Resident::No;
            }
        }
        if matches!(self.resident, Resident::No) {
            if self.capacity > self.ctx.caps.max_workgroups as usize {
                self.resident = Resident::Unavailable(format!(
                    "a batch of {} rows is more than the adapter's {} workgroups per dimension",
                    self.capacity, self.ctx.caps.max_workgroups
                ));
                return Ok(false);
            }
            // Concat's columns differ from the other modes'; a population never mixes concat with
            // another mode (the input widths differ), so network 0's mode packs the sets for all.
            let dd =
                match gather::DeviceData::upload(&self.ctx, data, self.train.mode, order_len, self.models) {
                    Ok(dd) => dd,
                    Err(e) => {
                        self.resident = Resident::Unavailable(format!("{e:#}"));
                        return Ok(false);
                    }
                };
            let (width, tasks) = (self.model.sizes[0], data.tasks.len());
            let strides = &self.bufs.strides;
            let bind = |part| {
                let op = gather::Gather { part, width, tasks };
                Dispatch::new(
                    op,
                    [
                        ("data", &dd.data),
                        ("sets", &dd.sets),
                        ("order", &dd.order),
                        ("input", &self.bufs.input),
                        ("labels", &self.bufs.labels),
                        ("steps", &self.bufs.steps),
                    ],
                )
                .per_model(&[
                    ("order", dd.order_len),
                    ("input", strides.input),
                    ("labels", strides.labels),
                    ("steps", 1),
                ])
            };
            let plan = Compiled::population(
                &self.ctx,
                "batch gather",
                vec![bind(gather::Part::Inputs), bind(gather::Part::Labels)],
                self.opts.steps_per_submit,
                self.models,
            )?;
            self.resident = Resident::Yes { data: dd, plan };
        }
        Ok(matches!(self.resident, Resident::Yes { .. }))
    }

    /// Records the steps `ats` (at most a chunk; their records of the step table written) into one
    /// command encoder, each gathering its batch on the device, and submits them at once.
    fn submit_chunk(&mut self, ats: &[Launch]) -> Result<()> {
        let Resident::Yes {
            plan: gather_plan, ..
        } = &mut self.resident
        else {
            bail!("the training sets are not on the device");
        };
        gather_plan.write_chunk_uniforms(&self.ctx, ats);
        self.train_plan.write_chunk_uniforms(&self.ctx, ats);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train chunk"),
            });
        for (r, at) in ats.iter().enumerate() {
            // Transport and density add into the gradient buffer: each step starts from zero.
            enc.clear_buffer(&self.bufs.grads, 0, None);
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("train step"),
                timestamp_writes: None,
            });
            gather_plan.record_nth(&mut pass, at, r, |_| true);
            self.train_plan.record_nth(&mut pass, at, r, |_| true);
        }
        self.ctx.queue.submit([enc.finish()]);
        Ok(())
    }

    /// Trains network `k` on batches `batches[k]` of its epoch order `orders[k]` (one network: one
    /// order; `None` and an empty range for a network that sits out), in chunks of
    /// `steps_per_submit` steps; `Ok(false)` (and nothing trained) when the training sets cannot be
    /// on the device.
    pub fn train_orders(
        &mut self,
        data: &Datasets,
        orders: &[Option<&EpochOrder>],
        batches: &[Range<usize>],
    ) -> Result<bool> {
        self.ctx.check()?;
        if !self.make_resident(data, orders)? {
            return Ok(false);
        }
        self.train_resident(orders, batches)?;
        Ok(true)
    }

    /// [`GpuBackend::train_orders`] on the training sets already on the device. The networks' ranges
    /// may differ in length and place (each network its own epoch, its own point in it): step `i`
    /// of the call is batch `batches[k].start + i` of network `k` while `i < batches[k].len()`,
    /// and network `k` sits out the steps after (step table, `step_table.rs`).
    pub(crate) fn train_resident(
        &mut self,
        orders: &[Option<&EpochOrder>],
        batches: &[Range<usize>],
    ) -> Result<()> {
        if orders.len() != self.models || batches.len() != self.models {
            bail!(
                "{} epoch orders and {} batch ranges for a population of {}",
                orders.len(),
                batches.len(),
                self.models
            );
        }
        let Resident::Yes { data: dd, .. } = &mut self.resident else {
            bail!("the training sets are not on the device");
        };
        let bs = self.train.batch_size;
        for (k, (order, range)) in orders.iter().zip(batches).enumerate() {
            let Some(order) = order else {
                if !range.is_empty() {
                    bail!("network {k} has batches {range:?} to train but no epoch order");
                }
                continue;
            };
            if order.mode() != self.trains[k].mode {
                bail!(
                    "network {k} trains on the {} input, but its epoch order is of the {} input",
                    self.trains[k].mode,
                    order.mode()
                );
            }
            let n_batches = order.num_batches(bs);
            if range.end > n_batches {
                bail!(
                    "network {k}: batches {}..{} of an epoch of {} examples ({n_batches} batches)",
                    range.start,
                    range.end,
                    order.len()
                );
            }
            if !range.is_empty() {
                dd.set_order(&self.ctx, k, order)?;
            }
        }
        let steps = batches.iter().map(|r| r.len()).max().unwrap_or(0);
        let models = self.models;
        let mut i = 0;
        while i < steps {
            let n = (steps - i).min(self.opts.steps_per_submit);
            let mut records = Vec::with_capacity(n * models);
            let mut ats = Vec::with_capacity(n);
            for j in 0..n {
                let s = i + j;
                let (mut widest, mut covered) = (0, 0);
                for (k, (order, range)) in orders.iter().zip(batches).enumerate() {
                    let record = match order {
                        Some(order) if s < range.len() => {
                            let first = (range.start + s) * bs;
                            // `step[k]` counts the steps of the chunks before this one.
                            let adam = AdamStep::of(&self.trains[k], self.step[k] + 1 + j as u64);
                            StepRecord::active(bs.min(order.len() - first), first, self.modes[k], adam)
                        }
                        _ => StepRecord::idle(self.modes[k]),
                    };
                    widest = widest.max(record.rows as usize);
                    if record.is_active() {
                        covered = k + 1;
                    }
                    records.push(record);
                }
                // The networks after the last that trains in this step are not computed at all.
                ats.push(Launch {
                    batch: widest,
                    step_at: j * models,
                    networks: Some(covered),
                    ..self.launch(widest, 1)
                });
            }
            self.write_step_table(&records);
            self.submit_chunk(&ats)?;
            self.version += 1;
            self.last_batch = ats.last().map_or(0, |a| a.batch);
            // Each network took the steps of this chunk it was active in (a prefix of them).
            for (k, range) in batches.iter().enumerate() {
                let taken = range.len().saturating_sub(i).min(n) as u64;
                self.step[k] += taken;
                self.pending[k] += taken;
            }
            i += n;
        }
        Ok(())
    }
}
