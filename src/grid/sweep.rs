//! The settings sweep: which cells it has, what each cell's runs come to, and `sweep.md`.

use super::tables::{fmt_opt, fmt_stat, lower, mean_std, MeanStd};
use super::{RunRecord, RunSpec, Setting};
use crate::config::{Init, InputMode, TransportNorm, WeightNorm};
use crate::split::{self, LayerStats};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One cell of the sweep: a setting and its runs over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepCell {
    pub mode: InputMode,
    pub spatial: bool,
    pub init: Init,
    /// `None` for regular cells (no transport cost).
    pub transport_norm: Option<TransportNorm>,
    pub weight_norm: Option<WeightNorm>,
    pub alpha: f32,
    pub beta: f32,
    /// Runs of this cell that finished.
    pub runs: usize,
    /// Runs in which every head's accuracy exceeds 0.5.
    pub trained_all_heads: usize,
    pub full_accuracy: Option<f64>,
    pub split_accuracy: Option<f64>,
    pub drop: Option<f64>,
    /// Mean drop over the runs that trained all heads.
    pub drop_trained: Option<f64>,
    /// Per split layer: means over the cell's runs.
    pub layers: Vec<CellLayer>,
    /// Modularity of the split layers over the cell's runs (see [`RunRecord`]'s accessors): `Q` of
    /// the task partition and of Louvain's, normalised participation, selectivity agreement.
    #[serde(default)]
    pub task_modularity: Option<MeanStd>,
    #[serde(default)]
    pub detected_modularity: Option<MeanStd>,
    #[serde(default)]
    pub participation: Option<MeanStd>,
    #[serde(default)]
    pub selectivity_agreement: Option<MeanStd>,
    /// Run directories of the cell.
    pub run_names: Vec<String>,
    /// Per task (in head order): full and split accuracy and drop, means over the cell's runs.
    /// Empty in files written before they were recorded.
    #[serde(default)]
    pub tasks: Vec<CellTask>,
}

/// One task's numbers in a sweep cell, means over the cell's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellTask {
    pub name: String,
    pub full: Option<f64>,
    pub split: Option<f64>,
    pub drop: Option<f64>,
}

/// One split layer's numbers in a sweep cell, averaged over the cell's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellLayer {
    pub layer: usize,
    /// Mean segregation score (runs where it is defined).
    pub segregation: Option<f64>,
    /// Runs whose segregation p-value is below 0.05.
    pub segregated_runs: usize,
    /// Mean cross-task share of the |w| mass into the next layer (`None` for the output layer).
    pub cross_share: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepResults {
    pub epochs: usize,
    pub seeds: Vec<u64>,
    pub cells: Vec<SweepCell>,
    pub runs: Vec<RunRecord>,
}

/// The values the sweep tries on each axis.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepAxes {
    pub modes: Vec<InputMode>,
    pub inits: Vec<Init>,
    pub transport_norms: Vec<TransportNorm>,
    pub weight_norms: Vec<WeightNorm>,
    /// Alphas tried with the paper's transport normalisation.
    pub paper_alphas: Vec<f32>,
    /// Alphas tried with the authors' code's normalisation.
    pub mean_alphas: Vec<f32>,
    pub betas: Vec<f32>,
    /// Include the regular baselines (one per mode and initialisation).
    pub regular: bool,
}

/// The sweep's cells (each a setting and a name stem) in grid order: per mode and init, the regular
/// baseline, then every transport norm x weight norm x alpha x beta.
pub fn sweep_settings(args: &SweepAxes) -> Result<Vec<(String, Setting)>> {
    for (name, empty) in [
        ("inits", args.inits.is_empty()),
        ("transport-norms", args.transport_norms.is_empty()),
        ("weight-norms", args.weight_norms.is_empty()),
        ("betas", args.betas.is_empty()),
    ] {
        if empty {
            bail!("--{name}: give at least one value");
        }
    }
    for (name, list) in [
        ("paper-alphas", &args.paper_alphas),
        ("mean-alphas", &args.mean_alphas),
        ("betas", &args.betas),
    ] {
        if let Some(v) = list.iter().find(|v| !v.is_finite() || **v < 0.0) {
            bail!("--{name}: {v} is not a finite number >= 0");
        }
    }
    let mut cells = Vec::new();
    for &mode in &args.modes {
        for &init in &args.inits {
            let base = Setting {
                mode,
                regular: true,
                init: Some(init),
                transport_norm: None,
                weight_norm: None,
                alpha: None,
                beta: None,
            };
            let init_name = lower(init);
            if args.regular {
                cells.push((format!("{mode}-{init_name}-regular"), base));
            }
            for &tn in &args.transport_norms {
                let alphas = match tn {
                    TransportNorm::Paper => &args.paper_alphas,
                    TransportNorm::Mean => &args.mean_alphas,
                };
                for &wn in &args.weight_norms {
                    for &alpha in alphas {
                        for &beta in &args.betas {
                            if alpha == 0.0 && beta == 0.0 {
                                continue;
                            }
                            let name =
                                format!("{mode}-{init_name}-{}-{}-a{alpha}-b{beta}", lower(tn), lower(wn));
                            cells.push((
                                name,
                                Setting {
                                    regular: false,
                                    transport_norm: Some(tn),
                                    weight_norm: Some(wn),
                                    alpha: Some(alpha),
                                    beta: Some(beta),
                                    ..base
                                },
                            ));
                        }
                    }
                }
            }
        }
    }
    let mut names: Vec<&String> = cells.iter().map(|c| &c.0).collect();
    names.sort();
    names.dedup();
    if names.len() != cells.len() {
        bail!("the sweep repeats a cell: give each value of --paper-alphas, --mean-alphas and --betas once");
    }
    Ok(cells)
}

/// Aggregates the runs of each cell.
pub fn sweep_cells(
    cells: &[(String, Vec<RunSpec>)],
    records: &[Option<RunRecord>],
    offsets: &[usize],
) -> Vec<SweepCell> {
    let mut out = Vec::new();
    for ((_, specs), &off) in cells.iter().zip(offsets) {
        let recs: Vec<&RunRecord> = records[off..off + specs.len()].iter().flatten().collect();
        let first = &specs[0];
        let mean = |v: Vec<f64>| (!v.is_empty()).then(|| mean_std(&v).0);
        let layers = split::split_layers(&first.model);
        let stat = |pick: &dyn Fn(&RunRecord) -> Option<f64>| {
            MeanStd::of(&recs.iter().filter_map(|r| pick(r)).collect::<Vec<_>>())
        };
        out.push(SweepCell {
            mode: first.train.mode,
            spatial: first.model.is_spatial(),
            init: first.model.init,
            transport_norm: first.model.is_spatial().then_some(first.model.transport_norm),
            weight_norm: first.model.is_spatial().then_some(first.model.weight_norm),
            alpha: first.model.alpha,
            beta: first.model.beta,
            runs: recs.len(),
            trained_all_heads: recs.iter().filter(|r| r.trained_all_heads).count(),
            full_accuracy: mean(recs.iter().map(|r| r.full_accuracy).collect()),
            split_accuracy: mean(recs.iter().map(|r| r.split_accuracy).collect()),
            drop: mean(recs.iter().map(|r| r.drop).collect()),
            drop_trained: mean(
                recs.iter()
                    .filter(|r| r.trained_all_heads)
                    .map(|r| r.drop)
                    .collect(),
            ),
            layers: layers
                .iter()
                .map(|&l| {
                    let stats: Vec<&LayerStats> = recs
                        .iter()
                        .filter_map(|r| r.split_layers.iter().find(|x| x.layer == l))
                        .collect();
                    CellLayer {
                        layer: l,
                        segregation: mean(
                            stats
                                .iter()
                                .filter_map(|x| x.segregation.as_ref().map(|g| g.score))
                                .collect(),
                        ),
                        segregated_runs: stats
                            .iter()
                            .filter(|x| x.segregation.as_ref().is_some_and(|g| g.p_value < 0.05))
                            .count(),
                        cross_share: mean(stats.iter().filter_map(|x| x.cross_share).collect()),
                    }
                })
                .collect(),
            task_modularity: stat(&|r| r.task_modularity()),
            detected_modularity: stat(&|r| r.detected_modularity()),
            participation: stat(&|r| r.participation().map(|p| p.0)),
            selectivity_agreement: stat(&|r| r.selectivity_agreement()),
            run_names: specs.iter().map(|s| s.name.clone()).collect(),
            tasks: first
                .model
                .task_names()
                .into_iter()
                .enumerate()
                .map(|(t, name)| {
                    let of = |v: &dyn Fn(&RunRecord) -> Option<f64>| {
                        mean(recs.iter().filter_map(|r| v(r)).collect())
                    };
                    CellTask {
                        name,
                        full: of(&|r| r.task_accuracy.get(t).copied()),
                        split: of(&|r| r.task_split_accuracy.get(t).copied()),
                        drop: of(&|r| r.task_drop.get(t).copied()),
                    }
                })
                .collect(),
        });
    }
    out
}

/// `sweep.md`: one row per cell.
pub fn sweep_markdown(cells: &[SweepCell], epochs: usize, seeds: &[u64]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Settings sweep\n");
    let _ = writeln!(
        s,
        "{epochs} epoch{}, seeds {seeds:?}. \"all heads\": runs in which every task's test accuracy exceeds 0.5 \
         (chance is 0.1). full / split / drop: means over the cell's runs; drop (trained): over the runs that \
         trained all heads. seg. l: mean segregation score of split layer l (same-task / cross-task distance; \
         < 1: grouped by task), with the number of runs whose permutation p-value is below 0.05. \
         Q tasks / Q det.: Newman's Q of the split layers' |w| graph for the task partition / Louvain's; part.: \
         normalised participation of the hidden split neurons; agree.: selectivity agreement (METHOD.md, \
         \"Modularity measures\"); mean ± std over the cell's runs.\n",
        if epochs == 1 { "" } else { "s" }
    );
    let layers: Vec<usize> = cells
        .first()
        .map_or(Vec::new(), |c| c.layers.iter().map(|x| x.layer).collect());
    s.push_str("| mode | init | transport | weight | alpha | beta | all heads | full | split | drop | drop (trained) |");
    for l in &layers {
        let _ = write!(s, " seg. {l} |");
    }
    s.push_str(" Q tasks | Q det. | part. | agree. |");
    s.push_str("\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for _ in 0..layers.len() + 4 {
        s.push_str(" --- |");
    }
    s.push('\n');
    // The six columns that name a cell, as both tables start their rows.
    let key = |c: &SweepCell| {
        let name = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            c.mode,
            lower(c.init),
            if c.spatial {
                name(c.transport_norm.map(lower))
            } else {
                "(regular)".into()
            },
            name(c.weight_norm.map(lower)),
            c.alpha,
            c.beta
        )
    };
    for c in cells {
        let _ = write!(
            s,
            "{} {}/{} | {} | {} | {} | {} |",
            key(c),
            c.trained_all_heads,
            c.runs,
            fmt_opt(c.full_accuracy, 3),
            fmt_opt(c.split_accuracy, 3),
            fmt_opt(c.drop, 3),
            fmt_opt(c.drop_trained, 3),
        );
        for x in &c.layers {
            let _ = write!(
                s,
                " {} ({}/{}) |",
                fmt_opt(x.segregation, 3),
                x.segregated_runs,
                c.runs
            );
        }
        for v in [
            c.task_modularity,
            c.detected_modularity,
            c.participation,
            c.selectivity_agreement,
        ] {
            let _ = write!(s, " {} |", fmt_stat(v));
        }
        s.push('\n');
    }
    // Per task: each task's full / split accuracy and drop (means over the cell's runs).
    let tasks: Vec<&CellTask> = cells.first().map_or(Vec::new(), |c| c.tasks.iter().collect());
    if !tasks.is_empty() {
        s.push_str("\n## Per task (full / split / drop, means over the cell's runs)\n\n");
        s.push_str("| mode | init | transport | weight | alpha | beta |");
        for t in &tasks {
            let _ = write!(s, " {} |", crate::config::display_name(&t.name));
        }
        s.push_str("\n| --- | --- | --- | --- | --- | --- |");
        for _ in &tasks {
            s.push_str(" --- |");
        }
        s.push('\n');
        for c in cells {
            s.push_str(&key(c));
            for t in &c.tasks {
                let _ = write!(
                    s,
                    " {} / {} / {} |",
                    fmt_opt(t.full, 3),
                    fmt_opt(t.split, 3),
                    fmt_opt(t.drop, 3)
                );
            }
            s.push('\n');
        }
    }
    s
}
