//! Where a run came from (`summary.json`'s `provenance`: program, commit, command line, data, times
//! of each segment) and options from a file (`train --config FILE`, TOML or a run's summary.json).

mod support;

use spatial_gpu::cli::{self, Command};
use spatial_gpu::commands::config_file::{self, Configurable, FILE_KEYS, NOT_IN_FILE};
use spatial_gpu::commands::reproduce::ReproduceArgs;
use spatial_gpu::commands::sweep::SweepArgs;
use spatial_gpu::commands::train::TrainArgs;
use std::path::{Path, PathBuf};
use support::*;

/// `spatial-gpu train ARGS` parsed as `main` parses it.
fn parse_train(args: &[&str]) -> TrainArgs {
    let argv = ["spatial-gpu", "train"].iter().chain(args);
    match cli::parse_from(argv.copied()).command {
        Command::Train(a) => a,
        other => panic!("not train: {other:?}"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `spatial-gpu NAME ARGS` parsed as `main` parses it, as `T`.
fn parse_as<T: Configurable + 'static>(args: &[&str]) -> T {
    let argv = ["spatial-gpu", T::NAME].iter().chain(args);
    let cli = cli::parse_from(argv.copied());
    let any: &dyn std::any::Any = match &cli.command {
        Command::Train(a) => a,
        Command::Reproduce(a) => a,
        Command::Sweep(a) => a,
        other => panic!("no config files for {other:?}"),
    };
    any.downcast_ref::<T>()
        .expect("the subcommand parsed as itself")
        .clone()
}

/// As [`effective`], for any subcommand.
fn effective_as<T: Configurable + std::fmt::Debug>(args: &T) -> String {
    let (mut a, _) = config_file::apply(args).unwrap_or_else(|e| panic!("{e:#}"));
    a.set_argv(Vec::new());
    format!("{a:?}")
}

/// Every option of `T` has a config-file key or is listed as not settable in a file (with why): a
/// new option fails here until it is given one of the two.
fn every_option_has_a_key<T: Configurable>() {
    let cmd = T::command();
    let mut options = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let long = arg.get_long().unwrap_or_else(|| {
            panic!(
                "{}'s argument {id} has no long name: a config file cannot name it",
                T::NAME
            )
        });
        let in_file = config_file::keys_of::<T>().any(|(k, _)| *k == long);
        let excluded = T::NOT_IN_FILE.iter().any(|(k, _)| *k == long);
        assert!(
            in_file != excluded,
            "--{long} of `{}` {}: add a line for it to its keys (FILE_KEYS, GRID_KEYS, REPRODUCE_KEYS or \
             SWEEP_KEYS; or, with the reason, to NOT_IN_FILE) in src/commands/config_file.rs",
            T::NAME,
            if in_file {
                "is both a key and not settable"
            } else {
                "has no config-file key"
            }
        );
        options.push(long.to_string());
    }
    for (key, _) in config_file::keys_of::<T>().chain(T::NOT_IN_FILE) {
        assert!(
            options.contains(&key.to_string()),
            "{key} is no option of `{}`",
            T::NAME
        );
    }
}

#[test]
fn every_option_of_train_reproduce_and_sweep_has_a_config_file_key() {
    every_option_has_a_key::<TrainArgs>();
    every_option_has_a_key::<ReproduceArgs>();
    every_option_has_a_key::<SweepArgs>();
    // The train lists are the ones the keys of `train` come from.
    assert_eq!(config_file::keys_of::<TrainArgs>().count(), FILE_KEYS.len());
    assert_eq!(<TrainArgs as Configurable>::NOT_IN_FILE, NOT_IN_FILE);
}

/// The command-line words of `key = example` (an independent reading of the TOML value).
fn cli_words<T: Configurable>(key: &str, example: &str) -> Vec<String> {
    let table: toml::Table = format!("x = {example}").parse().unwrap();
    let arg = T::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(key))
        .cloned()
        .unwrap();
    let word = |v: &toml::Value| match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => panic!("no example takes {other:?}"),
    };
    let flag = format!("--{key}");
    match &table["x"] {
        toml::Value::Boolean(true) => vec![flag],
        toml::Value::Array(items) if matches!(arg.get_action(), clap::ArgAction::Append) => {
            items.iter().flat_map(|i| [flag.clone(), word(i)]).collect()
        }
        toml::Value::Array(items) => {
            let d = arg.get_value_delimiter().unwrap_or(',').to_string();
            vec![flag, items.iter().map(word).collect::<Vec<_>>().join(&d)]
        }
        v => vec![flag, word(v)],
    }
}

/// Each key's example, written in a file, sets its option exactly as the command line does, and
/// changes something.
fn every_key_sets_its_option<T: Configurable + std::fmt::Debug + 'static>() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let f = file.to_str().unwrap();
    for (key, example) in config_file::keys_of::<T>() {
        // The same file (so that `--config` is the same), empty: the defaults.
        std::fs::write(&file, "").unwrap();
        let defaults = effective_as(&parse_as::<T>(&["--config", f]));
        std::fs::write(&file, format!("{key} = {example}\n")).unwrap();
        let from_file = effective_as(&parse_as::<T>(&["--config", f]));
        // The command line's words for it, with the same file (whose value they override).
        let words = cli_words::<T>(key, example);
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.extend(["--config", f]);
        let from_cli = effective_as(&parse_as::<T>(&args));
        assert_eq!(from_file, from_cli, "{}: {key} = {example} vs {words:?}", T::NAME);
        assert_ne!(
            from_file,
            defaults,
            "{}: {key} = {example} changes nothing",
            T::NAME
        );
    }
}

#[test]
fn every_file_key_sets_its_option_as_the_command_line_does() {
    every_key_sets_its_option::<TrainArgs>();
    every_key_sets_its_option::<ReproduceArgs>();
    every_key_sets_its_option::<SweepArgs>();
}

#[test]
fn a_toml_file_sets_options_and_the_command_line_overrides_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "run.toml",
        "# a comment\nalpha = 0.05\nmode = \"mixed\"\nhidden = [32, 16]\nbatch_size = 64\nno-plot = true\nseed = 4\n",
    );
    let f = file.to_str().unwrap();
    let (a, applied) = config_file::apply(&parse_train(&["--config", f])).unwrap();
    let (model, cfg) = a.overrides().configs().unwrap();
    assert_eq!(model.alpha, 0.05);
    assert_eq!(cfg.mode.to_string(), "mixed");
    assert_eq!(model.sizes, vec![784, 32, 16, 20]);
    assert_eq!(cfg.batch_size, 64);
    assert_eq!(cfg.seed, 4);
    assert!(a.no_plot);
    assert_eq!(applied.unwrap().path, file);

    // The command line wins, before or after --config, and a given switch drops the file's
    // conflicting keys (--regular and the file's alpha).
    for args in [
        vec!["--seed", "9", "--config", f, "--regular", "--hidden", "8"],
        vec!["--config", f, "--seed=9", "--hidden", "8", "--regular"],
    ] {
        let (a, applied) = config_file::apply(&parse_train(&args)).unwrap();
        let (model, cfg) = a.overrides().configs().unwrap();
        assert_eq!(cfg.seed, 9, "{args:?}");
        assert_eq!(model.sizes, vec![784, 8, 20], "{args:?}");
        assert!(!model.is_spatial(), "{args:?}");
        assert_eq!(cfg.mode.to_string(), "mixed", "{args:?}");
        let used: Vec<String> = applied.unwrap().used.into_iter().map(|(k, _)| k).collect();
        assert_eq!(used, ["batch-size", "mode", "no-plot"], "{args:?}");
    }
}

/// Runs `spatial-gpu train --config FILE ARGS` on a data directory that does not exist: every
/// fault here is found before the data is needed.
fn train_with_config(file: &Path, args: &[&str]) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .args(["train", "--backend", "cpu", "--no-progress", "--config"])
        .arg(file)
        .arg("--data-dir")
        .arg(tmp.path().join("no-data"))
        .args(["--out"])
        .arg(tmp.path().join("run"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_config_files_are_refused_naming_the_file_the_key_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "alhpa = 0.1\n",
            &["unknown key alhpa", "did you mean alpha?", "alpha, beta"],
        ),
        ("colour = 1\n", &["unknown key colour (the keys are"]),
        (
            "alpha = \"high\"\n",
            &[
                "key alpha = \"high\"",
                "wrong type",
                "takes a number",
                "alpha = 0.01",
            ],
        ),
        ("epochs = 1.5\n", &["key epochs = 1.5", "takes an integer"]),
        (
            "hidden = [\"a\"]\n",
            &["key hidden = [\"a\"]", "a list of integers"],
        ),
        ("regular = 1\n", &["key regular = 1", "true or false"]),
        (
            "mode = \"diagonal\"\n",
            &["key mode = \"diagonal\"", "invalid value 'diagonal'", "concat"],
        ),
        (
            "alpha = -1.0\n",
            &["key alpha = -1", "invalid --alpha", "not a finite number >= 0"],
        ),
        ("lr = 0\n", &["key lr = 0", "invalid --lr"]),
        ("hidden = [16, 0]\n", &["key hidden = [16, 0]", "0 neurons"]),
        ("alpha = nan\n", &["key alpha = NaN", "invalid --alpha"]),
        ("epochs = -3\n", &["key epochs = -3", "invalid value '-3'"]),
        (
            "resume = \"runs/x\"\n",
            &["key resume cannot be set in a config file"],
        ),
        ("config = \"other.toml\"\n", &["key config cannot be set"]),
        ("alpha = 0.1\nregular = true\n", &["cannot be used with"]),
        ("[train]\nalpha = 0.1\n", &["unknown key train"]),
        ("alpha = \n", &["not a valid TOML file", "line 1"]),
        ("batch_size = 8\nbatch-size = 8\n", &["given twice"]),
    ];
    for (i, (text, needles)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.toml"), text);
        let o = train_with_config(&file, &[]);
        let err = assert_fails_with(&o, needles);
        assert!(
            err.contains(file.to_str().unwrap()),
            "{text:?}: the message does not name the file:\n{err}"
        );
    }
    // A bad value given on the command line is the command line's fault, not the file's.
    let file = write(dir.path(), "good.toml", "alpha = 0.1\n");
    let err = assert_fails_with(&train_with_config(&file, &["--alpha=-2"]), &["invalid --alpha"]);
    assert!(!err.contains("good.toml"), "{err}");
}

#[test]
fn a_missing_or_unreadable_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    assert_fails_with(
        &train_with_config(&missing, &[]),
        &[
            "--config",
            missing.to_str().unwrap(),
            "cannot read it",
            "No such file",
        ],
    );
    // A directory cannot be read as a file (permissions do not stop root, who runs CI).
    assert_fails_with(
        &train_with_config(dir.path(), &[]),
        &["--config", dir.path().to_str().unwrap(), "cannot read it"],
    );
    let binary = write(dir.path(), "bin.toml", "");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    assert_fails_with(
        &train_with_config(&binary, &[]),
        &[binary.to_str().unwrap(), "not a text file"],
    );
    let not_summary = write(dir.path(), "other.json", "{\"a\": 1}");
    assert_fails_with(
        &train_with_config(&not_summary, &[]),
        &[
            not_summary.to_str().unwrap(),
            "not a summary.json",
            "no field `model`",
        ],
    );
}

fn sha256_hex(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An RFC 3339 time in UTC, checked with an independent parser (TOML's datetimes are RFC 3339).
fn assert_rfc3339_utc(v: &serde_json::Value, what: &str) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    let dt: toml::value::Datetime = s
        .parse()
        .unwrap_or_else(|e| panic!("{what} {s:?} is not RFC 3339: {e}"));
    assert!(
        dt.date.is_some() && dt.time.is_some(),
        "{what} {s:?} lacks a date or a time"
    );
    assert_eq!(dt.offset, Some(toml::value::Offset::Z), "{what} {s:?} is not UTC");
    s.to_string()
}

fn now_rfc3339() -> String {
    spatial_gpu::provenance::now()
}

#[test]
fn summary_json_records_the_program_the_command_line_the_data_and_the_times() {
    let data = cli_data_dir(21);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("my run");
    let before = now_rfc3339();
    let extra = ["--epochs", "1", "--seed", "3", "--out", out.to_str().unwrap()];
    assert_success(&train_cli(data.path(), &extra), "train");
    let after = now_rfc3339();
    let p = json(&out.join("summary.json"))["provenance"].clone();
    assert_eq!(p["program"], "spatial-gpu");
    assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    let commit = p["commit"].as_str().unwrap();
    assert!(
        commit == "unknown" || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "commit {commit:?}"
    );
    if commit == "unknown" {
        assert!(p["commit_dirty"].is_null());
    } else {
        assert!(p["commit_dirty"].is_boolean(), "{}", p["commit_dirty"]);
    }
    // argv is the command line exactly as run (train_cli's words).
    let mut argv = vec![env!("CARGO_BIN_EXE_spatial-gpu").to_string(), "train".to_string()];
    argv.extend(CLI_OPTS.iter().map(|s| s.to_string()));
    argv.extend([
        "--data-dir".to_string(),
        data.path().to_str().unwrap().to_string(),
    ]);
    argv.extend(extra.iter().map(|s| s.to_string()));
    let recorded: Vec<String> = serde_json::from_value(p["argv"].clone()).unwrap();
    assert_eq!(recorded, argv);
    // `command` is one line a shell reads back as argv (the run directory has a space).
    let command = p["command"].as_str().unwrap();
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("for a in {command}; do printf '%s\\n' \"$a\"; done"))
        .output()
        .unwrap();
    let words: Vec<String> = String::from_utf8(sh.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(words, argv, "{command}");
    assert_eq!(
        p["working_directory"].as_str().unwrap(),
        std::env::current_dir().unwrap().to_str().unwrap()
    );
    // The data: its directory, absolute, and the SHA-256 of each of its eight files.
    let data_dir = data.path().canonicalize().unwrap();
    assert_eq!(p["data_dir"].as_str().unwrap(), data_dir.to_str().unwrap());
    let digests = p["data"].as_object().unwrap();
    assert_eq!(digests.len(), 8);
    for (file, hex) in digests {
        assert_eq!(hex.as_str().unwrap(), sha256_hex(&data_dir.join(file)), "{file}");
    }
    assert!(p["config_file"].is_null());
    // The times: RFC 3339 in UTC, in order, within the test's own clock readings.
    let started = assert_rfc3339_utc(&p["started"], "started");
    let finished = assert_rfc3339_utc(&p["finished"], "finished");
    assert!(
        before <= started && started <= finished && finished <= after,
        "{before} {started} {finished} {after}"
    );
    let segments = p["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1);
    let s = &segments[0];
    assert_eq!(s["started"], p["started"]);
    assert_eq!(s["ended"], p["finished"]);
    assert_eq!(s["from"], serde_json::json!({"epoch": 0, "batch": 0}));
    assert_eq!(s["to"], serde_json::json!({"epoch": 1, "batch": 0}));
    assert_eq!(s["backend"], "cpu");
    assert_eq!(s["argv"], p["argv"]);
    assert_eq!(s["commit"], p["commit"]);
}

/// A resumed run keeps its start; each invocation is a segment with its own command line, and the
/// checkpoint carries them from one invocation to the next.
#[test]
fn a_resumed_run_keeps_its_start_and_lists_each_segment() {
    let data = cli_data_dir(22);
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("run");
    assert_success(
        &train_cli(data.path(), &["--epochs", "1", "--out", out.to_str().unwrap()]),
        "train",
    );
    let first = json(&out.join("summary.json"))["provenance"].clone();
    let ck = load_run(&out);
    let recorded: serde_json::Value = serde_json::from_str(ck.provenance.as_deref().unwrap()).unwrap();
    assert_eq!(recorded["segments"].as_array().unwrap().len(), 1);

    assert_success(&resume_cli(&out, data.path(), &["--epochs", "3"]), "resume");
    let p = json(&out.join("summary.json"))["provenance"].clone();
    assert_eq!(p["started"], first["started"], "the run's start is kept");
    let segments = p["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0], first["segments"][0]);
    assert_eq!(segments[1]["from"], serde_json::json!({"epoch": 1, "batch": 0}));
    assert_eq!(segments[1]["to"], serde_json::json!({"epoch": 3, "batch": 0}));
    assert!(segments[1]["started"].as_str() >= segments[0]["ended"].as_str());
    assert_eq!(p["finished"], segments[1]["ended"]);
    let argv: Vec<String> = serde_json::from_value(p["argv"].clone()).unwrap();
    assert!(argv.contains(&"--resume".to_string()), "{argv:?}");
    assert_eq!(p["argv"], segments[1]["argv"]);
}

/// A run stopped mid-epoch: its segment ends at its last checkpoint, and the resume starts there.
#[test]
fn an_interrupted_segment_ends_at_its_checkpoint() {
    use spatial_gpu::train::{self, Outcome};
    let data = small_data();
    let (model, cfg) = small_configs(spatial_gpu::config::InputMode::Concat, &data, 2, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut wrapped = Wrapped::new(new_backend(&model, &cfg));
    wrapped.stop_at = Some(3);
    let mut opts = quiet_options(dir.path());
    opts.stop = Some(wrapped.stop.clone());
    let outcome = train::train(&mut wrapped, &data, &opts, Default::default()).unwrap();
    assert!(matches!(outcome, Outcome::Interrupted(_)), "{outcome:?}");
    let (mut backend, start) = resumed_backend(dir.path(), None);
    let outcome = train::train(&mut backend, &data, &quiet_options(dir.path()), start).unwrap();
    let Outcome::Finished(summary) = outcome else {
        panic!("{outcome:?}")
    };
    let p = summary.provenance.unwrap();
    assert_eq!(p.segments.len(), 2);
    let at = |epoch, batch| spatial_gpu::provenance::At { epoch, batch };
    assert_eq!((p.segments[0].from, p.segments[0].to), (at(0, 0), at(0, 3)));
    assert_eq!((p.segments[1].from, p.segments[1].to), (at(0, 3), at(2, 0)));
    assert_eq!(p.started, p.segments[0].started);
    assert!(
        p.invocation.data_dir.is_none(),
        "the library was given no data directory"
    );
    assert_eq!(p.data.len(), 8);
}

/// `train --config runs/x/summary.json --out NEW` runs the run again: the same configuration and,
/// on the CPU, the same metrics, number for number.
#[test]
fn a_summary_json_reruns_its_run() {
    let data = cli_data_dir(23);
    let runs = tempfile::tempdir().unwrap();
    let first = runs.path().join("first");
    let opts = [
        "--epochs", "2", "--seed", "5", "--alpha", "0.05", "--mode", "mixed",
    ];
    let mut args = opts.to_vec();
    args.extend(["--out", first.to_str().unwrap()]);
    assert_success(&train_cli(data.path(), &args), "train");
    let summary_path = first.join("summary.json");
    let summary = json(&summary_path);

    let rerun = |out: &Path, extra: &[&str], data_dir: &Path| {
        bin()
            .args([
                "train",
                "--backend",
                "cpu",
                "--no-progress",
                "--no-plot",
                "--config",
            ])
            .arg(&summary_path)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let second = runs.path().join("second");
    assert_success(&rerun(&second, &[], data.path()), "rerun");
    let again = json(&second.join("summary.json"));
    assert_eq!(again["model"], summary["model"]);
    assert_eq!(again["train"], summary["train"]);
    assert_eq!(metrics_without_timing(&second), metrics_without_timing(&first));
    let p = &again["provenance"];
    assert_eq!(
        p["config_file"].as_str().unwrap(),
        summary_path.canonicalize().unwrap().to_str().unwrap()
    );

    // Options given with it override the run's.
    let third = runs.path().join("third");
    assert_success(
        &rerun(&third, &["--seed", "6", "--epochs", "1"], data.path()),
        "rerun, seed 6",
    );
    let t = json(&third.join("summary.json"));
    assert_eq!(t["train"]["seed"], 6);
    assert_eq!(t["train"]["epochs"], 1);
    assert_eq!(t["model"], summary["model"]);

    // Never into the run itself, never as a resume, never on other data.
    assert_fails_with(
        &rerun(&first, &[], data.path()),
        &["--config", "would write into the run it reruns", "--out"],
    );
    let o = bin()
        .args(["train", "--backend", "cpu", "--config"])
        .arg(&summary_path)
        .arg("--resume")
        .arg(&first)
        .output()
        .unwrap();
    assert_fails_with(&o, &["cannot be combined with --resume"]);
    let other = cli_data_dir(24);
    let fourth = runs.path().join("fourth");
    assert_fails_with(
        &rerun(&fourth, &[], other.path()),
        &[
            "--config",
            "mnist/train-images-idx3-ubyte",
            "not the data the run was trained on",
        ],
    );
    assert!(
        !fourth.exists(),
        "a rerun refused for its data leaves no directory"
    );
}

/// A summary whose configuration the options cannot give (here Adam's beta2, which no option sets)
/// is refused rather than rerun with another configuration.
#[test]
fn a_summary_options_cannot_express_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, mut train) = spatial_gpu::config::Overrides::default().configs().unwrap();
    train.beta2 = 0.99;
    let summary = serde_json::json!({"model": model, "train": train});
    let file = write(dir.path(), "summary.json", &summary.to_string());
    assert_fails_with(
        &train_with_config(&file, &[]),
        &[
            file.to_str().unwrap(),
            "train.beta2 is 0.99 in the run, 0.999 from the options",
        ],
    );
}

/// Options rebuilt from a configuration give that configuration back.
#[test]
fn options_from_a_configuration_give_it_back() {
    use spatial_gpu::config::Overrides;
    for args in [
        vec![],
        vec![
            "--mode",
            "sequential",
            "--hidden",
            "64,32",
            "--regular",
            "--lr",
            "0.001",
        ],
        vec![
            "--init",
            "torch",
            "--transport-norm",
            "mean",
            "--weight-norm",
            "l2",
            "--alpha",
            "0.3",
            "--beta",
            "0",
        ],
        vec![
            "--seed",
            "18446744073709551615",
            "--batch-size",
            "7",
            "--epochs",
            "3",
        ],
    ] {
        let configs = parse_train(&args).overrides().configs().unwrap();
        let rebuilt = Overrides::from_configs(&configs.0, &configs.1).configs().unwrap();
        assert_eq!(rebuilt, configs, "{args:?}");
    }
}

/// The config file README.md shows is one `train` accepts, and sets what it says.
#[test]
fn the_readme_config_example_is_accepted() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme
        .find("## Config files")
        .expect("README has a Config files section")..];
    let start = section.find("```toml\n").expect("a TOML example") + 8;
    let text = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "example.toml", text);
    let (a, _) = config_file::apply(&parse_train(&["--config", file.to_str().unwrap()])).unwrap();
    a.overrides().configs().unwrap();
}

/// `reproduce --config` and `sweep --config` read TOML files as `train` does, and refuse a
/// summary.json (which reruns one run, with `train`).
#[test]
fn reproduce_and_sweep_take_config_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "grid.toml",
        "seeds = [4, 5]\nmodes = [\"mixed\"]\nalpha = 0.2\njobs = 2\n",
    );
    let f = file.to_str().unwrap();
    let (a, _) = config_file::apply(&parse_as::<ReproduceArgs>(&["--config", f, "--jobs", "1"])).unwrap();
    assert_eq!(a.grid.seeds, Some(vec![4, 5]));
    assert_eq!(a.grid.modes.as_ref().map(|m| m.len()), Some(1));
    assert_eq!(a.alpha, Some(0.2));
    assert_eq!(a.grid.jobs, 1, "the command line wins");
    // sweep has no alpha: the same file is refused there, naming the key and sweep's keys.
    let o = bin().args(["sweep", "--config", f]).output().unwrap();
    assert_fails_with(&o, &[f, "unknown key alpha", "paper-alphas"]);
    let bad = write(dir.path(), "bad.toml", "betas = [-1.0]\nepochs = 1\n");
    let tmp = dir.path().join("no-data");
    let o = bin()
        .args([
            "sweep",
            "--backend",
            "cpu",
            "--config",
            bad.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(&tmp)
        .arg("--out")
        .arg(dir.path().join("sweep"))
        .output()
        .unwrap();
    assert_fails_with(
        &o,
        &["bad.toml: key betas = [-1]: --betas: -1 is not a finite number"],
    );
    let summary = write(dir.path(), "summary.json", "{}");
    let o = bin()
        .args(["reproduce", "--config"])
        .arg(&summary)
        .output()
        .unwrap();
    assert_fails_with(&o, &["summary.json reruns that one run", "train --config"]);
}

/// A run of three tasks (of two image sizes) reruns from its summary with the same tasks: the
/// summary's `model.tasks` become `--tasks`, and the configuration is rebuilt for them.
#[test]
fn a_summary_json_of_three_tasks_reruns_with_its_tasks() {
    let data = cli_data_dir(29);
    // A third built-in task: MNIST's files under animal-mnist/.
    let animal = data.path().join("animal-mnist");
    std::fs::create_dir_all(&animal).unwrap();
    for f in std::fs::read_dir(data.path().join("mnist")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), animal.join(f.file_name())).unwrap();
    }
    let runs = tempfile::tempdir().unwrap();
    let first = runs.path().join("first");
    assert_success(
        &train_cli(
            data.path(),
            &[
                "--epochs",
                "1",
                "--tasks",
                "mnist,fashion-mnist,animal-mnist",
                "--out",
                first.to_str().unwrap(),
            ],
        ),
        "train, three tasks",
    );
    let summary_path = first.join("summary.json");
    let summary = json(&summary_path);
    assert_eq!(summary["model"]["tasks"].as_array().unwrap().len(), 3);
    let second = runs.path().join("second");
    let o = bin()
        .args([
            "train",
            "--backend",
            "cpu",
            "--no-progress",
            "--no-plot",
            "--config",
        ])
        .arg(&summary_path)
        .arg("--data-dir")
        .arg(data.path())
        .arg("--out")
        .arg(&second)
        .output()
        .unwrap();
    assert_success(&o, "rerun of three tasks");
    let again = json(&second.join("summary.json"));
    assert_eq!(again["model"], summary["model"]);
    assert_eq!(metrics_without_timing(&second), metrics_without_timing(&first));
}
