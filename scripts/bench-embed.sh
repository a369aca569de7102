#!/usr/bin/env bash
# Sentence-embedding throughput of all-MiniLM-L6-v2 (encoder + mean pooling + L2 norm, fp32, tokenization
# excluded): PyTorch and ONNX Runtime baselines (scripts/bench-embed-baselines.py in .venv-torch), then
# `dfss bench embed` with dense and 2:4 attention if the binary has that command. Prints one markdown
# table with tokens/s and the ratios to torch and to the faster ONNX Runtime row of the same shape.
# Installs what is missing first (scripts/setup-embed-reference.sh: venv, pinned PyPI packages, model).
# Usage: bash scripts/bench-embed.sh [--threads 2] [--shapes 32x128,8x512] [--attention "dense 2:4"]
#        [--reps 10] [--impls torch,ort,ort-fused] [--dfss build/dfss] [--json FILE]
# --attention is space-separated, as for dfss (a comma list there is one pattern per layer).
# `dfss bench embed --json FILE` writes a list of rows with batch, seq, attention, ms, tokens_per_s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-torch
model=$root/models/all-MiniLM-L6-v2
threads=2 shapes=32x128,8x512 attention="dense 2:4" reps=10 impls=torch,ort,ort-fused json=""
dfss=$root/build/dfss
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --attention) attention=$2; shift 2 ;;
    --reps|--repeats) reps=$2; shift 2 ;;
    --impls) impls=$2; shift 2 ;;
    --dfss) dfss=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "bench-embed.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
start=$SECONDS

bash "$root/scripts/setup-embed-reference.sh"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
# Its own table goes to /dev/null (progress goes to stderr); one combined table comes at the end.
"$venv/bin/python" "$root/scripts/bench-embed-baselines.py" --model "$model" --shapes "$shapes" \
  --threads "$threads" --repeats "$reps" --impls "$impls" --json "$out/baselines.json" >/dev/null

dfss_files=()
if [ -x "$dfss" ] && "$dfss" bench embed --help 2>/dev/null | grep -q -- --shapes; then
  read -r -a attentions <<<"$attention"
  "$dfss" bench embed --model "$model" --shapes "$shapes" --attention "${attentions[@]}" \
    --threads "$threads" --reps "$reps" --json "$out/dfss.json" >&2
  dfss_files+=("$out/dfss.json")
else
  echo "bench-embed.sh: $dfss has no 'bench embed' command yet; baselines only" >&2
fi

echo
"$venv/bin/python" - "$out/baselines.json" "$threads" "$json" "${dfss_files[@]}" <<'EOF'
import json, sys
base_file, threads, json_out, dfss_files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def pick(row, *names):
    for n in names:
        if n in row:
            return row[n]
    raise KeyError(f"dfss bench embed row has none of {names}: {row}")

rows = [dict(implementation=r["implementation"], version=r["version"], gemm=r["gemm"], B=r["B"], L=r["L"],
             median_ms=r["median_ms"], tokens_per_s=r["tokens_per_s"], impl=r["impl"], other_load=r.get("other_load", 0))
        for r in json.load(open(base_file))]
for f in dfss_files:
    data = json.load(open(f))
    for r in (data.get("rows") or data.get("results") or []) if isinstance(data, dict) else data:
        B, L = int(pick(r, "B", "batch")), int(pick(r, "L", "seq", "seq_len", "sequence"))
        ms = float(pick(r, "ms", "median_ms"))
        tps = float(r.get("tokens_per_s", B * L / ms * 1e3))
        version = f"dfss {r.get('dfss_version', '?')}" + (f" ({r['isa']})" if "isa" in r else "")
        rows.append(dict(implementation=f"dfss, {pick(r, 'attention', 'pattern')} attention", version=version,
                         gemm="dfss", B=B, L=L, median_ms=ms, tokens_per_s=tps, impl="dfss", other_load=r.get("other_load", 0)))

def ratio(r, impls):
    ref = [x["tokens_per_s"] for x in rows if x["impl"] in impls and (x["B"], x["L"]) == (r["B"], r["L"])]
    return r["tokens_per_s"] / max(ref) if ref else None

columns = ["B x L", "implementation", "version", "median ms", "tokens/s", "vs torch", "vs best ORT"]
print(f"all-MiniLM-L6-v2 sentence embeddings, fp32, {threads} threads, tokenization excluded "
      "(ratios: tokens/s over the reference's)\n")
print("| " + " | ".join(columns) + " |")
print("|" + "|".join("---" for _ in columns) + "|")
shapes = list(dict.fromkeys((r["B"], r["L"]) for r in rows))
for shape in shapes:
    for r in (r for r in rows if (r["B"], r["L"]) == shape):
        r["vs_torch"], r["vs_best_ort"] = ratio(r, {"torch"}), ratio(r, {"ort", "ort-fused"})
        cells = [f"{r['B']} x {r['L']}", r["implementation"], r["version"], f"{r['median_ms']:.1f}",
                 f"{r['tokens_per_s']:.0f}"] + ["-" if x is None else f"{x:.2f}x" for x in (r["vs_torch"], r["vs_best_ort"])]
        print("| " + " | ".join(str(c) for c in cells) + " |")
print()
for version, gemm in dict.fromkeys((r["version"], r["gemm"]) for r in rows if r["impl"] != "dfss"):
    print(f"{version}: {gemm}")
busy = max((r.get("other_load") or 0 for r in rows), default=0)
if busy > 0.2:
    print(f"\nWarning: other processes kept up to {busy:.1f} cores busy during these timings; rerun on an idle machine.")
if json_out:
    json.dump(rows, open(json_out, "w"), indent=1)
EOF
echo "($threads threads; whole script took $((SECONDS - start)) s)" >&2
