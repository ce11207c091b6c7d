#!/bin/bash
# Queues the shards of Table 1 as one job array and the collect step after all of them succeeded.
# Run from the repository root (the config path is relative to it); arguments go to both steps:
#   docs/slurm/submit.sh --data-dir /shared/data/spatial-gpu
set -euo pipefail
here=$(dirname "$0")
array=$(sbatch --parsable "$here/reproduce-array.sbatch" "$@")
array=${array%%;*}
sbatch --dependency=afterok:"$array" "$here/collect.sbatch" "$@"
echo "queued the shards as job $array and the collect step after them"
