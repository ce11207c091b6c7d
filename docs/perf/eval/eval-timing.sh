#!/bin/sh
# One evaluation of the MNIST + Fashion-MNIST concat test set (10 000 rows) by the host path and by
# the device path, side by side in one process (examples/eval_timing.rs). Raw log: eval-timing-lavapipe.log.
set -e
export WGPU_BACKEND=${WGPU_BACKEND:-vulkan} XDG_RUNTIME_DIR=$(mktemp -d) SPATIAL_GPU_CACHE_DIR=$(mktemp -d)
export SPATIAL_GPU_DATA=${SPATIAL_GPU_DATA:-/work/shared/data}
lscpu | grep -E "Model name|^CPU\(s\)"; uptime
git log -1 --format='commit %h'
cargo build -j1 --example eval_timing 2>/dev/null
./target/debug/examples/eval_timing "${1:-3}"
uptime
