#!/usr/bin/env bash
# PyTorch CPU attention baselines for dfss (B=1, H=12, d=64), in three configurations:
#   (a) torch from PyPI (pinned in requirements-bench-torch.txt) in .venv-torch: fused SDPA and bmm-softmax-bmm
#   (b) Debian's python3-torch 1.13 with the BLAS Debian gives it by default (netlib reference): bmm-softmax-bmm
#   (c) the same Debian torch with OpenBLAS swapped in for this process only
# Debian's torch does bf16 matmuls with oneDNN, not BLAS, so (b) and (c) differ only in fp32.
# Installs what is missing (apt-get, pip), then prints one markdown table.
# Usage: scripts/bench-pytorch.sh [--threads N] [--lengths 384,1024] [--skip-slow] [--json FILE]
#        [--install-only] [other scripts/bench-pytorch.py options, e.g. --repeats 5]
# --skip-slow leaves out L > 1024 for (b), where a call takes ~9 s at L=4096.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-torch
openblas=$venv/debian-openblas
threads=2 skip_slow=0 install_only=0 json="" pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --skip-slow) skip_slow=1; shift ;;
    --install-only) install_only=1; shift ;;
    --json) json=$2; shift 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
start=$SECONDS

# --- install, skipping whatever is already there ---
bash "$root/scripts/apt-install.sh" python3-venv python3-torch libblas3
# Always /usr/bin/python3: Debian's torch lives in its dist-packages, and a pyenv python3 may shadow it on PATH.
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv with torch from PyPI (first time only: ~3 GB download, 4.3 GB on disk)" >&2
  /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --no-cache-dir --no-deps -r "$root/scripts/requirements-bench-torch.txt"
# OpenBLAS is unpacked rather than installed: installing libopenblas0-pthread would switch the system-wide
# libblas.so.3 alternative (numpy, anything else linking BLAS) to it; here only (c) gets it via LD_LIBRARY_PATH.
if [ ! -e "$openblas/libblas.so.3" ]; then
  tmp=$(mktemp -d); chmod 755 "$tmp"  # readable by apt's _apt download user
  (cd "$tmp" && { apt-get download -qq libopenblas0-pthread 2>/dev/null ||
    { $sudo apt-get update -qq && apt-get download -qq libopenblas0-pthread; }; })
  dpkg-deb -x "$tmp"/libopenblas0-pthread_*.deb "$tmp/x"
  mkdir -p "$openblas"
  cp -a "$(dirname "$(find "$tmp/x" -name libblas.so.3)")"/. "$openblas"/
  rm -rf "$tmp"
fi
[ "$install_only" = 1 ] && exit 0

# --- measure ---
reference_blas=$(dirname "$(dpkg -L libblas3 | grep '/blas/libblas.so.3$')")
echo "system libblas.so.3 -> $(readlink -f "$(dirname "$reference_blas")/libblas.so.3")" >&2
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
bench=("$root/scripts/bench-pytorch.py" --threads "$threads" "${pass[@]}")
slow=(); [ "$skip_slow" = 1 ] && slow=(--max-length 1024)
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
# Each run's own table goes to /dev/null (progress goes to stderr); one combined table comes at the end.
"$venv/bin/python" "${bench[@]}" --label "(a) PyPI torch" --json "$out/a.json" >/dev/null
# Pin each BLAS by path, whatever the system alternative currently points at. -s: ignore ~/.local packages.
LD_LIBRARY_PATH=$reference_blas /usr/bin/python3 -s "${bench[@]}" "${slow[@]}" --label "(b) Debian torch" --json "$out/b.json" >/dev/null
# OpenBLAS 0.3.21 takes Zen 5 for Haswell (AVX2 kernels), and some environments preset OPENBLAS_CORETYPE=Haswell;
# its AVX-512 SkylakeX kernels run on any CPU with avx512f. Elsewhere let OpenBLAS detect the CPU.
coretype=(-u OPENBLAS_CORETYPE); grep -qw avx512f /proc/cpuinfo && coretype=(OPENBLAS_CORETYPE=SkylakeX)
env "${coretype[@]}" LD_LIBRARY_PATH="$openblas" \
  /usr/bin/python3 -s "${bench[@]}" --label "(c) Debian torch + OpenBLAS" --json "$out/c.json" >/dev/null
echo
/usr/bin/python3 "$root/scripts/bench-pytorch.py" --combine "$out"/{a,b,c}.json ${json:+--json "$json"}
echo "($threads threads; whole script took $((SECONDS - start)) s)" >&2
