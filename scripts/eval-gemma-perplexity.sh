#!/usr/bin/env bash
# Runs scripts/eval-gemma-perplexity.py offline with .venv-torch's Python (the installed dfss).
# Installs nothing: run scripts/setup-gemma.sh (model) and scripts/make-corpora.sh (texts) first.
# Usage: bash scripts/eval-gemma-perplexity.sh [arguments of eval-gemma-perplexity.py]
#   DFSS_VENV=/path/to/venv   another venv with torch, transformers, dfss and the Gemma packages
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${DFSS_VENV:-$root/.venv-torch}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$venv/bin/python" "$root/scripts/eval-gemma-perplexity.py" "$@"
