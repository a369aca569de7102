#!/usr/bin/env bash
# Creates or extends .venv-torch for the sentence-embedding reference and baselines
# (scripts/reference-embed.py, scripts/bench-embed-baselines.py): PyPI torch from
# scripts/requirements-bench-torch.txt, then sentence-transformers, transformers, onnxruntime, onnx,
# onnxscript and their dependencies from scripts/requirements-embed-reference.txt, all pinned and
# installed with --no-deps, so pip never replaces torch nor adds CUDA packages. Idempotent: pinned
# packages already installed are kept and nothing is downloaded. Also fetches the model if missing.
# Usage: bash scripts/setup-embed-reference.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-torch

# The same venv and torch as scripts/bench-pytorch.sh (whose --install-only also brings Debian's torch
# and OpenBLAS, which the embedding scripts do not need).
if [ ! -x "$venv/bin/python" ]; then
  bash "$root/scripts/apt-install.sh" python3-venv
  echo "creating $venv with torch from PyPI (first time only: ~3 GB download)" >&2
  /usr/bin/python3 -m venv "$venv"
fi
pip=("$venv/bin/pip" install -q --no-cache-dir --no-deps --disable-pip-version-check)
"${pip[@]}" -r "$root/scripts/requirements-bench-torch.txt"
"${pip[@]}" -r "$root/scripts/requirements-embed-reference.txt"

# torch must still be the pinned one (a stray dependency must not have replaced it).
want=$(sed -n 's/^torch==//p' "$root/scripts/requirements-bench-torch.txt")
have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')
if [ "$have" != "$want" ]; then
  echo "setup-embed-reference.sh: .venv-torch has torch $have, expected $want" >&2
  exit 1
fi
bash "$root/scripts/fetch-model.sh" >/dev/null
