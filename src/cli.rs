//! The `spatial-gpu` command line: parses the arguments and hands each subcommand to its module in
//! [`crate::commands`]. `main.rs` only calls [`run`].

use crate::commands::{self, animate, bench, data, figure, plot, reproduce, split, sweep, train, view};
use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;

#[derive(Parser, Debug)]
#[command(
    name = "spatial-gpu",
    version,
    about = "Train spatial neural networks (MNIST + Fashion-MNIST) on a WGSL GPU engine or the CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a network on both tasks and save metrics, summary and checkpoint in --out.
    Train(train::TrainArgs),
    /// Manage the datasets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Show the compute adapters wgpu finds and which one the GPU backend would use.
    Info,
    /// Split a trained model into per-task subnetworks and evaluate them.
    Split(split::SplitArgs),
    /// Draw Figures 1 and 2 of the paper for a trained model.
    Figure(figure::FigureArgs),
    /// Draw a run's training curves (curves.png/.svg) and write metrics.csv.
    Plot(plot::PlotArgs),
    /// Animate a run's history (top view over training) as a GIF, and an MP4 where ffmpeg exists.
    Animate(animate::AnimateArgs),
    /// Write a self-contained HTML viewer of a run's history.
    View(view::ViewArgs),
    /// Measure training throughput of each backend (and the PyTorch baseline when available).
    Bench(bench::BenchArgs),
    /// Train and split the paper's grid (modes x regular/spatial x seeds) and write Table 1.
    #[command(
        mut_arg("seeds", |a| a.help("Seeds of the runs, comma-separated [default: 1,2,3]")),
        mut_arg("epochs", |a| a.help("Epochs per run [default: 50]"))
    )]
    Reproduce(reproduce::ReproduceArgs),
    /// Train a grid of settings (transport norm x weight norm x init x alpha x beta) and tabulate them.
    #[command(
        mut_arg("seeds", |a| a.help("Seeds of the runs, comma-separated [default: 1,2,3,4,5]")),
        mut_arg("epochs", |a| a.help("Epochs per run [default: 10]"))
    )]
    Sweep(sweep::SweepArgs),
}

/// Parses this process's command line (exiting with clap's message on an error, as
/// [`Parser::parse`] does).
pub fn parse() -> Cli {
    parse_from(std::env::args_os())
}

/// Parses `argv` (program name first) and keeps it where a command records it: `train` writes it
/// into the run's provenance and learns from it which options `--config` must not override.
pub fn parse_from(argv: impl IntoIterator<Item = impl Into<OsString>>) -> Cli {
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let matches = Cli::command().get_matches_from(&argv);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match &mut cli.command {
        Command::Train(args) => args.argv = argv,
        Command::Reproduce(args) => args.grid.argv = argv,
        Command::Sweep(args) => args.grid.argv = argv,
        _ => {}
    }
    cli
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Train(args) => train::cmd_train(&args),
        Command::Data { command } => data::cmd_data(&command),
        Command::Info => commands::info::cmd_info(),
        Command::Split(args) => split::cmd_split(&args),
        Command::Figure(args) => figure::cmd_figure(&args),
        Command::Plot(args) => plot::cmd_plot(&args),
        Command::Animate(args) => animate::cmd_animate(&args),
        Command::View(args) => view::cmd_view(&args),
        Command::Bench(args) => bench::cmd_bench(&args),
        Command::Reproduce(args) => reproduce::cmd_reproduce(&args),
        Command::Sweep(args) => sweep::cmd_sweep(&args),
    }
}
