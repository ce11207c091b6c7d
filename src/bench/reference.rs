//! The reference file of the baseline's check: our initial parameters, one batch, and the CPU
//! backend's loss and gradients on it.

use crate::backend::Losses;
use crate::config::{ModelConfig, TrainConfig};
use crate::cpu::{self, Workspace};
use crate::data::batches::{epoch_order, Batch};
use crate::data::Datasets;
use crate::model::Params;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The batch of the check: batch 0 of epoch 0 of the run seeded `train.seed`.
pub fn reference_batch(data: &Datasets, train: &TrainConfig) -> Batch {
    let order = epoch_order(train.mode, data, train.seed, 0);
    let mut batch = Batch::with_capacity(train.batch_size, data.input_dim(train.mode));
    order.fill_batch(data, train.mode, 0, train.batch_size, &mut batch);
    batch
}

/// Writes the check file read by `pytorch_baseline.py --check`: `params` as `layer{l}.weight`
/// `(N_l, N_{l-1})`, `layer{l}.bias` `(N_l)`, `layer{l}.position` `(N_l, 2)`; `batch.inputs`
/// `(B, N_0)` f32 and `batch.labels` `(B, heads)` i32 (-1: no label); the CPU backend's gradient of
/// the total loss as `grad.` + the same names; metadata `model` (the configuration as JSON),
/// `loss_total`, `loss_task`, `transport` and `density` (JSON lists). Returns the losses.
pub fn write_reference(path: &Path, model: &ModelConfig, params: &Params, batch: &Batch) -> Result<Losses> {
    let b = batch.size;
    if batch.input_dim != model.sizes[0] || b == 0 {
        bail!(
            "the reference batch ({b} x {}) does not fit the model ({:?})",
            batch.input_dim,
            model.sizes
        );
    }
    let mut ws = Workspace::new(&model.sizes, b);
    let mut grads = vec![0.0; params.data.len()];
    let losses = cpu::forward_backward(
        model,
        params,
        &mut ws,
        &mut grads,
        &batch.inputs[..b * batch.input_dim],
        &batch.labels[..b * model.heads],
        b,
    );
    let layout = &params.layout;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for (prefix, data) in [("", &params.data), ("grad.", &grads)] {
        for l in 1..model.sizes.len() {
            let (c, oc) = (model.sizes[l - 1], model.sizes[l]);
            let w = &data[layout.weights[l - 1].clone()];
            let bias = &data[layout.biases[l - 1].clone()];
            tensors.push((
                format!("{prefix}layer{l}.weight"),
                Dtype::F32,
                vec![oc, c],
                f32_bytes(w),
            ));
            tensors.push((
                format!("{prefix}layer{l}.bias"),
                Dtype::F32,
                vec![oc],
                f32_bytes(bias),
            ));
        }
        for (l, r) in layout.positions.iter().enumerate() {
            let p = &data[r.clone()];
            tensors.push((
                format!("{prefix}layer{l}.position"),
                Dtype::F32,
                vec![model.sizes[l], 2],
                f32_bytes(p),
            ));
        }
    }
    tensors.push((
        "batch.inputs".into(),
        Dtype::F32,
        vec![b, batch.input_dim],
        f32_bytes(&batch.inputs[..b * batch.input_dim]),
    ));
    let labels: Vec<u8> = batch.labels[..b * model.heads]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    tensors.push(("batch.labels".into(), Dtype::I32, vec![b, model.heads], labels));
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).expect("shape matches data"),
            )
        })
        .collect();
    let meta: HashMap<String, String> = [
        ("format".to_string(), "spatial-gpu-reference".to_string()),
        ("model".to_string(), serde_json::to_string(model)?),
        ("loss_total".to_string(), format!("{:.17e}", losses.total)),
        ("loss_task".to_string(), format!("{:.17e}", losses.task)),
        ("transport".to_string(), serde_json::to_string(&losses.transport)?),
        ("density".to_string(), serde_json::to_string(&losses.density)?),
    ]
    .into_iter()
    .collect();
    let bytes = safetensors::serialize(views, Some(meta)).context("serialising the reference tensors")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(losses)
}
