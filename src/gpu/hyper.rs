//! The hyperparameters a population's networks may differ in (alpha, beta, the transport and
//! weight norms, the learning rate), as one record of f32s per network in the storage buffer
//! `hyper`. The kernels that use one (transport, density, the loss reduction, Adam) take from their
//! uniform block *where* it sits in the record (`<name>_at`) and from the runtime the record's
//! per-model stride (`hyper_ms`), and read `hyper[z * hyper_ms + <name>_at]` for network `z`. A
//! single run is a population of one: the same kernels read the same numbers, so a network trains
//! to the same bits alone or in a population.
//!
//! Every value is computed here on the host exactly as a single run computes it (the same f32
//! operations in the same order), so moving it from a uniform to this buffer changes no bit.

use crate::config::{Init, InputMode, ModelConfig, TrainConfig, TransportNorm, WeightNorm};
use crate::ops::density::density_scale;
use crate::ops::spatial_weights;
use crate::ops::transport::transport_scale;
use anyhow::{bail, Result};

/// What the networks of a population may differ in, as the command line names it.
pub const MAY_DIFFER: &str = "--seed, --init, --lr, --alpha, --beta, --transport-norm, --weight-norm, \
     --epochs, and --mode between mixed and sequential (concat's input is twice as wide)";

/// The configurations of a network with everything a population's networks may differ in set to
/// one value: two networks can train as one population exactly when their keys are equal. (The
/// initialisation and the seed only shape the starting state, which each network brings; the
/// hyperparameters are in its record of `hyper`; its epochs, its mode's epoch order and its Adam
/// step are its own in the step table, `step_table.rs`, which lets a network sit out a step. Concat
/// stays apart from the other modes: its input is twice as wide and the training sets are laid out
/// for its columns.)
pub fn population_key(model: &ModelConfig, train: &TrainConfig) -> (ModelConfig, TrainConfig) {
    (
        ModelConfig {
            alpha: 0.0,
            beta: 0.0,
            transport_norm: TransportNorm::Paper,
            weight_norm: WeightNorm::L1,
            init: Init::Torch,
            ..model.clone()
        },
        TrainConfig {
            seed: 0,
            lr: 0.0,
            epochs: 0,
            mode: match train.mode {
                InputMode::Concat => InputMode::Concat,
                InputMode::Mixed | InputMode::Sequential => InputMode::Mixed,
            },
            ..train.clone()
        },
    )
}

/// Fails, naming the network, unless every network has network 0's [`population_key`].
pub fn check_population(models: &[ModelConfig], trains: &[TrainConfig]) -> Result<()> {
    let (Some(m0), Some(t0)) = (models.first(), trains.first()) else {
        return Ok(());
    };
    let key0 = population_key(m0, t0);
    for (k, (m, t)) in models.iter().zip(trains).enumerate() {
        let (mk, tk) = population_key(m, t);
        let what = if mk != key0.0 {
            "its network's shape, tasks or activation"
        } else if tk != key0.1 {
            "its input mode (concat against another), batch size or Adam's betas and eps"
        } else {
            continue;
        };
        bail!(
            "network {k} of the population (seed {}) differs from network 0 (seed {}) in {what}: \
             a population's networks may differ only in {MAY_DIFFER}",
            t.seed,
            t0.seed
        );
    }
    Ok(())
}

/// Where each value sits in a network's record (indices into the record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HyperLayout {
    /// Spatial layers (each has four values).
    pub spatial: usize,
}

impl HyperLayout {
    /// The constant 1, for a product whose factor is the same for every network (the loss
    /// reduction multiplies its uniform scale by `hyper[.. + ONE]`, an exact no-op).
    pub const ONE: usize = 0;
    /// Adam's learning rate.
    pub const LR: usize = 1;
    const PER_LAYER: usize = 4;
    const FIRST_LAYER: usize = 2;

    pub fn of(model: &ModelConfig) -> HyperLayout {
        HyperLayout {
            spatial: model.spatial_layers.len(),
        }
    }

    /// Spatial layer number `s`'s transport gradient factor `g = (alpha / |L|) · scale`.
    pub fn transport_g(s: usize) -> usize {
        Self::FIRST_LAYER + Self::PER_LAYER * s
    }

    /// 1 where spatial layer `s`'s transport uses squared weights (`--weight-norm l2`), else 0.
    pub fn transport_l2(s: usize) -> usize {
        Self::transport_g(s) + 1
    }

    /// Spatial layer `s`'s transport normalisation (`1/N_l` or `1/(N_{l-1} N_l)`), by which the
    /// loss reduction multiplies the row sums.
    pub fn transport_scale(s: usize) -> usize {
        Self::transport_g(s) + 2
    }

    /// Spatial layer `s`'s density gradient factor `g = (beta / |L|) / N_l²`.
    pub fn density_g(s: usize) -> usize {
        Self::transport_g(s) + 3
    }

    /// Values in a record.
    pub fn values(&self) -> usize {
        Self::FIRST_LAYER + Self::PER_LAYER * self.spatial
    }

    /// The record's stride in the buffer: a multiple of 4 floats.
    pub fn stride(&self) -> usize {
        self.values().div_ceil(4) * 4
    }

    /// A record with the constant 1 and the learning rate `lr`, every spatial layer weighted 0.
    pub fn empty_record(&self, lr: f32) -> Vec<f32> {
        let mut r = vec![0.0; self.stride()];
        r[Self::ONE] = 1.0;
        r[Self::LR] = lr;
        r
    }

    /// Writes into `record` the transport of spatial layer `s` (`c` inputs, `oc` outputs),
    /// weighted `coeff` (`alpha / |L|`) in the loss: the same f32 operations as the CPU's.
    #[allow(clippy::too_many_arguments)]
    pub fn set_transport(
        record: &mut [f32],
        s: usize,
        norm: TransportNorm,
        weight_norm: WeightNorm,
        coeff: f32,
        c: usize,
        oc: usize,
    ) {
        let scale = transport_scale(norm, c, oc);
        record[Self::transport_g(s)] = coeff * scale;
        record[Self::transport_l2(s)] = (weight_norm == WeightNorm::L2) as u32 as f32;
        record[Self::transport_scale(s)] = scale;
    }

    /// Writes into `record` the density of spatial layer `s` (`n` neurons), weighted `coeff`
    /// (`beta / |L|`).
    pub fn set_density(record: &mut [f32], s: usize, coeff: f32, n: usize) {
        record[Self::density_g(s)] = coeff * density_scale(n);
    }

    /// The record of a network of `model` trained with `train`.
    pub fn record(&self, model: &ModelConfig, train: &TrainConfig) -> Vec<f32> {
        let mut r = self.empty_record(train.lr);
        let (t_coeff, d_coeff) = spatial_weights(model.alpha, model.beta, model.spatial_layers.len());
        for (s, &l) in model.spatial_layers.iter().enumerate() {
            let (c, oc) = (model.sizes[l - 1], model.sizes[l]);
            Self::set_transport(&mut r, s, model.transport_norm, model.weight_norm, t_coeff, c, oc);
            Self::set_density(&mut r, s, d_coeff, oc);
        }
        r
    }

    /// The records of a population, one after the other, `stride()` apart.
    pub fn records(&self, networks: &[(&ModelConfig, &TrainConfig)]) -> Vec<f32> {
        networks.iter().flat_map(|(m, t)| self.record(m, t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TransportNorm;

    #[test]
    fn a_record_holds_each_value_once_at_its_place() {
        let mut model = ModelConfig::paper(784);
        model.alpha = 2.0;
        model.beta = 6.0;
        model.transport_norm = TransportNorm::Mean;
        model.weight_norm = WeightNorm::L2;
        let train = TrainConfig {
            lr: 0.01,
            ..TrainConfig::default()
        };
        let h = HyperLayout::of(&model);
        assert_eq!(h.values(), 2 + 4 * 3);
        assert_eq!(h.stride(), 16);
        let r = h.record(&model, &train);
        assert_eq!(r[HyperLayout::ONE], 1.0);
        assert_eq!(r[HyperLayout::LR], 0.01);
        // Layer 3 (128 -> 128): alpha / |L| = 2/3, mean scale 1/(128·128).
        let scale = 1.0 / (128.0f32 * 128.0);
        assert_eq!(r[HyperLayout::transport_scale(0)], scale);
        assert_eq!(r[HyperLayout::transport_g(0)], (2.0f32 / 3.0) * scale);
        assert_eq!(r[HyperLayout::transport_l2(0)], 1.0);
        assert_eq!(
            r[HyperLayout::density_g(0)],
            (6.0f32 / 3.0) * (1.0 / (128.0f32 * 128.0))
        );
        // Layer 5 (256 -> 20).
        assert_eq!(r[HyperLayout::transport_scale(2)], 1.0 / (256.0f32 * 20.0));
        assert_eq!(r[HyperLayout::density_g(2)], 2.0 * (1.0 / 400.0f32));
        // The padding is zero, and the records of two networks sit a stride apart.
        assert_eq!(&r[h.values()..], &[0.0, 0.0]);
        let regular = ModelConfig {
            alpha: 0.0,
            beta: 0.0,
            ..model.clone()
        };
        let both = h.records(&[(&model, &train), (&regular, &train)]);
        assert_eq!(both.len(), 32);
        assert_eq!(&both[..16], &r[..]);
        assert_eq!(both[16 + HyperLayout::transport_g(1)], 0.0);
        assert_eq!(
            both[16 + HyperLayout::transport_scale(1)],
            1.0 / (128.0f32 * 256.0)
        );
    }
}
