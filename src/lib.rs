//! spatial-gpu: spatial neural networks (neurons with learnable 2-D positions, a transport cost on
//! long strong connections and a density cost between neurons) trained on MNIST + Fashion-MNIST,
//! on a hand-written WGSL compute engine or on the CPU reference backend.
//!
//! Where to find the math: `config` (every option), `model` (parameters and their layout),
//! `cpu/*` (one file per op, forward and backward, the reference), `shaders/*.wgsl` and `gpu/*`
//! (the same ops on the GPU), `train` (the loop), `checkpoint` (the file format).

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod cpu;
pub mod curves;
pub mod data;
pub mod figure;
pub mod figure_legend;
pub mod gpu;
pub mod model;
pub mod reproduce;
pub mod rng;
pub mod split;
pub mod tensorboard;
pub mod train;
