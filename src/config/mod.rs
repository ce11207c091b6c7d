//! Every choice a training run depends on, validated in one place before any work starts.
//!
//! The defaults follow `METHOD.md` (the paper's formulas); see the README for why each option exists.

mod overrides;
mod tasks;
pub use overrides::Overrides;
pub use tasks::{display_name, task_names_or_legacy, DataShape, TaskHead, TaskShape, DEFAULT_TASKS};

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the tasks' images reach the network (METHOD.md, "Training").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    /// One image of every task side by side (`[mnist_i, fashion_j]`, 1568 values), every label.
    Concat,
    /// The tasks' images summed element-wise (784 values in [0, M]), every label; one image size.
    Mixed,
    /// One image of one task per example, only its own head's label counts; one image size.
    Sequential,
}

impl InputMode {
    /// Width of the input layer for tasks whose images have `pixels[t]` pixels: their sum in
    /// concat mode, else the size of one image (the largest, for callers that have not checked
    /// that the sizes are equal: [`DataShape::check_mode`] does).
    pub fn input_dim(self, pixels: &[usize]) -> usize {
        match self {
            InputMode::Concat => pixels.iter().sum(),
            InputMode::Mixed | InputMode::Sequential => pixels.iter().copied().max().unwrap_or(0),
        }
    }

    /// Whether the mode feeds one image size to the network (mixed and sequential), so that every
    /// task's images must have that size.
    pub fn needs_one_size(self) -> bool {
        self != InputMode::Concat
    }
    pub fn name(self) -> &'static str {
        match self {
            InputMode::Concat => "concat",
            InputMode::Mixed => "mixed",
            InputMode::Sequential => "sequential",
        }
    }
}

impl fmt::Display for InputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Initial weights and biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// PyTorch's `nn.Linear`: weights and biases uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`.
    Torch,
    /// Glorot/Xavier uniform weights, `[-sqrt(6/(fan_in+fan_out)), +..]`, zero biases.
    Xavier,
}

/// What the transport sum of a layer is divided by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportNorm {
    /// The paper's `1/N_l`.
    Paper,
    /// The authors' code: a mean over all `N_{l-1} * N_l` connections.
    Mean,
}

/// The weight term of the transport cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightNorm {
    /// `|w|`, the paper.
    L1,
    /// `w^2`, the authors' code's default.
    L2,
}

/// The activation function of the hidden layers (the output layer is linear: its values are the
/// logits). Each derivative is written in terms of the output `a`, so the backward pass needs no
/// pre-activation (METHOD.md, "Activations").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `1 / (1 + e^{-z})`, the paper's; derivative `a (1 - a)`.
    #[default]
    Sigmoid,
    /// `max(z, 0)`; derivative `1` where `a > 0`, else `0`.
    Relu,
    /// `tanh z`; derivative `1 - a^2`.
    Tanh,
}

impl Activation {
    pub const ALL: [Activation; 3] = [Activation::Sigmoid, Activation::Relu, Activation::Tanh];
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.choice_name())
    }
}

/// The named values of an option's enum: each value, its name on the command line and in files, and
/// one line of help. The command layer builds its parsers from this, so the core needs no clap.
pub trait Choice: Copy + 'static {
    const CHOICES: &'static [(Self, &'static str, &'static str)];

    /// The name of this value.
    fn choice_name(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::CHOICES
            .iter()
            .find(|(v, _, _)| *v == self)
            .map_or("?", |(_, name, _)| name)
    }
}

impl Choice for InputMode {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            InputMode::Concat,
            "concat",
            "One image of every task side by side (`[mnist_i, fashion_j]`, 1568 values), every label",
        ),
        (
            InputMode::Mixed,
            "mixed",
            "The tasks' images summed element-wise (784 values in [0, M]), every label; one image size",
        ),
        (
            InputMode::Sequential,
            "sequential",
            "One image of one task per example, only its own head's label counts; one image size",
        ),
    ];
}

impl Choice for Init {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Init::Torch,
            "torch",
            "PyTorch's `nn.Linear`: weights and biases uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`",
        ),
        (
            Init::Xavier,
            "xavier",
            "Glorot/Xavier uniform weights, `[-sqrt(6/(fan_in+fan_out)), +..]`, zero biases",
        ),
    ];
}

impl Choice for TransportNorm {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (TransportNorm::Paper, "paper", "The paper's `1/N_l`"),
        (
            TransportNorm::Mean,
            "mean",
            "The authors' code: a mean over all `N_{l-1} * N_l` connections",
        ),
    ];
}

impl Choice for Activation {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            Activation::Sigmoid,
            "sigmoid",
            "`1 / (1 + e^{-z})`, the paper's; derivative `a (1 - a)`",
        ),
        (
            Activation::Relu,
            "relu",
            "`max(z, 0)`; derivative `1` where `a > 0`, else `0`",
        ),
        (Activation::Tanh, "tanh", "`tanh z`; derivative `1 - a^2`"),
    ];
}

impl Choice for WeightNorm {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (WeightNorm::L1, "l1", "`|w|`, the paper"),
        (WeightNorm::L2, "l2", "`w^2`, the authors' code's default"),
    ];
}

/// The most weights a model may have (2^28, 1 GiB of `f32`): about a thousand times the paper's.
pub const MAX_WEIGHTS: usize = 1 << 28;
/// The most neurons one layer may have (2^20): the density cost compares every pair of a layer's
/// neurons, and a batch holds `batch_size x width` activations per layer.
pub const MAX_LAYER_WIDTH: usize = 1 << 20;
/// The most layers a model may have, input and output included (the paper's has 6).
pub const MAX_LAYERS: usize = 64;
/// The largest batch (2^16, more than the 60000 training examples of an epoch): a checkpoint's batch
/// size decides the size of buffers allocated before any data is read.
pub const MAX_BATCH_SIZE: usize = 1 << 16;
/// The most epochs a run may have (the paper trains 50).
pub const MAX_EPOCHS: usize = 1_000_000;

/// The model and its losses: everything that changes what a step computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Neurons per layer, input first, output last (`n-128-128-128-256-20`).
    pub sizes: Vec<usize>,
    /// Number of output heads, one per task; the output layer is split into `heads` contiguous
    /// blocks, head `t` having `tasks[t].classes` neurons.
    pub heads: usize,
    /// The tasks, in head order. Empty in configurations written before tasks could be chosen:
    /// those have `heads` equal blocks, named `mnist` and `fashion-mnist` when there are two
    /// ([`ModelConfig::fill_tasks`] makes them explicit).
    #[serde(default)]
    pub tasks: Vec<TaskHead>,
    /// Layers (by index, 1-based as in METHOD.md: layer 0 is the input) that carry the spatial costs
    /// and are split (`--spatial-layers`): strictly increasing, ending at the output layer. Default:
    /// the third hidden layer on. A checkpoint's model without the field (a file written by hand or
    /// another tool) reads as the paper's `3,4,5`.
    #[serde(default = "paper_spatial_layers")]
    pub spatial_layers: Vec<usize>,
    pub alpha: f32,
    pub beta: f32,
    pub transport_norm: TransportNorm,
    pub weight_norm: WeightNorm,
    pub init: Init,
    /// The hidden layers' activation (`--activation`); a checkpoint written before the option
    /// existed has no field and was trained with the sigmoid.
    #[serde(default)]
    pub activation: Activation,
}

/// The paper's spatial layers, `L = {3, 4, 5}`.
fn paper_spatial_layers() -> Vec<usize> {
    vec![3, 4, 5]
}

/// `3,4,5`: a list of layers as the command line writes it.
pub fn layer_list(layers: &[usize]) -> String {
    layers.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",")
}

impl ModelConfig {
    /// METHOD.md's network for an input of `input_dim` values.
    pub fn paper(input_dim: usize) -> Self {
        ModelConfig {
            sizes: vec![input_dim, 128, 128, 128, 256, 20],
            heads: 2,
            tasks: DEFAULT_TASKS.iter().map(|name| TaskHead::new(name, 10)).collect(),
            spatial_layers: paper_spatial_layers(),
            alpha: 1.0,
            beta: 3.0,
            transport_norm: TransportNorm::Paper,
            weight_norm: WeightNorm::L1,
            init: Init::Torch,
            activation: Activation::Sigmoid,
        }
    }

    /// The defaults of `train` and `reproduce`: the paper's network and formulas (T divided by N_l,
    /// |w|) with alpha = 0.01, beta = 3 and Glorot/Xavier initialisation. Chosen by the sweep in
    /// docs/RESULTS.md: with alpha = 1 the paper's formula learns nothing; alpha = 0.01 (and the
    /// authors' mean normalisation with alpha = 1, about alpha = 0.008 here) trained both heads in
    /// every seed and split with no loss in the concatenated and mixed modes, and alpha = 0.01 split
    /// best in the sequential mode. PyTorch's default init often left the MNIST head at chance.
    pub fn defaults(input_dim: usize) -> Self {
        ModelConfig {
            alpha: 0.01,
            init: Init::Xavier,
            ..ModelConfig::paper(input_dim)
        }
    }

    pub fn num_layers(&self) -> usize {
        self.sizes.len() - 1
    }
    pub fn output_dim(&self) -> usize {
        *self.sizes.last().unwrap()
    }
    /// The number of classes of each head, in task order.
    pub fn head_sizes(&self) -> Vec<usize> {
        (0..self.heads).map(|h| self.head_classes(h)).collect()
    }
    /// The number of classes of head `h`.
    pub fn head_classes(&self, h: usize) -> usize {
        match self.tasks.get(h) {
            Some(t) => t.classes,
            None => self.output_dim() / self.heads.max(1),
        }
    }
    /// `f(&self.head_offsets())` without allocating for up to 32 heads (the training step calls it
    /// every step, and a step allocates nothing).
    pub fn with_head_offsets<R>(&self, f: impl FnOnce(&[usize]) -> R) -> R {
        const ON_STACK: usize = 32;
        if self.heads > ON_STACK {
            return f(&self.head_offsets());
        }
        let mut offsets = [0usize; ON_STACK + 1];
        for h in 0..self.heads {
            offsets[h + 1] = offsets[h] + self.head_classes(h);
        }
        f(&offsets[..=self.heads])
    }
    /// Where each head starts in the output layer, and the output layer's width last
    /// (`heads + 1` values: head `t` owns outputs `offsets[t]..offsets[t + 1]`).
    pub fn head_offsets(&self) -> Vec<usize> {
        let mut offsets = vec![0];
        for n in self.head_sizes() {
            offsets.push(offsets.last().copied().unwrap_or(0) + n);
        }
        offsets
    }
    /// The task whose head holds output neuron `j`.
    pub fn head_of_output(&self, j: usize) -> usize {
        let offsets = self.head_offsets();
        offsets[1..]
            .iter()
            .position(|&end| j < end)
            .unwrap_or(self.heads.saturating_sub(1))
    }
    /// The tasks' names, in head order (see the field `tasks` for configurations without them).
    pub fn task_names(&self) -> Vec<String> {
        if !self.tasks.is_empty() {
            return self.tasks.iter().map(|t| t.name.clone()).collect();
        }
        if self.heads == DEFAULT_TASKS.len() {
            return DEFAULT_TASKS.iter().map(|n| n.to_string()).collect();
        }
        (0..self.heads).map(|t| format!("task{t}")).collect()
    }
    /// Whether `self` and `other` are the same model, a configuration without task names counting as
    /// the one with its implied tasks ([`ModelConfig::fill_tasks`]).
    pub fn same_model(&self, other: &ModelConfig) -> bool {
        let (mut a, mut b) = (self.clone(), other.clone());
        a.fill_tasks();
        b.fill_tasks();
        a == b
    }
    /// Makes the tasks explicit in a configuration written before they could be chosen (see the
    /// field `tasks`); a configuration that has them is left alone.
    pub fn fill_tasks(&mut self) {
        if self.tasks.is_empty() && self.heads > 0 && self.output_dim().is_multiple_of(self.heads) {
            let sizes = self.head_sizes();
            self.tasks = self
                .task_names()
                .iter()
                .zip(sizes)
                .map(|(name, n)| TaskHead::new(name, n))
                .collect();
        }
    }
    /// A regular network has no spatial costs; its positions never move.
    pub fn is_spatial(&self) -> bool {
        self.alpha != 0.0 || self.beta != 0.0
    }
    pub fn is_spatial_layer(&self, l: usize) -> bool {
        self.spatial_layers.contains(&l)
    }

    /// Checks every value; the message names the field and the value at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // `sizes` is set by --hidden (all but the input and output layer, which the data and the
        // heads decide); a fault only a hand-edited checkpoint can have names the field.
        let last = self.sizes.len().saturating_sub(1);
        let sizes_at = |i: usize| {
            if i > 0 && i < last {
                ConfigError::new("hidden", "")
            } else {
                ConfigError::field("model.sizes", "")
            }
        };
        if self.sizes.len() < 2 {
            return Err(ConfigError::field(
                "model.sizes",
                "needs at least an input and an output layer",
            ));
        }
        if self.sizes.len() > MAX_LAYERS {
            return Err(ConfigError::new(
                "hidden",
                format!(
                    "{} layers, more than the {MAX_LAYERS} this program accepts (checkpoint field model.sizes)",
                    self.sizes.len()
                ),
            ));
        }
        if let Some(i) = self.sizes.iter().position(|&n| n == 0) {
            return Err(sizes_at(i).with(format!("layer {i} has 0 neurons")));
        }
        if let Some(i) = self.sizes.iter().position(|&n| n > MAX_LAYER_WIDTH) {
            return Err(sizes_at(i).with(format!(
                "layer {i} has {} neurons, more than the {MAX_LAYER_WIDTH} this program accepts",
                self.sizes[i]
            )));
        }
        // Checked before anything is allocated: the model is held four times over (parameters,
        // gradient, Adam's two moments), so a typo in --hidden must not try to allocate terabytes.
        let mut weights = 0usize;
        for l in 1..self.sizes.len() {
            weights = self.sizes[l]
                .checked_mul(self.sizes[l - 1])
                .and_then(|w| weights.checked_add(w))
                .filter(|&w| w <= MAX_WEIGHTS)
                .ok_or_else(|| {
                    ConfigError::new(
                        "hidden",
                        format!("layers {:?} have more than {MAX_WEIGHTS} weights, more than this program accepts", self.sizes),
                    )
                })?;
        }
        if self.heads == 0 {
            return Err(ConfigError::field(
                "model.heads",
                "0 heads: a model needs at least one task",
            ));
        }
        if self.tasks.is_empty() {
            if !self.output_dim().is_multiple_of(self.heads) {
                return Err(ConfigError::field(
                    "model.heads",
                    format!(
                        "{} heads do not divide the {} outputs evenly",
                        self.heads,
                        self.output_dim()
                    ),
                ));
            }
        } else {
            if self.tasks.len() != self.heads {
                return Err(ConfigError::field(
                    "model.tasks",
                    format!("{} tasks for {} heads", self.tasks.len(), self.heads),
                ));
            }
            if let Some(t) = self.tasks.iter().find(|t| t.classes == 0) {
                return Err(ConfigError::field(
                    "model.tasks",
                    format!("task {} has 0 classes", t.name),
                ));
            }
            let classes: usize = self.tasks.iter().map(|t| t.classes).sum();
            if classes != self.output_dim() {
                return Err(ConfigError::field(
                    "model.tasks",
                    format!(
                        "the heads have {classes} classes in all, but the output layer has {} neurons",
                        self.output_dim()
                    ),
                ));
            }
            for (i, t) in self.tasks.iter().enumerate() {
                if self.tasks[..i].iter().any(|u| u.name == t.name) {
                    return Err(ConfigError::new(
                        "tasks",
                        format!("task {} is named twice", t.name),
                    ));
                }
            }
        }
        self.validate_spatial_layers()?;
        for (name, v) in [("alpha", self.alpha), ("beta", self.beta)] {
            if !v.is_finite() || v < 0.0 {
                return Err(ConfigError::new(name, format!("{v} is not a finite number >= 0")));
            }
        }
        Ok(())
    }

    /// `spatial_layers` is a strictly increasing list of layers `1..=L` that ends at the output
    /// layer `L` (the split starts from the heads). The message names `--spatial-layers` and the
    /// list (a checkpoint's error adds the file and its `model` field).
    fn validate_spatial_layers(&self) -> Result<(), ConfigError> {
        let last = self.num_layers();
        let list = layer_list(&self.spatial_layers);
        let err = |problem: String| ConfigError::new("spatial-layers", problem);
        if self.spatial_layers.is_empty() {
            return Err(err(format!(
                "the list is empty: give at least the output layer {last} (a network without spatial \
                 costs is --regular)"
            )));
        }
        if let Some(&l) = self.spatial_layers.iter().find(|&&l| l == 0 || l > last) {
            return Err(err(format!(
                "{list}: layer {l} is not one of the network's layers 1..={last} (layer 0 is the input)"
            )));
        }
        if let Some(w) = self.spatial_layers.windows(2).find(|w| w[0] >= w[1]) {
            return Err(err(format!(
                "{list}: not strictly increasing ({} comes after {})",
                w[1], w[0]
            )));
        }
        if self.spatial_layers.last() != Some(&last) {
            return Err(err(format!(
                "{list}: the list must end at the output layer {last} (the split starts from the heads)"
            )));
        }
        Ok(())
    }
}

/// The optimiser and the run: everything about how the model is trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub mode: InputMode,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            mode: InputMode::Concat,
            epochs: 50,
            batch_size: 256,
            lr: 0.005,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            seed: 1,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::new(
                "batch-size",
                "0 is not a batch size (it must be at least 1)",
            ));
        }
        if self.batch_size > MAX_BATCH_SIZE {
            return Err(ConfigError::new(
                "batch-size",
                format!(
                    "{} is more than the {MAX_BATCH_SIZE} this program accepts",
                    self.batch_size
                ),
            ));
        }
        if self.epochs == 0 {
            return Err(ConfigError::new(
                "epochs",
                "0 epochs trains nothing (it must be at least 1)",
            ));
        }
        if self.epochs > MAX_EPOCHS {
            return Err(ConfigError::new(
                "epochs",
                format!(
                    "{} is more than the {MAX_EPOCHS} this program accepts",
                    self.epochs
                ),
            ));
        }
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return Err(ConfigError::new(
                "lr",
                format!("{} is not a learning rate (it must be finite and > 0)", self.lr),
            ));
        }
        // Adam's constants have no option: only a checkpoint's configuration sets them.
        for (name, b) in [("train.beta1", self.beta1), ("train.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(ConfigError::field(name, format!("{b} is not in [0, 1)")));
            }
        }
        if !self.eps.is_finite() || self.eps <= 0.0 {
            return Err(ConfigError::field(
                "train.eps",
                format!("{} must be finite and > 0", self.eps),
            ));
        }
        Ok(())
    }
}

/// A bad configuration value: which option (or, for a value no option sets, which field of a
/// checkpoint's configuration), and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid {option}: {problem}")]
pub struct ConfigError {
    /// What the user can change: `--hidden`, or `checkpoint field train.beta2`.
    pub option: String,
    pub problem: String,
}

impl ConfigError {
    /// A bad value of the option `--{option}` (`option` without the dashes).
    pub fn new(option: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            option: format!("--{option}"),
            problem: problem.into(),
        }
    }

    /// A bad value of a configuration field that no option sets (`field` as `model.heads`): only a
    /// checkpoint's metadata can hold it.
    pub fn field(field: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            option: format!("checkpoint field {field}"),
            problem: problem.into(),
        }
    }

    fn with(self, problem: String) -> Self {
        ConfigError { problem, ..self }
    }
}

/// Pixels of one 28x28 image: the input width the defaults are built for.
pub const IMAGE_PIXELS: usize = 28 * 28;

#[cfg(test)]
mod tests {
    use super::*;

    fn spatial_error(layers: Vec<usize>) -> String {
        let o = Overrides {
            spatial_layers: Some(layers),
            ..Overrides::default()
        };
        o.configs().unwrap_err().to_string()
    }

    #[test]
    fn spatial_layers_and_activation_from_the_options() {
        let (m, _) = Overrides::default().configs().unwrap();
        assert_eq!(
            (m.spatial_layers, m.activation),
            (vec![3, 4, 5], Activation::Sigmoid)
        );
        let o = Overrides {
            spatial_layers: Some(vec![1, 5]),
            activation: Some(Activation::Tanh),
            regular: true,
            ..Overrides::default()
        };
        let (m, _) = o.configs().unwrap();
        assert_eq!(
            (&m.spatial_layers[..], m.activation),
            (&[1, 5][..], Activation::Tanh)
        );
        assert!(!m.is_spatial(), "--regular keeps meaning no spatial cost");
        // With --hidden alone: the third hidden layer on, clipped to the depth.
        let o = Overrides {
            hidden: Some(vec![8, 8]),
            ..Overrides::default()
        };
        assert_eq!(o.configs().unwrap().0.spatial_layers, vec![3]);
    }

    #[test]
    fn bad_spatial_layers_name_the_option_and_the_list() {
        assert_eq!(
            spatial_error(vec![]),
            "invalid --spatial-layers: the list is empty: give at least the output layer 5 \
             (a network without spatial costs is --regular)"
        );
        assert_eq!(
            spatial_error(vec![2, 4]),
            "invalid --spatial-layers: 2,4: the list must end at the output layer 5 (the split \
             starts from the heads)"
        );
        assert!(spatial_error(vec![5, 5]).contains("5,5: not strictly increasing"));
        assert!(spatial_error(vec![0, 5]).contains("0,5: layer 0 is not one of"));
    }

    #[test]
    fn fields_missing_from_older_files_read_as_the_paper() {
        let mut json = serde_json::to_value(ModelConfig::defaults(784)).unwrap();
        let fields = json.as_object_mut().unwrap();
        assert_eq!(fields.remove("activation"), Some("sigmoid".into()));
        fields.remove("spatial_layers");
        let m: ModelConfig = serde_json::from_value(json).unwrap();
        assert_eq!(m, ModelConfig::defaults(784));
    }
}
