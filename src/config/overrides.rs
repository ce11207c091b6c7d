//! [`Overrides`]: the options of `train` as changes to the default configuration.

use super::*;

/// Changes to the default configuration, one field per option of `spatial-gpu train` (`None`: the
/// default). The command line converts its options into this, and the grids of `reproduce` and
/// `sweep` build their runs with it, so every run gets exactly `train`'s defaults.
///
/// Serialised, each field is named as its option (`batch-size`): `train --config summary.json`
/// reads a run's options back this way (see [`Overrides::from_configs`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Overrides {
    pub mode: Option<InputMode>,
    pub init: Option<Init>,
    pub transport_norm: Option<TransportNorm>,
    pub weight_norm: Option<WeightNorm>,
    pub activation: Option<Activation>,
    /// The spatial layers (default: the third hidden layer on, clipped to the network's depth).
    pub spatial_layers: Option<Vec<usize>>,
    pub alpha: Option<f32>,
    pub beta: Option<f32>,
    /// A regular network: alpha = beta = 0, whatever `alpha` and `beta` say.
    pub regular: bool,
    /// Hidden layer sizes (the input and output layers come from the mode).
    pub hidden: Option<Vec<usize>>,
    pub epochs: Option<usize>,
    pub seed: Option<u64>,
    pub batch_size: Option<usize>,
    pub lr: Option<f32>,
}

impl Overrides {
    /// The options that give `model` and `train`, every one set: what `train --config summary.json`
    /// reruns a run with. [`Overrides::configs`] of the result gives them back when options can
    /// express them (not, say, Adam's constants of a hand-edited checkpoint): compare to be sure.
    pub fn from_configs(model: &ModelConfig, train: &TrainConfig) -> Overrides {
        let hidden = model.sizes.get(1..model.sizes.len().saturating_sub(1));
        Overrides {
            mode: Some(train.mode),
            init: Some(model.init),
            transport_norm: Some(model.transport_norm),
            weight_norm: Some(model.weight_norm),
            alpha: Some(model.alpha),
            beta: Some(model.beta),
            regular: false,
            hidden: Some(hidden.unwrap_or_default().to_vec()),
            epochs: Some(train.epochs),
            seed: Some(train.seed),
            batch_size: Some(train.batch_size),
            lr: Some(train.lr),
            activation: Some(model.activation),
            spatial_layers: Some(model.spatial_layers.clone()),
        }
    }

    /// The configuration these changes describe, for MNIST and Fashion-MNIST (28x28 images, 10
    /// classes each), validated.
    pub fn configs(&self) -> Result<(ModelConfig, TrainConfig), ConfigError> {
        self.configs_for(&DataShape::default_pair())
    }

    /// The configuration these changes describe for the tasks of `shape` (one head per task with
    /// its class count, the input width of the mode), validated.
    pub fn configs_for(&self, shape: &DataShape) -> Result<(ModelConfig, TrainConfig), ConfigError> {
        let mut train = TrainConfig::default();
        if let Some(m) = self.mode {
            train.mode = m;
        }
        if let Some(v) = self.epochs {
            train.epochs = v;
        }
        if let Some(v) = self.seed {
            train.seed = v;
        }
        if let Some(v) = self.batch_size {
            train.batch_size = v;
        }
        if let Some(v) = self.lr {
            train.lr = v;
        }
        shape.check_mode(train.mode)?;
        let mut model = ModelConfig::defaults(shape.input_dim(train.mode));
        if shape.tasks.is_empty() {
            return Err(ConfigError::new("tasks", "no task: give at least one"));
        }
        model.tasks = shape.tasks.iter().map(|t| t.head.clone()).collect();
        model.heads = model.tasks.len();
        let last = model.sizes.len() - 1;
        model.sizes[last] = model.tasks.iter().map(|t| t.classes).sum();
        if let Some(h) = &self.hidden {
            let mut sizes = vec![model.sizes[0]];
            sizes.extend(h);
            sizes.push(model.output_dim());
            model.sizes = sizes;
            // The spatial layers stay "the third hidden layer on", clipped to the network's depth.
            let last = model.num_layers();
            model.spatial_layers = (3.min(last)..=last).collect();
        }
        if let Some(v) = self.init {
            model.init = v;
        }
        if let Some(v) = self.transport_norm {
            model.transport_norm = v;
        }
        if let Some(v) = self.weight_norm {
            model.weight_norm = v;
        }
        if let Some(v) = self.activation {
            model.activation = v;
        }
        if let Some(v) = &self.spatial_layers {
            model.spatial_layers = v.clone();
        }
        if let Some(v) = self.alpha {
            model.alpha = v;
        }
        if let Some(v) = self.beta {
            model.beta = v;
        }
        if self.regular {
            model.alpha = 0.0;
            model.beta = 0.0;
        }
        model.validate()?;
        train.validate()?;
        Ok((model, train))
    }
}
