#!/usr/bin/env bash
# What N:M sparse attention does to a real model on real text: builds the corpora
# (scripts/make-corpora.sh), embeds them with all-MiniLM-L6-v2 through `dfss embed` once per
# attention configuration, and prints one markdown table: fidelity to dense (per-text cosine:
# mean, min, 1st percentile over all texts), paired-passage retrieval (recall@1, @5, MRR,
# top-1 hits lost/gained against dense) and Reuters acq/crude topic retrieval (leave-one-out
# 1-NN accuracy, mAP, R-precision), with the wall time of the embedding runs.
#
#   bash scripts/eval-accuracy.sh [--max-len 256] [--threads 2] [--batch N]
#        [--configs "dense 2:4 1:2 ..."] [--json FILE|-] [--out DIR] [--reuse]
#        [--dfss build/dfss] [--model models/all-MiniLM-L6-v2]
#
# --configs is a space-separated list of --attention values, each optionally prefixed with
# a --precision and a slash ("int8/dense", "int8/2:4"; dense fp32 is always run, as the
# reference); --json writes all results as JSON (- : to stdout, instead of the table);
# --reuse keeps embeddings already in DIR (default out/accuracy/lenMAXLEN).
set -euo pipefail
cd "$(dirname "$0")/.."

max_len=256
threads=2
batch=""
configs="dense 2:4 1:2 1:4 dense,dense,2:4,2:4,2:4,2:4 2:4,2:4,2:4,2:4,dense,dense"
json=""
out=""
reuse=0
dfss=build/dfss
model=models/all-MiniLM-L6-v2
while [ $# -gt 0 ]; do
  case "$1" in
    --max-len) max_len="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --reuse) reuse=1; shift ;;
    --dfss) dfss="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "eval-accuracy: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="out/accuracy/len${max_len}"
corpora=out/corpora
py=/usr/bin/python3

if ! "$dfss" embed --help >/dev/null 2>&1; then
  echo "eval-accuracy: '$dfss embed' is not available (build dfss first)" >&2
  exit 2
fi
[ -f "$model/model.safetensors" ] || { echo "eval-accuracy: no model in $model (scripts/fetch-model.sh)" >&2; exit 2; }

bash scripts/make-corpora.sh --out "$corpora" >&2

case " $configs " in *" dense "*) ;; *) configs="dense $configs" ;; esac
# dense first: it is the reference of the others
configs="dense $(printf '%s\n' $configs | grep -vx dense | tr '\n' ' ')"

extra=()
[ -n "$batch" ] && extra+=(--batch "$batch")
declare -A inputs=([sentences]=sentences.txt [queries]=pairs_queries.txt
                   [targets]=pairs_targets.txt [reuters]=reuters_texts.txt)
results=()
for config in $configs; do
  slug=$(printf '%s' "$config" | tr ':,/' '-__')
  precision=fp32
  attention=$config
  case "$config" in */*) precision=${config%%/*}; attention=${config#*/} ;; esac
  precision_args=()
  [ "$precision" = fp32 ] || precision_args=(--precision "$precision")
  dir="$out/$slug"
  mkdir -p "$dir"
  seconds=0
  for name in sentences queries targets reuters; do
    if [ "$reuse" -eq 1 ] && [ -f "$dir/$name.npy" ] && [ -f "$dir/$name.seconds" ]; then
      :
    else
      echo "eval-accuracy: $config: embedding ${inputs[$name]} (max-len $max_len, $threads threads)" >&2
      start=$(date +%s.%N)
      "$dfss" embed --model "$model" --input "$corpora/${inputs[$name]}" --output "$dir/$name.npy" \
        --attention "$attention" --max-len "$max_len" --threads "$threads" "${extra[@]}" \
        "${precision_args[@]}" >&2
      end=$(date +%s.%N)
      awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' > "$dir/$name.seconds"
    fi
    seconds=$(awk -v a="$seconds" -v b="$(cat "$dir/$name.seconds")" 'BEGIN { printf "%.3f", a + b }')
  done
  $py scripts/eval-embedding-tasks.py --emb "$dir" --reference "$out/dense" --corpora "$corpora" \
    --label "$config" --seconds "$seconds" --json > "$dir/result.json"
  results+=("$dir/result.json")
done

[ "$json" = "-" ] || {
echo "Embedding quality, all-MiniLM-L6-v2, max-len $max_len, $threads threads ($(wc -l < "$corpora/pairs_queries.txt") pairs, $(wc -l < "$corpora/reuters_texts.txt") Reuters articles; seconds = wall time of the four embed runs on a shared machine):"
echo
$py scripts/eval-embedding-tasks.py --table "${results[@]}"
}
if [ -n "$json" ]; then
  $py - "$max_len" "$threads" "$json" "${results[@]}" <<'EOF'
import json, sys
max_len, threads, path, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
data = {"model": "all-MiniLM-L6-v2", "max_len": max_len, "threads": threads,
        "results": [json.load(open(f, encoding="utf-8")) for f in files]}
text = json.dumps(data, indent=1)
if path == "-":
    print(text)
else:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
EOF
fi
