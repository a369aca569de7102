#!/usr/bin/env bash
# "One binary for every x86-64", tested rather than assumed: runs a representative part of the
# test suite (every kernel family and pattern, one real-model embedding) and the CLI under
# user-mode emulation of older CPUs (Debian's qemu-user):
#   Nehalem     SSE4.2, no AVX: dfss must pick and run its scalar kernels;
#   Haswell-v4  AVX2 + FMA, no AVX-512: the avx2 kernels.
# On both, --precision bf16 (oneDNN's bf16 GEMM needs AVX-512) must be refused with exit 2.
# An AVX or AVX-512 instruction reached on such a CPU stops the run with SIGILL. The CLI's
# outputs under emulation are compared with the native run's.
#   scripts/test-isa-emulation.sh [BUILD_DIR]   (default build/, as scripts/test.sh builds it)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/apt-install.sh qemu-user python3-numpy
bash scripts/fetch-model.sh
export DFSS_TOKENIZER_VOCAB="$PWD/models/all-MiniLM-L6-v2/vocab.txt"
unset DFSS_ISA
# Debian's interpreter, which has python3-numpy (the one on PATH may be another).
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Small cases of every kernel family on the emulated CPU's kernels: forward fused, unfused and
# reference (masks, causal, lengths, bf16, N:M patterns), N:M selection parity, the backward
# against its naive reference, direct decode, top-k selection, the block-sparse linear layers
# (alone and in the encoder), and the BERT encoder; the CLI
# suites are left out (they start native children) and the CLI runs below instead.
filter='AttentionValidation.*:CompressedScores.*:AllTargets/AttentionEdgeCases.*'
filter+=':Grid/AttentionImplGrid.*q65k63_d32v32*'
filter+=':Grid/AttentionImplGrid.*q383k385_d128v32_lengths_f32in_f32out_nm*'
filter+=':Grid/BackwardGrid.FusedMatchesNaiveOnEveryIsa/B2H2kv2_q5k7*'
filter+=':Grid/BackwardGrid.FusedMatchesNaiveOnEveryIsa/*q5k260*nm3of7'
filter+=':Grid/BackwardGrid.FusedMatchesNaiveOnEveryIsa/*q100k257*nm2of8'
filter+=':AttentionBackward.ReferenceMatchesFiniteDifferences*:AttentionBackward.Prune*'
filter+=':Patterns/SelectionParity.ExactTies/2of4:Patterns/SelectionParity.GaussianInputs/3of7'
filter+=':DecodeDirect.BitIdenticalForAnyThreadCount:Topk.*'
filter+=':TinyEncoder.EmbeddingsAreUnitVectors:TinyEncoder.SparseAttentionChangesLongTexts'
filter+=':SparseLinear.*:BlockSparseMatrix.*:BlockSparseModel.FileLayersMatchTheDenseRuntime*'
filter+=':Quantize*:QuantizedLinear.*:SparseGemmInt8.*:TinyEncoder.Int8*'
filter+=':RoundRowToBf16.*:Bf16Linear.*:TinyEncoder.Bf16*'
filter+='-*StridedViewsMatchContiguous*'

"$py" - "$work" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(7)
for name, shape in (("q", (1, 2, 70, 64)), ("k", (1, 2, 133, 64)), ("v", (1, 2, 133, 64))):
    np.save(f"{sys.argv[1]}/{name}.npy", rng.standard_normal(shape, dtype=np.float32))
PY
printf '%s\n' "Sparse attention keeps the largest scores." "A second, unrelated line of text." \
  "Short." > "$work/texts.txt"

run_cli_cases() {  # $1: output prefix; the rest: the command prefix (empty for native)
  local prefix=$1
  shift
  for pattern in dense 2:4 1:8; do
    "$@" "$build/dfss" attention --q "$work/q.npy" --k "$work/k.npy" --v "$work/v.npy" \
      --causal --pattern "$pattern" --out "$work/$prefix-attn-${pattern/:/of}.npy"
  done
  "$@" "$build/dfss" embed --model models/all-MiniLM-L6-v2 --input "$work/texts.txt" \
    --attention 2:4 --output "$work/$prefix-embed.npy"
  "$@" "$build/dfss" embed --model models/all-MiniLM-L6-v2 --input "$work/texts.txt" \
    --weights 2:4x16 --output "$work/$prefix-embed-weights.npy"
  "$@" "$build/dfss" embed --model models/all-MiniLM-L6-v2 --input "$work/texts.txt" \
    --precision int8 --output "$work/$prefix-embed-int8.npy"
  "$@" "$build/dfss" embed --model models/all-MiniLM-L6-v2 --input "$work/texts.txt" \
    --precision int8 --weights 1:4x16 --output "$work/$prefix-embed-int8-weights.npy"
}

# qemu warns about CPU features its emulator lacks (not ones dfss uses): kept out of the log.
run_emulated() {
  local cpu=$1
  shift
  qemu-x86_64 -cpu "$cpu" "$@" 2> >(grep -v "TCG doesn't support requested feature" >&2)
}

run_cli_cases native
for cpu_isa in Nehalem:scalar Haswell-v4:avx2; do
  cpu=${cpu_isa%%:*}
  isa=${cpu_isa##*:}
  emulate=(run_emulated "$cpu")
  echo "== $cpu: expecting the $isa kernels"
  "${emulate[@]}" "$build/dfss" info | tee "$work/info.txt"
  grep -Eq "^isa detected: +$isa$" "$work/info.txt" || {
    echo "test-isa-emulation: on $cpu dfss should detect $isa" >&2
    exit 1
  }
  if ! "${emulate[@]}" "$build/tests/dfss_tests" --gtest_brief=1 --gtest_filter="$filter" \
    > "$work/tests.log" 2>&1; then
    cat "$work/tests.log"
    echo "test-isa-emulation: the test suite failed on $cpu" >&2
    exit 1
  fi
  grep -E '^\[(==========|  PASSED  |  SKIPPED )\] ' "$work/tests.log"
  run_cli_cases "$cpu" "${emulate[@]}"
  # No AVX-512 here, so no bf16 GEMM: --precision bf16 must be refused, not run slowly.
  status=0
  "${emulate[@]}" "$build/dfss" embed --model models/all-MiniLM-L6-v2 --input "$work/texts.txt" \
    --precision bf16 --output "$work/$cpu-embed-bf16.npy" 2> "$work/bf16.err" || status=$?
  if [ "$status" -ne 2 ] || ! grep -q "bf16 precision needs a CPU with AVX-512" "$work/bf16.err" ||
    [ -e "$work/$cpu-embed-bf16.npy" ]; then
    cat "$work/bf16.err"
    echo "test-isa-emulation: on $cpu --precision bf16 should exit 2 and say why" >&2
    exit 1
  fi
  "$py" - "$work" "$cpu" <<'PY'
import sys, numpy as np
work, cpu = sys.argv[1], sys.argv[2]
for name in ("attn-dense", "attn-2of4", "attn-1of8", "embed", "embed-weights", "embed-int8",
             "embed-int8-weights"):
    native = np.load(f"{work}/native-{name}.npy")
    emulated = np.load(f"{work}/{cpu}-{name}.npy")
    err = float(np.max(np.abs(native - emulated)))
    print(f"{cpu} {name}: max |native - emulated| = {err:.2e}")
    if native.shape != emulated.shape or not np.isfinite(emulated).all() or err > 1e-4:
        sys.exit(f"test-isa-emulation: {cpu} {name} differs from the native run")
PY
done
echo "test-isa-emulation: passed"
