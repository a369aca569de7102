#!/usr/bin/env python3
"""Plots MRR@10 against the attention sparsity, zero-shot and fine-tuned, one panel per task,
from the summary.json of scripts/eval-finetune.py (error bars: min-max over seeds).

Usage: /usr/bin/python3 scripts/plot-finetune.py out/finetune/summary.json [--out docs/finetune.png]
Needs matplotlib (Debian: python3-matplotlib, in scripts/install-deps.sh).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary")
    parser.add_argument("--out", default="docs/finetune.png")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    summary = json.load(open(args.summary, encoding="utf-8"))
    tasks = list(dict.fromkeys(r["task"] for r in summary["rows"]))
    figure, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        for mode, marker in (("zero-shot", "o--"), ("fine-tuned", "s-")):
            rows = [r for r in summary["rows"] if r["task"] == task and r["mode"] == mode]
            if not rows:
                continue
            x = list(range(len(rows)))
            y = [100 * r["mrr@10"]["mean"] for r in rows]
            low = [100 * (r["mrr@10"]["mean"] - r["mrr@10"]["min"]) for r in rows]
            high = [100 * (r["mrr@10"]["max"] - r["mrr@10"]["mean"]) for r in rows]
            axis.errorbar(x, y, yerr=[low, high], fmt=marker, capsize=3, label=mode)
            axis.set_xticks(x, [r["sparsity"] for r in rows])
        axis.set_title(f"{task}: MRR@10 (test split)")
        axis.set_xlabel("attention sparsity (every layer)")
        axis.set_ylabel("MRR@10 (%)")
        axis.grid(alpha=0.3)
        axis.legend()
    if args.title:
        figure.suptitle(args.title, fontsize=9)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
