#!/usr/bin/env bash
# Writes the real-text corpora of the embedding-quality evaluation into out/corpora/
# (sentences, paired passages, Reuters acq/crude topic set; see scripts/make-corpora.py).
# Installs the Debian packages holding the texts if missing. Same output on every run.
# Arguments are passed to scripts/make-corpora.py (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# bible-kjv: the `bible` program that decodes bible-kjv-text; r-cran-janeaustenr pulls in R.
packages=(python3 r-cran-tm r-cran-janeaustenr bible-kjv bible-kjv-text fortunes)
bash scripts/apt-install.sh "${packages[@]}"
/usr/bin/python3 scripts/make-corpora.py "$@"
