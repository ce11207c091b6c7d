//! spatial-gpu: spatial neural networks (neurons with learnable 2-D positions, a transport cost on
//! long strong connections and a density cost between neurons) trained on MNIST + Fashion-MNIST,
//! on a hand-written WGSL compute engine or on the CPU reference backend.
//!
//! Where to find the math: `config` (every option), `model` (parameters and their layout),
//! `ops/*` (each op's contract: shapes, constants, input checks, shared by both backends),
//! `cpu/*` (one file per op, forward and backward, the reference), `shaders/*.wgsl` and `gpu/*`
//! (the same ops on the GPU), `train` (the loop), `guard` (the divergence checks), `checkpoint`
//! (the file format), `split` and `figure` (the analysis), `grid` (the runs of `reproduce` and
//! `sweep`), `bench` (the measurements).
//!
//! Layers: `cli` parses the command line and dispatches to `commands`, the only modules that know
//! about clap; everything else is the library core, which never imports the command layer and has
//! no import cycles (`tests/architecture.rs` checks both).

pub mod analysis;
pub mod assignment;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cpu;
pub mod curves;
pub mod data;
pub mod figure;
pub mod fsio;
pub mod gpu;
pub mod grid;
pub mod guard;
pub mod history;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod provenance;
pub mod rng;
pub mod run_dir;
pub mod run_log;
pub mod simd;
pub mod split;
pub mod tensorboard;
pub mod train;
pub mod viz;
