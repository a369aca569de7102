#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cc) with clang, ASan and UBSan into build-fuzz
# and runs each for a while. A crash leaves its input in build-fuzz/artifacts/ and makes
# the script fail.
#
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Per target <name>_fuzz, optional: fuzz/<name>_fuzz_seeds.py DIR writes seed inputs,
# fuzz/<name>_fuzz.dict is a libFuzzer dictionary, fuzz/corpus/<name>/ holds checked-in seeds.
# DFSS_FUZZ_BUILD_DIR overrides the build directory.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${DFSS_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-60}"
[ $# -gt 0 ] && shift
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [seconds per target > 0] [target ...]" >&2
  exit 2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in "$root"/fuzz/*_fuzz.cc; do targets+=("$(basename "$source" .cc)"); done
fi

# Tests and benchmarks are not needed here and would only lengthen the build.
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DDFSS_FUZZ=ON -DDFSS_BUILD_TESTS=OFF \
  -DDFSS_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# The machine is shared: one compile job at a time.
cmake --build "$build" -j1 --target "${targets[@]}"

mkdir -p "$build/artifacts" "$build/logs"
for target in "${targets[@]}"; do
  name="${target%_fuzz}"
  corpus="$build/corpus/$target"  # grows across runs; libFuzzer adds new inputs here
  seeds="$build/seeds/$target"
  mkdir -p "$corpus" "$seeds"
  extra=()
  if [ -f "$root/fuzz/${target}_seeds.py" ]; then python3 "$root/fuzz/${target}_seeds.py" "$seeds"; fi
  if [ -d "$root/fuzz/corpus/$name" ]; then extra+=("$root/fuzz/corpus/$name"); fi
  options=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048
    -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-")
  if [ -f "$root/fuzz/$target.dict" ]; then options+=(-dict="$root/fuzz/$target.dict"); fi

  log="$build/logs/$target.log"
  echo "fuzzing $target for ${seconds}s (log: $log)"
  if ! "$build/fuzz/$target" "${options[@]}" "$corpus" "$seeds" "${extra[@]}" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "$target: FAILED; reproduce with: $build/fuzz/$target $build/artifacts/$target-<file>" >&2
    exit 1
  fi
  grep -E "^(#[0-9]+.*DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  echo "$target: clean, corpus $(ls "$corpus" | wc -l) inputs"
done
