#!/usr/bin/env bash
# The main job: installs the dependencies, builds dfss, fetches the model if it is missing,
# and prints two tables: attention kernels (median ms, GFLOP/s, % of the measured peak,
# speedup, error vs the reference) and the all-MiniLM-L6-v2 encoder end to end (tokens/s,
# dense vs N:M attention, where the time goes).
# Arguments are passed to `dfss bench attention` (defaults: the table in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
bash scripts/fetch-model.sh
if [ $# -eq 0 ]; then
  set -- --seq 384,1024,2048,4096 --batch 1 --heads 12 --dim 64 --dtype fp32,bf16 --impl fused,unfused --threads 2
fi
./build/dfss bench attention "$@"
echo
./build/dfss bench embed --model models/all-MiniLM-L6-v2 --shapes 32x128,8x512 \
  --attention dense 2:4 1:2 --threads 2 --reps 5
