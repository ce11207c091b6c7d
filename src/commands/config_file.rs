//! `train --config FILE`: options from a TOML file whose keys are `train`'s long option names
//! (`alpha = 0.01`, `mode = "concat"`, `hidden = [128, 128]`, `regular = true`), or from a run's
//! `summary.json`, which runs that run again. `reproduce --config` and `sweep --config` read TOML
//! files the same way, with their own options as keys.
//!
//! Each value is turned into the words of its option (`--alpha 0.01`) and parsed by clap with
//! `train`'s own parser, so a file's values pass exactly the checks of the command line (and then
//! [`crate::config::Overrides::configs`]'s). Options given on the command line win: a file's key is
//! dropped when its option, or one that conflicts with it (`--regular` for `alpha`), was given.
//! Every fault names the file, the key and the value.
//!
//! To let config files set a new option of `train`, add one line to [`FILE_KEYS`] (or, if a file
//! must not set it, to [`NOT_IN_FILE`]); for `reproduce` and `sweep`, to [`GRID_KEYS`] (the options
//! both share), [`REPRODUCE_KEYS`] or [`SWEEP_KEYS`]. `tests/provenance.rs` fails for an option of
//! any of the three in no list.

use super::reproduce::ReproduceArgs;
use super::sweep::SweepArgs;
use super::train::TrainArgs;
use crate::config::{ConfigError, ModelConfig, Overrides, TrainConfig};
use anyhow::{anyhow, bail, Result};
use clap::parser::ValueSource;
use clap::{ArgAction, Args, FromArgMatches};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The options of `train` a config file may set: the key (the long option name) and an example
/// value in TOML, which is also the type the key takes (a string, an integer, a number, `true` or
/// `false` for a switch, or an array of one of these for an option that takes a list).
pub const FILE_KEYS: &[(&str, &str)] = &[
    ("data-dir", r#""/data/spatial-gpu""#),
    ("tasks", r#"["mnist", "fashion-mnist", "animal-mnist"]"#),
    ("task", r#"["shapes=/data/shapes"]"#),
    ("mode", r#""concat""#),
    ("init", r#""xavier""#),
    ("transport-norm", r#""paper""#),
    ("weight-norm", r#""l1""#),
    ("alpha", "0.01"),
    ("beta", "3.0"),
    ("regular", "true"),
    ("hidden", "[128, 128, 128, 256]"),
    ("activation", r#""relu""#),
    ("spatial-layers", "[3, 4, 5]"),
    ("epochs", "50"),
    ("seed", "1"),
    ("seeds", "[1, 2, 3]"),
    ("batch-size", "256"),
    ("lr", "0.005"),
    ("backend", r#""cpu""#),
    ("adapter", r#""NVIDIA""#),
    ("steps-per-submit", "16"),
    ("threads", "8"),
    ("out", r#""runs/my-run""#),
    ("checkpoint-every", "100"),
    ("no-progress", "true"),
    ("history-every", "10"),
    ("history-weights", "true"),
    ("tensorboard", r#""runs/tensorboard""#),
    ("no-plot", "true"),
];

/// The options of `train` a config file cannot set, and why.
pub const NOT_IN_FILE: &[(&str, &str)] = &[
    ("config", "a config file does not name another one"),
    (
        "resume",
        "a run is resumed from the command line (`train --resume DIR --config FILE` checks the file's options against the run's)",
    ),
];

/// The options `reproduce` and `sweep` share ([`super::grid::GridArgs`]) a config file may set.
pub const GRID_KEYS: &[(&str, &str)] = &[
    ("data-dir", r#""/data/spatial-gpu""#),
    ("tasks", r#"["mnist", "fashion-mnist", "animal-mnist"]"#),
    ("task", r#"["shapes=/data/shapes"]"#),
    ("seeds", "[1, 2, 3]"),
    ("epochs", "20"),
    ("modes", r#"["concat", "mixed"]"#),
    ("backend", r#""cpu""#),
    ("adapter", r#""NVIDIA""#),
    ("steps-per-submit", "16"),
    ("no-population", "true"),
    ("jobs", "2"),
    ("threads", "8"),
    ("hidden", "[128, 128, 128, 256]"),
    ("activation", r#""tanh""#),
    ("spatial-layers", "[4, 5]"),
    ("batch-size", "128"),
    ("lr", "0.005"),
    ("permutations", "100"),
    ("checkpoint-every", "100"),
    ("tabulate-only", "true"),
    ("shard", r#""2/3""#),
    ("collect", r#"["runs/shard-1", "runs/shard-2"]"#),
    ("no-figures", "true"),
];

/// The options of `reproduce` alone a config file may set.
pub const REPRODUCE_KEYS: &[(&str, &str)] = &[
    ("out", r#""runs/reproduce-2""#),
    ("init", r#""torch""#),
    ("transport-norm", r#""mean""#),
    ("weight-norm", r#""l2""#),
    ("alpha", "0.05"),
    ("beta", "2.0"),
];

/// The options of `sweep` alone a config file may set.
pub const SWEEP_KEYS: &[(&str, &str)] = &[
    ("out", r#""runs/sweep-2""#),
    ("inits", r#"["xavier"]"#),
    ("transport-norms", r#"["paper"]"#),
    ("weight-norms", r#"["l1"]"#),
    ("paper-alphas", "[0.01, 0.1]"),
    ("mean-alphas", "[0.5]"),
    ("betas", "[1.0, 3.0]"),
    ("no-regular", "true"),
];

/// The options of `reproduce` and `sweep` a config file cannot set, and why.
pub const GRID_NOT_IN_FILE: &[(&str, &str)] = &[("config", "a config file does not name another one")];

/// A subcommand whose options a config file can set.
pub trait Configurable: Args + FromArgMatches + Clone {
    /// The subcommand's name.
    const NAME: &'static str;
    /// The keys a file may set, with an example value (see [`FILE_KEYS`]), in one or more lists.
    const KEYS: &'static [&'static [(&'static str, &'static str)]];
    /// The options a file cannot set, and why.
    const NOT_IN_FILE: &'static [(&'static str, &'static str)];
    /// Whether the file may be a run's summary.json (to run it again).
    const RERUNS: bool;
    /// `--config`.
    fn config(&self) -> Option<&Path>;
    /// The command line, program first (empty: this process's).
    fn argv(&self) -> &[OsString];
    fn set_argv(&mut self, argv: Vec<OsString>);

    /// The subcommand's clap command, on its own.
    fn command() -> clap::Command {
        Self::augment_args(clap::Command::new(Self::NAME))
    }
}

type KeyList = &'static [&'static [(&'static str, &'static str)]];

impl Configurable for TrainArgs {
    const NAME: &'static str = "train";
    const KEYS: KeyList = &[FILE_KEYS];
    const NOT_IN_FILE: &'static [(&'static str, &'static str)] = NOT_IN_FILE;
    const RERUNS: bool = true;
    fn config(&self) -> Option<&Path> {
        self.config.as_deref()
    }
    fn argv(&self) -> &[OsString] {
        &self.argv
    }
    fn set_argv(&mut self, argv: Vec<OsString>) {
        self.argv = argv;
    }
}

/// `reproduce` and `sweep`: their shared options hold `--config` and the command line.
macro_rules! grid_configurable {
    ($args:ty, $name:literal, $keys:expr) => {
        impl Configurable for $args {
            const NAME: &'static str = $name;
            const KEYS: KeyList = &[GRID_KEYS, $keys];
            const NOT_IN_FILE: &'static [(&'static str, &'static str)] = GRID_NOT_IN_FILE;
            const RERUNS: bool = false;
            fn config(&self) -> Option<&Path> {
                self.grid.config.as_deref()
            }
            fn argv(&self) -> &[OsString] {
                &self.grid.argv
            }
            fn set_argv(&mut self, argv: Vec<OsString>) {
                self.grid.argv = argv;
            }
        }
    };
}
grid_configurable!(ReproduceArgs, "reproduce", REPRODUCE_KEYS);
grid_configurable!(SweepArgs, "sweep", SWEEP_KEYS);

/// `train`'s clap command, on its own.
pub fn train_command() -> clap::Command {
    TrainArgs::command()
}

/// Every key of `T`'s config files, with its example.
pub fn keys_of<T: Configurable>() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    T::KEYS.iter().flat_map(|k| k.iter())
}

/// What `--config` contributed to the options.
#[derive(Debug, Default)]
pub struct Applied {
    /// The file.
    pub path: PathBuf,
    /// The keys whose values were used (not overridden on the command line), with the value as the
    /// file gives it.
    pub used: Vec<(String, String)>,
    /// Set when the file is a run's summary.json: the run to run again.
    pub rerun: Option<Rerun>,
}

/// The run a summary.json describes.
#[derive(Debug)]
pub struct Rerun {
    /// The run's directory (the summary's).
    pub dir: PathBuf,
    /// The data files and digests the run recorded, if it did.
    pub data: Option<Vec<(String, String)>>,
}

impl Applied {
    /// `e` about an option: naming the file, the key and its value when the value came from it.
    pub fn explain(&self, e: ConfigError) -> anyhow::Error {
        let key = e.option.trim_start_matches("--");
        match self.used.iter().find(|(k, _)| k == key) {
            Some((k, v)) => anyhow!("{}: key {k} = {v}: {e}", self.path.display()),
            None => e.into(),
        }
    }

    /// An error of a command that took options from the file: a [`ConfigError`], or a message
    /// that starts with an option (`--betas: ...`, `invalid --lr: ...`), about an option whose value
    /// came from the file, gets the file, the key and the value in front.
    pub fn explain_any(&self, e: anyhow::Error) -> anyhow::Error {
        let e = match e.downcast::<ConfigError>() {
            Ok(c) => return self.explain(c),
            Err(e) => e,
        };
        let text = e.to_string();
        let about = |k: &str| {
            let rest = text.strip_prefix("invalid ").unwrap_or(&text);
            rest.strip_prefix(&format!("--{k}"))
                .is_some_and(|r| r.starts_with([':', ' ', '=']))
        };
        match self.used.iter().find(|(k, _)| about(k)) {
            Some((k, v)) => anyhow!("{}: key {k} = {v}: {e:#}", self.path.display()),
            None => e,
        }
    }
}

/// A value of a config file, from TOML or JSON.
#[derive(Clone, Debug)]
enum Value {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    /// A kind no option takes (a table, a date), by name.
    Other(&'static str),
}

impl Value {
    fn from_toml(v: &toml::Value) -> Value {
        match v {
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Integer(i) => Value::Int(i128::from(*i)),
            toml::Value::Float(f) => Value::Float(*f),
            toml::Value::String(s) => Value::Str(s.clone()),
            toml::Value::Array(a) => Value::List(a.iter().map(Value::from_toml).collect()),
            toml::Value::Table(_) => Value::Other("a table"),
            toml::Value::Datetime(_) => Value::Other("a date"),
        }
    }

    /// `None` for JSON's null (an option not set).
    fn from_json(v: &serde_json::Value) -> Option<Value> {
        Some(match v {
            serde_json::Value::Null => return None,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Value::Int(i128::from(i)),
                (_, Some(u)) => Value::Int(i128::from(u)),
                _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().filter_map(Value::from_json).collect()),
            serde_json::Value::Object(_) => Value::Other("an object"),
        })
    }

    /// The type of this value in words, as `a number` (or `numbers`, `plural`).
    fn kind(&self, plural: bool) -> String {
        let (one, many) = match self {
            Value::Bool(_) => ("a boolean", "booleans"),
            Value::Int(_) => ("an integer", "integers"),
            Value::Float(_) => ("a number", "numbers"),
            Value::Str(_) => ("a string", "strings"),
            Value::List(items) => {
                return match items.first() {
                    Some(first) => format!("a list of {}", first.kind(true)),
                    None => "an empty list".to_string(),
                }
            }
            Value::Other(k) => (*k, *k),
        };
        if plural { many } else { one }.to_string()
    }

    /// Whether this value has the type of `example`'s (an integer is a number too; one element is
    /// a list of one).
    fn fits(&self, example: &Value) -> bool {
        match (self, example) {
            (Value::Bool(_), Value::Bool(_))
            | (Value::Int(_), Value::Int(_))
            | (Value::Int(_) | Value::Float(_), Value::Float(_))
            | (Value::Str(_), Value::Str(_)) => true,
            (Value::List(items), Value::List(ex)) => {
                ex.first().is_none_or(|e| items.iter().all(|i| i.fits(e)))
            }
            (v, Value::List(ex)) => ex.first().is_some_and(|e| v.fits(e)),
            _ => false,
        }
    }

    /// As written in a TOML file, for messages.
    fn shown(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::List(items) => format!(
                "[{}]",
                items.iter().map(Value::shown).collect::<Vec<_>>().join(", ")
            ),
            Value::Other(k) => format!("({k})"),
        }
    }

    /// A scalar as one command-line value.
    fn word(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.shown(),
        }
    }
}

/// The example of a key of `T`'s files, parsed.
fn example<T: Configurable>(key: &str) -> Option<(&'static str, Value)> {
    let &(_, text) = keys_of::<T>().find(|(k, _)| *k == key)?;
    let table: toml::Table = format!("x = {text}")
        .parse()
        .expect("the examples are valid TOML");
    Some((text, Value::from_toml(&table["x"])))
}

/// The file's values, by key (long option name), in the file's order.
enum Loaded {
    Toml(Vec<(String, Value)>),
    Summary(Vec<(String, Value)>, Rerun),
}

/// Reads a config file: a summary.json (by its extension, or a first character `{`) or TOML.
fn load<T: Configurable>(path: &Path) -> Result<Loaded> {
    let text =
        std::fs::read(path).map_err(|e| anyhow!("--config {}: cannot read it: {e}", path.display()))?;
    let text = String::from_utf8(text)
        .map_err(|_| anyhow!("--config {}: not a text file (not UTF-8)", path.display()))?;
    let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{');
    if json && !T::RERUNS {
        bail!(
            "--config {}: a run's summary.json reruns that one run, with `spatial-gpu train --config`; `{}` reads TOML files",
            path.display(),
            T::NAME
        );
    }
    if json {
        return load_summary(path, &text);
    }
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow!("--config {}: not a valid TOML file: {e}", path.display()))?;
    let mut values = Vec::new();
    for (key, v) in &table {
        // `batch_size` is taken for `batch-size`.
        let name = key.replace('_', "-");
        if values.iter().any(|(k, _)| *k == name) {
            bail!(
                "{}: key {key} is given twice (as {name} and as {key})",
                path.display()
            );
        }
        values.push((name, Value::from_toml(v)));
    }
    Ok(Loaded::Toml(values))
}

/// A run's summary.json: the options that give its configuration, and the run.
fn load_summary(path: &Path, text: &str) -> Result<Loaded> {
    let not_summary = |why: String| {
        anyhow!(
            "--config {}: not a summary.json written by `spatial-gpu train` ({why}); a config file is TOML (see README, \"Config files\")",
            path.display()
        )
    };
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| not_summary(format!("not valid JSON: {e}")))?;
    let field = |name: &str| {
        json.get(name)
            .cloned()
            .ok_or_else(|| not_summary(format!("no field `{name}`")))
    };
    let mut model: ModelConfig =
        serde_json::from_value(field("model")?).map_err(|e| not_summary(format!("field `model`: {e}")))?;
    // A summary written before tasks could be chosen lists none: its tasks are the implied ones.
    model.fill_tasks();
    let train: TrainConfig =
        serde_json::from_value(field("train")?).map_err(|e| not_summary(format!("field `train`: {e}")))?;
    let overrides = Overrides::from_configs(&model, &train);
    // Options cannot express everything a configuration holds (Adam's constants; fields a newer
    // build added): such a run is refused rather than rerun with another configuration. The
    // configuration is rebuilt for the run's tasks; the shape of their images is not recorded, but
    // only the input width matters here, so each task gets a width that sums (concat) or equals
    // (mixed, sequential) the run's.
    let shape = summary_shape(&model, &train);
    let rebuilt = overrides
        .configs_for(&shape)
        .map_err(|e| anyhow!("{}: the run's configuration is not valid: {e}", path.display()))?;
    let differences = config_differences(&(&model, &train), &(&rebuilt.0, &rebuilt.1));
    if !differences.is_empty() {
        bail!(
            "{}: the run's configuration cannot be given with `train`'s options ({}), so it cannot be rerun from its summary",
            path.display(),
            differences.join(", ")
        );
    }
    let serde_json::Value::Object(options) = serde_json::to_value(&overrides).expect("options serialise")
    else {
        unreachable!("a struct serialises to an object")
    };
    let mut values: Vec<(String, Value)> = options
        .iter()
        .filter_map(|(k, v)| Value::from_json(v).map(|v| (k.clone(), v)))
        .collect();
    // The run's tasks, by name (a `--task NAME=DIR` task needs its `--task` again on the command line).
    values.push((
        "tasks".into(),
        Value::List(model.task_names().into_iter().map(Value::Str).collect()),
    ));
    let data = json
        .pointer("/provenance/data")
        .and_then(|d| d.as_object())
        .map(|d| {
            d.iter()
                .map(|(file, hex)| (file.clone(), hex.as_str().unwrap_or_default().to_string()))
                .collect()
        });
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    Ok(Loaded::Summary(values, Rerun { dir, data }))
}

/// A data shape with the run's tasks and heads whose input width in the run's mode is the run's
/// (see [`load_summary`]).
fn summary_shape(model: &ModelConfig, train: &TrainConfig) -> crate::config::DataShape {
    use crate::config::{DataShape, InputMode, TaskShape};
    let heads: Vec<_> = model
        .task_names()
        .iter()
        .zip(model.head_sizes())
        .map(|(name, n)| crate::config::TaskHead::new(name, n))
        .collect();
    let width = model.sizes[0];
    let m = heads.len().max(1);
    let tasks = heads
        .into_iter()
        .enumerate()
        .map(|(t, head)| {
            let cols = match train.mode {
                // Any split of the width will do: the first task takes what the others leave.
                InputMode::Concat if t == 0 => width.saturating_sub(m - 1).max(1),
                InputMode::Concat => 1,
                InputMode::Mixed | InputMode::Sequential => width,
            };
            TaskShape { head, rows: 1, cols }
        })
        .collect();
    DataShape { tasks }
}

/// The fields (`model.alpha`) where two configurations differ, with both values.
fn config_differences(
    run: &(&ModelConfig, &TrainConfig),
    rebuilt: &(&ModelConfig, &TrainConfig),
) -> Vec<String> {
    let as_json =
        |c: &(&ModelConfig, &TrainConfig)| serde_json::json!({"model": as_text(c.0), "train": as_text(c.1)});
    let (a, b) = (as_json(run), as_json(rebuilt));
    let mut out = Vec::new();
    for part in ["model", "train"] {
        let (Some(fa), Some(fb)) = (a[part].as_object(), b[part].as_object()) else {
            continue;
        };
        for (k, va) in fa {
            let vb = fb.get(k).unwrap_or(&serde_json::Value::Null);
            if va != vb {
                out.push(format!("{part}.{k} is {va} in the run, {vb} from the options"));
            }
        }
    }
    out
}

/// `v` as JSON, through text, so that an `f32` reads as written (0.99, not 0.9900000095367432).
fn as_text<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let text = serde_json::to_string(v).expect("configurations serialise");
    serde_json::from_str(&text).expect("JSON reads back")
}

/// The command-line words of `key = value`, checked: a known key, a value of its type, and one
/// `train`'s parser accepts.
fn words<T: Configurable>(file: &Path, cmd: &clap::Command, key: &str, value: &Value) -> Result<Vec<String>> {
    let at = || format!("{}: key {key} = {}", file.display(), value.shown());
    if let Some((_, why)) = T::NOT_IN_FILE.iter().find(|(k, _)| *k == key) {
        bail!(
            "{}: key {key} cannot be set in a config file: {why}",
            file.display()
        );
    }
    let Some((example_text, example)) = example::<T>(key) else {
        let keys: Vec<&str> = keys_of::<T>().map(|(k, _)| *k).collect();
        let near = keys
            .iter()
            .map(|k| (edit_distance(k, key), k))
            .min()
            .filter(|(d, _)| *d <= 2)
            .map_or(String::new(), |(_, k)| format!("did you mean {k}? "));
        bail!(
            "{}: unknown key {key} ({near}the keys are `{}`'s long option names: {})",
            file.display(),
            T::NAME,
            keys.join(", ")
        );
    };
    if !value.fits(&example) {
        let takes = match &example {
            Value::Bool(_) => "true or false".to_string(),
            Value::List(items) => format!("a list of {} (or one)", items[0].kind(true)),
            other => other.kind(false),
        };
        bail!(
            "{}: wrong type: {key} takes {takes}, not {} (e.g. {key} = {example_text})",
            at(),
            value.kind(false)
        );
    }
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(key))
        .ok_or_else(|| {
            anyhow!(
                "{}: key {key} names no option of this build's `{}`",
                file.display(),
                T::NAME
            )
        })?;
    // `--alpha=-1`, one word: a value starting with `-` must not read as an option.
    let with = |v: String| format!("--{key}={v}");
    let mut out = Vec::new();
    match (value, arg.get_action()) {
        (Value::Bool(true), ArgAction::SetTrue) => out.push(format!("--{key}")),
        (Value::Bool(false), ArgAction::SetTrue) => {}
        (Value::List(items), ArgAction::Append) => out.extend(items.iter().map(|i| with(i.word()))),
        (Value::List(items), _) => {
            let Some(d) = arg.get_value_delimiter() else {
                bail!("{}: {key} takes one value, not a list", at());
            };
            let joined: Vec<String> = items.iter().map(Value::word).collect();
            out.push(with(joined.join(&d.to_string())));
        }
        (v, _) => out.push(with(v.word())),
    }
    // The value alone through the subcommand's parser: its error names the option and the value.
    let mut argv = vec![T::NAME.to_string()];
    argv.extend(out.iter().cloned());
    if let Err(e) = cmd.clone().try_get_matches_from(&argv) {
        bail!("{}: {}", at(), clap_message(&e));
    }
    Ok(out)
}

/// The Levenshtein distance between two keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A clap error on one line, without its `error: ` prefix, usage and hint to `--help`.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// The options `args` gives, with those of its `--config` file under the ones given on the
/// command line (`args.argv`, or this process's when empty), and what the file contributed.
pub fn apply<T: Configurable>(args: &T) -> Result<(T, Option<Applied>)> {
    let Some(path) = args.config() else {
        return Ok((args.clone(), None));
    };
    let path = &path.to_path_buf();
    let argv: Vec<OsString> = if args.argv().is_empty() {
        std::env::args_os().collect()
    } else {
        args.argv().to_vec()
    };
    let (values, rerun) = match load::<T>(path)? {
        Loaded::Toml(v) => (v, None),
        Loaded::Summary(v, r) => (v, Some(r)),
    };
    let cmd = T::command();
    let mut file_words = Vec::new();
    for (key, value) in &values {
        file_words.push((key.clone(), value.shown(), words::<T>(path, &cmd, key, value)?));
    }
    // The file on its own: keys that cannot go together (alpha and regular).
    let mut alone = vec![T::NAME.to_string()];
    alone.extend(file_words.iter().flat_map(|(_, _, w)| w.iter().cloned()));
    if let Err(e) = cmd.clone().try_get_matches_from(&alone) {
        bail!("{}: {}", path.display(), clap_message(&e));
    }
    // What the command line gave explicitly: everything after the subcommand's name.
    let rest: Vec<OsString> = match argv.iter().skip(1).position(|a| a == T::NAME) {
        Some(i) => argv[i + 2..].to_vec(),
        None => bail!("--config: cannot find `{}` in the command line {argv:?}", T::NAME),
    };
    let given_matches = cmd
        .clone()
        .try_get_matches_from(std::iter::once(OsString::from(T::NAME)).chain(rest.iter().cloned()))
        .map_err(|e| anyhow!("{}", clap_message(&e)))?;
    let given: BTreeSet<String> = cmd
        .get_arguments()
        .filter(|a| given_matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|a| a.get_id().to_string())
        .collect();
    let conflict = |a: &clap::Arg, b: &clap::Arg| {
        cmd.get_arg_conflicts_with(a)
            .iter()
            .any(|c| c.get_id() == b.get_id())
            || cmd
                .get_arg_conflicts_with(b)
                .iter()
                .any(|c| c.get_id() == a.get_id())
    };
    let mut merged: Vec<OsString> = vec![T::NAME.into()];
    let mut used = Vec::new();
    for (key, shown, w) in file_words {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .expect("words() found it");
        let overridden = cmd
            .get_arguments()
            .filter(|b| given.contains(b.get_id().as_str()))
            .any(|b| b.get_id() == arg.get_id() || conflict(arg, b));
        if !overridden {
            merged.extend(w.into_iter().map(OsString::from));
            used.push((key, shown));
        }
    }
    merged.extend(rest);
    let matches = cmd
        .try_get_matches_from(&merged)
        .map_err(|e| anyhow!("{}: {}", path.display(), clap_message(&e)))?;
    let mut out = T::from_arg_matches(&matches).map_err(|e| anyhow!("{}", clap_message(&e)))?;
    out.set_argv(argv);
    let applied = Applied {
        path: path.clone(),
        used,
        rerun,
    };
    Ok((out, Some(applied)))
}

/// Refuses a rerun that would write into the run it reruns, or that is combined with `--resume`.
pub fn check_rerun_out(applied: &Applied, out: &Path, resume: bool) -> Result<()> {
    let Some(rerun) = &applied.rerun else {
        return Ok(());
    };
    if resume {
        bail!(
            "--config {}: a summary.json reruns its run as a new run; it cannot be combined with --resume",
            applied.path.display()
        );
    }
    let canon = |p: &Path| p.canonicalize().ok();
    if out.exists() && canon(out).is_some() && canon(out) == canon(&rerun.dir) {
        bail!(
            "--config {}: the rerun would write into the run it reruns ({}); give a new directory with --out",
            applied.path.display(),
            out.display()
        );
    }
    Ok(())
}

/// Refuses data other than the one a rerun's run recorded, naming the file.
pub fn check_rerun_data(applied: &Applied, data: &crate::data::Datasets, data_dir: &Path) -> Result<()> {
    let Some(recorded) = applied.rerun.as_ref().and_then(|r| r.data.as_ref()) else {
        return Ok(());
    };
    let given = data.digests();
    // In the data's order (MNIST first), then the recorded files the data lacks.
    let mut recorded: Vec<&(String, String)> = recorded.iter().collect();
    recorded.sort_by_key(|(f, _)| given.iter().position(|(g, _)| g == f).unwrap_or(usize::MAX));
    for (file, expected) in recorded {
        let actual = given.iter().find(|(f, _)| f == file).map(|(_, h)| h.as_str());
        if actual != Some(expected.as_str()) {
            bail!(
                "--config {}: {}/{file} is not the data the run was trained on: its SHA-256 is {}, the run's (recorded in the summary) was {expected}; \
                 give the run's data with --data-dir (or, to train these options on other data, write them in a TOML config file)",
                applied.path.display(),
                data_dir.display(),
                actual.unwrap_or("none (no such file)")
            );
        }
    }
    Ok(())
}
