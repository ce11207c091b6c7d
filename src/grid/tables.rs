//! `table.md` of `reproduce`: the reproduced Table 1 beside the paper's, per-task accuracies, split
//! statistics and every run; and the number formatting the grid's tables share.

use super::{RunRecord, RunSpec, ALL_MODES};
use crate::config::InputMode;
use crate::split;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The paper's Table 1: `(full, full std, split, split std, drop, drop std)` per mode, regular then
/// spatial.
pub fn paper_table(mode: InputMode, spatial: bool) -> [f64; 6] {
    match (mode, spatial) {
        (InputMode::Concat, false) => [0.92, 0.04, 0.80, 0.13, 0.11, 0.15],
        (InputMode::Concat, true) => [0.92, 0.04, 0.92, 0.04, 0.00, 0.00],
        (InputMode::Mixed, false) => [0.88, 0.04, 0.70, 0.17, 0.19, 0.20],
        (InputMode::Mixed, true) => [0.89, 0.04, 0.89, 0.03, 0.00, 0.00],
        (InputMode::Sequential, false) => [0.92, 0.05, 0.33, 0.20, 0.60, 0.20],
        (InputMode::Sequential, true) => [0.92, 0.05, 0.84, 0.08, 0.07, 0.07],
    }
}

/// Mean and sample standard deviation (`n - 1`; `None` for fewer than two values).
pub fn mean_std(v: &[f64]) -> (f64, Option<f64>) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    let std = (v.len() > 1).then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, std)
}

/// Mean and sample standard deviation of a cell's runs, as `sweep.json` stores them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    /// `None` for a single run.
    pub std: Option<f64>,
    /// Runs the values come from.
    pub runs: usize,
}

impl MeanStd {
    /// `None` for no values.
    pub fn of(v: &[f64]) -> Option<MeanStd> {
        (!v.is_empty()).then(|| {
            let (mean, std) = mean_std(v);
            MeanStd {
                mean,
                std,
                runs: v.len(),
            }
        })
    }
}

/// `mean ± std` with three decimals, `-` for none.
pub fn fmt_stat(v: Option<MeanStd>) -> String {
    match v {
        None => "-".into(),
        Some(MeanStd {
            mean, std: Some(s), ..
        }) => format!("{mean:.3} ± {s:.3}"),
        Some(MeanStd { mean, .. }) => format!("{mean:.3}"),
    }
}

pub(crate) fn fmt_mean_std(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    match mean_std(v) {
        (m, Some(s)) => format!("{m:.3} ± {s:.3}"),
        (m, None) => format!("{m:.3}"),
    }
}

/// An option's value as the command line spells it (`xavier`, `paper`, `l1`).
pub fn lower(v: impl std::fmt::Debug) -> String {
    format!("{v:?}").to_lowercase()
}

pub fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// `table.md`: the reproduced Table 1, the paper's beside it, per-task accuracies, split statistics
/// and every run.
pub fn table_markdown(records: &[RunRecord], specs: &[RunSpec]) -> String {
    let mut s = String::new();
    let modes: Vec<InputMode> = ALL_MODES
        .into_iter()
        .filter(|m| specs.iter().any(|r| r.train.mode == *m))
        .collect();
    let cols: Vec<(InputMode, bool)> = modes.iter().flat_map(|&m| [(m, false), (m, true)]).collect();
    let of = |m: InputMode, sp: bool| -> Vec<&RunRecord> {
        records
            .iter()
            .filter(|r| r.mode == m && r.spatial == sp)
            .collect()
    };
    let kind = |sp: bool| if sp { "spatial" } else { "regular" };
    let header = |s: &mut String| {
        s.push_str("| |");
        for &(m, sp) in &cols {
            let _ = write!(s, " {m} {} |", kind(sp));
        }
        s.push_str("\n| --- |");
        for _ in &cols {
            s.push_str(" --- |");
        }
        s.push('\n');
    };

    // The paper's numbers are for MNIST + Fashion-MNIST: beside other tasks they would mislead.
    let task_names = specs.first().map(|r| r.model.task_names()).unwrap_or_default();
    let paper_tasks = specs.is_empty() || task_names == crate::config::DEFAULT_TASKS;
    if paper_tasks {
        let _ = writeln!(s, "# Table 1, reproduced\n");
    } else {
        let shown: Vec<String> = task_names
            .iter()
            .map(|n| crate::config::display_name(n))
            .collect();
        let _ = writeln!(
            s,
            "# Table 1's grid on {} tasks: {}\n\nThe paper's numbers are for MNIST and Fashion-MNIST, so they are not shown beside these.\n",
            shown.len(),
            shown.join(", ")
        );
    }
    let spatial_spec = specs.iter().find(|r| r.model.is_spatial());
    let any = specs.first();
    let mut seeds: Vec<u64> = specs.iter().map(|r| r.train.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    if let Some(a) = any {
        let _ = writeln!(
            s,
            "Settings: {} epoch{}, seeds {:?}, sizes (input)-{}, batch {}, lr {}, init {}.",
            a.train.epochs,
            if a.train.epochs == 1 { "" } else { "s" },
            seeds,
            a.model.sizes[1..]
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            a.train.batch_size,
            a.train.lr,
            lower(a.model.init)
        );
    }
    if let Some(sp) = spatial_spec {
        let _ = writeln!(
            s,
            "Spatial runs: alpha {}, beta {}, transport norm {}, weight norm {}, spatial layers {:?}. \
             Regular runs: alpha = beta = 0.",
            sp.model.alpha,
            sp.model.beta,
            lower(sp.model.transport_norm),
            lower(sp.model.weight_norm),
            sp.model.spatial_layers
        );
    }
    let mut backends: Vec<&str> = records.iter().map(|r| r.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let total: f64 = records.iter().map(|r| r.train_seconds).sum();
    let _ = writeln!(
        s,
        "Backend: {}. Runs finished: {} of {}; training time summed over runs: {:.0} s.\n",
        if backends.is_empty() {
            "-".into()
        } else {
            backends.join(", ")
        },
        records.len(),
        specs.len(),
        total
    );
    let _ = writeln!(
        s,
        "Accuracy is the mean of the tasks' test accuracies; split: each task's subnetwork on its own task; \
         drop = full - split. Cells: mean ± sample standard deviation (n - 1) over seeds.\n"
    );
    header(&mut s);
    type Pick = fn(&RunRecord) -> f64;
    let rows: [(&str, Pick, usize); 3] = [
        ("full", |r| r.full_accuracy, 0),
        ("split", |r| r.split_accuracy, 2),
        ("drop", |r| r.drop, 4),
    ];
    for (name, pick, _) in rows {
        let _ = write!(s, "| {name} |");
        for &(m, sp) in &cols {
            let v: Vec<f64> = of(m, sp).iter().map(|r| pick(r)).collect();
            let _ = write!(s, " {} |", fmt_mean_std(&v));
        }
        s.push('\n');
    }
    let _ = write!(s, "| runs |");
    for &(m, sp) in &cols {
        let _ = write!(s, " {} |", of(m, sp).len());
    }
    s.push('\n');
    if paper_tasks {
        s.push_str("\n## Beside the paper (ours / paper)\n\n");
        header(&mut s);
        for (name, pick, k) in rows {
            let _ = write!(s, "| {name} |");
            for &(m, sp) in &cols {
                let v: Vec<f64> = of(m, sp).iter().map(|r| pick(r)).collect();
                let p = paper_table(m, sp);
                let ours = if v.is_empty() {
                    "-".into()
                } else {
                    format!("{:.2}", mean_std(&v).0)
                };
                let _ = write!(s, " {ours} / {:.2} |", p[k]);
            }
            s.push('\n');
        }
        s.push_str("\n## The paper's Table 1 (means ± std over 3 runs)\n\n");
        header(&mut s);
        for (name, _, k) in rows {
            let _ = write!(s, "| {name} |");
            for &(m, sp) in &cols {
                let p = paper_table(m, sp);
                let _ = write!(s, " {:.2} ± {:.2} |", p[k], p[k + 1]);
            }
            s.push('\n');
        }
    }

    modularity_section(&mut s, &cols, &of, &header);

    let tasks = records.first().map_or(2, |r| r.task_accuracy.len());
    let names = records.first().map_or_else(Vec::new, |r| r.task_names());
    s.push_str("\n## Per task (mean over seeds)\n\n");
    header(&mut s);
    for t in 0..tasks {
        for (what, split) in [("full", false), ("split", true)] {
            let _ = write!(s, "| {} {what} |", split::task_name(&names, t));
            for &(m, sp) in &cols {
                let v: Vec<f64> = of(m, sp)
                    .iter()
                    .filter_map(|r| {
                        if split {
                            r.task_split_accuracy.get(t)
                        } else {
                            r.task_accuracy.get(t)
                        }
                        .copied()
                    })
                    .collect();
                let _ = write!(s, " {} |", fmt_mean_std(&v));
            }
            s.push('\n');
        }
    }
    let _ = write!(s, "| all heads trained (acc > 0.5) |");
    for &(m, sp) in &cols {
        let rs = of(m, sp);
        let _ = write!(
            s,
            " {}/{} |",
            rs.iter().filter(|r| r.trained_all_heads).count(),
            rs.len()
        );
    }
    s.push('\n');

    let layers: Vec<usize> = records
        .first()
        .map_or(Vec::new(), |r| r.split_layers.iter().map(|l| l.layer).collect());
    if !layers.is_empty() {
        s.push_str(
            "\n## Split statistics (mean over seeds)\n\n\
             cross |w|: share of the |w| mass into the next layer joining neurons of different tasks. \
             segregation: mean same-task / mean cross-task distance of the layer's positions (< 1: grouped \
             by task); p < 0.05: runs whose label-permutation p-value is below 0.05.\n\n",
        );
        header(&mut s);
        for &l in &layers {
            let stat = |r: &RunRecord| r.split_layers.iter().find(|x| x.layer == l).cloned();
            let _ = write!(s, "| layer {l} neurons per task |");
            for &(m, sp) in &cols {
                let rs = of(m, sp);
                let counts: Vec<Vec<usize>> = rs
                    .iter()
                    .filter_map(|r| stat(r))
                    .map(|x| x.neurons_per_task)
                    .collect();
                let cell = if counts.is_empty() {
                    "-".into()
                } else {
                    (0..counts[0].len())
                        .map(|t| {
                            let v: Vec<f64> = counts.iter().map(|c| c[t] as f64).collect();
                            format!("{:.0}", mean_std(&v).0)
                        })
                        .collect::<Vec<_>>()
                        .join(" / ")
                };
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
            if layers.last() != Some(&l) {
                let _ = write!(s, "| layer {l} cross \\|w\\| |");
                for &(m, sp) in &cols {
                    let v: Vec<f64> = of(m, sp).iter().filter_map(|r| stat(r)?.cross_share).collect();
                    let _ = write!(s, " {} |", fmt_mean_std(&v));
                }
                s.push('\n');
            }
            let _ = write!(s, "| layer {l} segregation |");
            for &(m, sp) in &cols {
                let v: Vec<f64> = of(m, sp).iter().filter_map(|r| r.segregation(l)).collect();
                let _ = write!(s, " {} |", fmt_mean_std(&v));
            }
            s.push('\n');
            let _ = write!(s, "| layer {l} p < 0.05 |");
            for &(m, sp) in &cols {
                let rs = of(m, sp);
                let sig = rs
                    .iter()
                    .filter(|r| {
                        stat(r)
                            .and_then(|x| x.segregation)
                            .is_some_and(|g| g.p_value < 0.05)
                    })
                    .count();
                let _ = write!(s, " {sig}/{} |", rs.len());
            }
            s.push('\n');
        }
    }

    s.push_str("\n## Runs\n\n| run | full | split | drop |");
    for t in 0..tasks {
        let _ = write!(s, " {} full / split |", split::task_name(&names, t));
    }
    for l in &layers {
        let _ = write!(s, " seg. {l} |");
    }
    s.push_str(" Q (tasks) | Q (detected) | train s |\n| --- | --- | --- | --- |");
    for _ in 0..tasks + layers.len() + 3 {
        s.push_str(" --- |");
    }
    s.push('\n');
    for r in records {
        let _ = write!(
            s,
            "| {} | {:.4} | {:.4} | {:.4} |",
            r.run, r.full_accuracy, r.split_accuracy, r.drop
        );
        for t in 0..tasks {
            let _ = write!(
                s,
                " {} / {} |",
                fmt_opt(r.task_accuracy.get(t).copied(), 4),
                fmt_opt(r.task_split_accuracy.get(t).copied(), 4)
            );
        }
        for &l in &layers {
            let _ = write!(s, " {} |", fmt_opt(r.segregation(l), 3));
        }
        let _ = writeln!(
            s,
            " {} | {} | {:.0} |",
            fmt_opt(r.task_modularity(), 3),
            fmt_opt(r.detected_modularity(), 3),
            r.train_seconds
        );
    }
    s
}

/// The modularity measures of each run's split layers, beside the drop: mean ± std over seeds.
fn modularity_section<'r>(
    s: &mut String,
    cols: &[(InputMode, bool)],
    of: &dyn Fn(InputMode, bool) -> Vec<&'r RunRecord>,
    header: &dyn Fn(&mut String),
) {
    s.push_str(
        "\n## Modularity (mean ± std over seeds)\n\n\
         Measured on the |w| graph of the split layers (METHOD.md, \"Modularity measures\"). Q (tasks): Newman's Q \
         of the split's task partition; Q (detected): of the partition Louvain finds (seed 0), with its number of \
         communities; participation: P / (1 - 1/M) of the hidden split layers' neurons over the task groups \
         (0: all |w| within one task, 1: even spread), mean and fraction above 0.5; agreement: share of the \
         hidden split neurons whose ablation hurts some task that the split assigns to the task they hurt most.\n\n",
    );
    header(s);
    type Pick = fn(&RunRecord) -> Option<f64>;
    let rows: [(&str, Pick); 7] = [
        ("drop", |r| Some(r.drop)),
        ("Q (tasks)", |r| r.task_modularity()),
        ("Q (detected)", |r| r.detected_modularity()),
        ("communities", |r| r.communities()),
        ("participation", |r| r.participation().map(|p| p.0)),
        ("participation > 0.5", |r| r.participation().map(|p| p.1)),
        ("selectivity agreement", |r| r.selectivity_agreement()),
    ];
    for (name, pick) in rows {
        let _ = write!(s, "| {name} |");
        for &(m, sp) in cols {
            let v: Vec<f64> = of(m, sp).iter().filter_map(|r| pick(r)).collect();
            let _ = write!(s, " {} |", fmt_mean_std(&v));
        }
        s.push('\n');
    }
    let _ = write!(s, "| runs measured |");
    for &(m, sp) in cols {
        let rs = of(m, sp);
        let _ = write!(
            s,
            " {}/{} |",
            rs.iter().filter(|r| r.modularity.is_some()).count(),
            rs.len()
        );
    }
    s.push('\n');
}
