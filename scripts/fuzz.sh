#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzz.cc) with clang, ASan and UBSan into build-fuzz
# and runs each for a while. A crash leaves its input in build-fuzz/artifacts/ and makes
# the script fail.
#
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Per target <name>_fuzz, optional: fuzz/<name>_fuzz_seeds.py DIR [LARGE_DIR] writes seed
# inputs (and large ones), fuzz/<name>_fuzz.dict is a libFuzzer dictionary,
# fuzz/corpus/<name>/ holds checked-in seeds.
# DFSS_FUZZ_BUILD_DIR overrides the build directory.
#
# Limits: every input must finish within -timeout seconds and the process stay under
# -rss_limit_mb (single allocations under -malloc_limit_mb); a slower input (a quadratic
# parse) or a bigger one (a huge allocation) is reported as a failure like a crash.
# Fuzzing mutates inputs of at most -max_len bytes, which cannot show either class, so
# the large seeds (megabytes: 200k-tensor headers, 25M-element arrays) are first replayed
# one by one under the same kind of limits.
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
  large="$build/seeds-large/$target"
  mkdir -p "$corpus" "$seeds" "$large"
  extra=()
  if [ -f "$root/fuzz/${target}_seeds.py" ]; then
    python3 "$root/fuzz/${target}_seeds.py" "$seeds" "$large"
  fi
  if [ -d "$root/fuzz/corpus/$name" ]; then extra+=("$root/fuzz/corpus/$name"); fi

  large_inputs=("$large"/*)
  if [ -e "${large_inputs[0]}" ]; then
    log="$build/logs/$target-large.log"
    echo "replaying ${#large_inputs[@]} large inputs of $target (log: $log)"
    # Sized for inputs of up to 100 MB: the input and ASan's shadow fit in 1 GB, leaving
    # no room for a parser that needs many times the input's size. A linear parse of the
    # largest takes seconds under ASan (up to 30 on a loaded machine); the quadratic one
    # took over 20 minutes.
    if ! "$build/fuzz/$target" -timeout=120 -rss_limit_mb=1024 -malloc_limit_mb=512 \
      -artifact_prefix="$build/artifacts/$target-large-" "${large_inputs[@]}" >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "$target: FAILED on a large input; see $log" >&2
      exit 1
    fi
  fi
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
