//! Training from data on the device, many steps per submit: the training sets go to the device
//! once (`gather::DeviceData`), each network's epoch order is an index buffer, and a chunk of up
//! to `steps_per_submit` steps (each a clear of the gradients, the gather and the training step)
//! is recorded into one command encoder and submitted once, with nothing read back. For one
//! network or a population (every network its own order, all in the same dispatches).

use super::kernel::{Compiled, Dispatch, Launch};
use super::{gather, GpuBackend, Resident};
use crate::data::batches::EpochOrder;
use crate::data::Datasets;
use crate::ops::adam::AdamStep;
use anyhow::{bail, Result};
use std::ops::Range;

impl GpuBackend {
    /// Puts `data`'s training sets on the device (once; the orders go with each training call,
    /// [`GpuBackend::train_resident`]); `false` when the batches must come from the host instead (turned off, or
    /// the sets do not fit the device: [`GpuBackend::device_data_status`] says why).
    pub(crate) fn make_resident(&mut self, data: &Datasets, orders: &[&EpochOrder]) -> Result<bool> {
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
        if let Resident::Yes { data: dd, .. } = &self.resident {
            if dd.fingerprint != gather::fingerprint(data) {
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
            let order_len = orders[0].device_indices().len();
            let dd =
                match gather::DeviceData::upload(&self.ctx, data, self.train.mode, order_len, self.models) {
                    Ok(dd) => dd,
                    Err(e) => {
                        self.resident = Resident::Unavailable(format!("{e:#}"));
                        return Ok(false);
                    }
                };
            let (width, tasks, mode) = (self.model.sizes[0], data.tasks.len(), self.train.mode);
            let strides = &self.bufs.strides;
            let bind = |part| {
                let op = gather::Gather {
                    part,
                    width,
                    tasks,
                    mode,
                };
                Dispatch::new(
                    op,
                    [
                        ("data", &dd.data),
                        ("sets", &dd.sets),
                        ("order", &dd.order),
                        ("input", &self.bufs.input),
                        ("labels", &self.bufs.labels),
                    ],
                )
                .per_model(&[
                    ("order", order_len),
                    ("input", strides.input),
                    ("labels", strides.labels),
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

    /// Records the steps `ats` (at most a chunk) into one command encoder, each gathering its
    /// batch on the device, and submits them at once.
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

    /// Trains batches `batches` of the epoch, network `k` on its own order `orders[k]` (one
    /// network: one order), in chunks of `steps_per_submit` steps; `Ok(false)` (and nothing
    /// trained) when the training sets cannot be on the device.
    pub fn train_orders(
        &mut self,
        data: &Datasets,
        orders: &[&EpochOrder],
        batches: Range<usize>,
    ) -> Result<bool> {
        self.ctx.check()?;
        if !self.make_resident(data, orders)? {
            return Ok(false);
        }
        self.train_resident(orders, batches)?;
        Ok(true)
    }

    /// [`GpuBackend::train_orders`] on the training sets already on the device.
    pub(crate) fn train_resident(&mut self, orders: &[&EpochOrder], batches: Range<usize>) -> Result<()> {
        let Resident::Yes { data: dd, .. } = &mut self.resident else {
            bail!("the training sets are not on the device");
        };
        for (k, order) in orders.iter().enumerate() {
            dd.set_order(&self.ctx, k, order)?;
        }
        let bs = self.train.batch_size;
        let len = orders[0].len();
        let n_batches = orders[0].num_batches(bs);
        if orders.iter().any(|o| o.len() != len) || batches.end > n_batches {
            bail!(
                "batches {}..{} of epochs of {:?} examples ({n_batches} batches)",
                batches.start,
                batches.end,
                orders.iter().map(|o| o.len()).collect::<Vec<_>>()
            );
        }
        let mut b = batches.start;
        while b < batches.end {
            let n = (batches.end - b).min(self.opts.steps_per_submit);
            let ats: Vec<Launch> = (0..n)
                .map(|i| {
                    let first = (b + i) * bs;
                    Launch {
                        batch: bs.min(len - first),
                        adam: AdamStep::of(&self.train, self.step + 1 + i as u64),
                        first,
                    }
                })
                .collect();
            self.submit_chunk(&ats)?;
            self.step += n as u64;
            self.version += 1;
            for p in &mut self.pending {
                *p += n as u64;
            }
            self.last_batch = ats.last().map_or(0, |a| a.batch);
            b += n;
        }
        Ok(())
    }
}
