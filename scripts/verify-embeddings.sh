#!/usr/bin/env bash
# Checks that dfss's dense embeddings equal PyTorch/sentence-transformers' on real text:
# builds the corpora (scripts/make-corpora.sh: >= 500 real sentences from Reuters, the KJV,
# Austen, fortunes), computes the reference with scripts/reference-embed.py in .venv-torch
# (scripts/setup-embed-reference.sh installs it), embeds the same file with `dfss embed`,
# and compares row by row (scripts/compare-embeddings.py; fails below cosine 0.99999).
# Usage: bash scripts/verify-embeddings.sh [--max-len 256] [--threads 2] [--input FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
max_len=256 threads=2 input=out/corpora/sentences.txt
while [ $# -gt 0 ]; do
  case $1 in
    --max-len) max_len=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --input) input=$2; shift 2 ;;
    *) echo "verify-embeddings.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bash scripts/setup-embed-reference.sh
[ -f "$input" ] || bash scripts/make-corpora.sh >/dev/null
[ -x build/dfss ] || bash scripts/build.sh build
mkdir -p out/fidelity
model=models/all-MiniLM-L6-v2
.venv-torch/bin/python scripts/reference-embed.py --model "$model" --input "$input" \
  --output out/fidelity/reference.npy --max-len "$max_len" --threads "$threads"
./build/dfss embed --model "$model" --input "$input" --output out/fidelity/dfss.npy \
  --max-len "$max_len" --threads "$threads"
/usr/bin/python3 scripts/compare-embeddings.py out/fidelity/reference.npy out/fidelity/dfss.npy \
  --min-cosine 0.99999
