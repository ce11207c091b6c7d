# Table 1's mixed and sequential cells at seed 1 (regular and spatial: they differ in alpha, beta and
# input mode, and a sequential epoch has 469 batches to mixed's 235) on lavapipe, real data,
# 1 epoch: as one population, then run by run (--no-population).
# Prints both wall times and whether each run's checkpoint is the same bits both ways.
# Lavapipe is Mesa's software Vulkan: a correctness check with times for context, not a speed figure.
export WGPU_BACKEND=vulkan XDG_RUNTIME_DIR=$(mktemp -d) SPATIAL_GPU_CACHE_DIR=/tmp/ac-real
B=/work/main/target/release/spatial-gpu
rm -rf /tmp/mspop /tmp/msalone
lscpu | grep -E "Model name|CPU family|^Model:"; uptime
ARGS="reproduce --backend gpu --data-dir /work/shared/data --modes mixed,sequential --seeds 1 --epochs 1 --permutations 20 --no-figures"
/usr/bin/time -f "population wall %e s" $B $ARGS --out /tmp/mspop
/usr/bin/time -f "run by run wall %e s" $B $ARGS --out /tmp/msalone --no-population
uptime
python3 - <<'PY'
from safetensors.numpy import load_file
for run in ["mixed-regular-seed1", "mixed-spatial-seed1", "sequential-regular-seed1", "sequential-spatial-seed1"]:
    a = load_file(f"/tmp/mspop/{run}/model.safetensors")
    b = load_file(f"/tmp/msalone/{run}/model.safetensors")
    same = a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    print(f"{run}: population vs run by run, tensors bitwise equal: {same}")
PY
