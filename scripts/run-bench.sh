#!/usr/bin/env bash
# The main job: installs the dependencies, builds dfss and prints the attention benchmark
# table (median ms, GFLOP/s, % of the measured peak, speedup, error vs the reference).
# Arguments are passed to `dfss bench attention` (defaults: the table in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
if [ $# -eq 0 ]; then
  set -- --seq 384,1024,2048,4096 --batch 1 --heads 12 --dim 64 --dtype fp32,bf16 --impl fused,unfused --threads 2
fi
./build/dfss bench attention "$@"
