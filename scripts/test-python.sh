#!/usr/bin/env bash
# Builds the Python package (pyproject.toml: the attention core + dfss._C) into .venv-torch and
# runs its tests (python/tests). .venv-torch comes from scripts/setup-embed-reference.sh (pinned
# torch, transformers, sentence-transformers, and the model files); the build and test tools
# are pinned in scripts/requirements-python-test.txt and installed with --no-deps, like the
# rest of that venv. Nothing is downloaded at test time (HF_HUB_OFFLINE=1).
# Usage: bash scripts/test-python.sh [pytest arguments]
#   DFSS_VENV=/path/to/venv  use another venv that already has the pinned packages
#   DFSS_EDITABLE=1          pip install -e (scikit-build-core's editable mode) instead of a wheel
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${DFSS_VENV:-$root/.venv-torch}

# The extension's build needs Python's headers, a C++ compiler, CMake and Ninja, from Debian.
bash "$root/scripts/apt-install.sh" python3-dev g++ cmake ninja-build
if [ -z "${DFSS_VENV:-}" ]; then
  bash "$root/scripts/setup-embed-reference.sh"
else
  bash "$root/scripts/fetch-model.sh" >/dev/null
fi
pip=("$venv/bin/pip" install -q --no-cache-dir --no-deps --disable-pip-version-check)
"${pip[@]}" -r "$root/scripts/requirements-python-test.txt"
"${pip[@]}" --require-hashes -r "$root/scripts/requirements-finetune.txt"

# --no-build-isolation: build with the pinned scikit-build-core and pybind11 just installed
# (and Debian's cmake and ninja) instead of whatever an isolated build env would download.
if [ "${DFSS_EDITABLE:-0}" = 1 ]; then
  "${pip[@]}" --no-build-isolation -e "$root"
else
  "${pip[@]}" --no-build-isolation "$root"
fi

cd "$root"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider python/tests "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test-python.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
