export WGPU_BACKEND=vulkan XDG_RUNTIME_DIR=$(mktemp -d) SPATIAL_GPU_CACHE_DIR=/tmp/ac-real
B=/work/main/target/release/spatial-gpu
rm -rf /tmp/popreal /tmp/alone2
lscpu | grep -E "Model name|CPU family|^Model:"; uptime
date +%s.%N
/usr/bin/time -f "population wall %e s" $B train --backend gpu --data-dir /work/shared/data --epochs 1 --seeds 1,2 --out /tmp/popreal --no-progress --no-plot
date +%s.%N
/usr/bin/time -f "alone wall %e s" $B train --backend gpu --data-dir /work/shared/data --epochs 1 --seed 2 --out /tmp/alone2 --no-progress --no-plot
uptime
python3 - <<'PY'
from safetensors.numpy import load_file
a=load_file('/tmp/popreal/seed-2/model.safetensors'); b=load_file('/tmp/alone2/model.safetensors')
print("seed 2: population vs alone, tensors bitwise equal:", all(a[k].tobytes()==b[k].tobytes() for k in a) and a.keys()==b.keys())
PY
