#!/usr/bin/env python3
"""The fine-tuning results table: zero-shot and fine-tuned retrieval per sparsity and task.

Runs `python -m dfss.finetune` once per (task, sparsity, seed) in its own process: zero-shot
(--steps 0; seed-independent) and fine-tuned with the same recipe and budget. Each run's record
goes to OUT/<task>/<sparsity>-<seed>.json (or zero-shot-<sparsity>.json); runs whose record
exists are not repeated, so the script resumes. Then it writes OUT/summary.json and prints a
Markdown table: mean and spread (min-max) over seeds of MRR@10, R@1 (and topic kNN for wiki),
and the paired sign-flip permutation p-value of each row's per-query reciprocal ranks
(averaged over seeds) against dense fine-tuned (fine-tuned rows) or dense zero-shot
(zero-shot rows). Plot: /usr/bin/python3 scripts/plot-finetune.py OUT/summary.json.

Usage (from the repository root, in .venv-torch with the dfss package installed):
  .venv-torch/bin/python scripts/eval-finetune.py --tasks wiki,books --seeds 0,1,2
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--tasks", default="wiki,books")
    parser.add_argument("--sparsities", default="dense,2:4,1:4,1:8")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--wiki-steps", type=int, default=60)
    parser.add_argument("--wiki-batch", type=int, default=32)
    parser.add_argument("--books-steps", type=int, default=30)
    parser.add_argument("--books-batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "finetune")
    parser.add_argument("--report-only", action="store_true", help="run nothing, tabulate")
    return parser.parse_args()


def run(args, task, sparsity, seed, steps, batch, path):
    if path.exists() or args.report_only:
        return
    command = [sys.executable, "-m", "dfss.finetune", "--model", args.model, "--task", task,
               "--sparsity", sparsity, "--steps", str(steps), "--batch-size", str(batch),
               "--lr", str(args.lr), "--seed", str(seed), "--threads", str(args.threads),
               "--no-progress", "--json", str(path)]
    print("+", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def main():
    args = parse_args()
    from dfss.finetune.evaluate import paired_permutation_p

    tasks, sparsities = args.tasks.split(","), args.sparsities.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    budget = {"wiki": (args.wiki_steps, args.wiki_batch),
              "books": (args.books_steps, args.books_batch)}
    summary = {"model": args.model, "budget": budget, "lr": args.lr, "seeds": seeds, "rows": []}
    for task in tasks:
        folder = args.out / task
        folder.mkdir(parents=True, exist_ok=True)
        steps, batch = budget[task]
        for sparsity in sparsities:
            name = sparsity.replace(":", "-")
            run(args, task, sparsity, 0, 0, batch, folder / f"zero-shot-{name}.json")
            for seed in seeds:
                run(args, task, sparsity, seed, steps, batch, folder / f"{name}-{seed}.json")
        for mode in ("zero-shot", "fine-tuned"):
            records = {}
            for sparsity in sparsities:
                name = sparsity.replace(":", "-")
                paths = ([folder / f"zero-shot-{name}.json"] if mode == "zero-shot" else
                         [folder / f"{name}-{seed}.json" for seed in seeds])
                records[sparsity] = [r for r in map(load, paths) if r is not None]
            if not records.get("dense"):
                continue
            reference = np.mean([r["metrics"]["reciprocal_ranks"] for r in records["dense"]], 0)
            for sparsity, runs in records.items():
                if not runs:
                    continue
                row = {"task": task, "mode": mode, "sparsity": sparsity, "runs": len(runs)}
                for metric in ("mrr@10", "r@1", "topic_knn@10"):
                    values = [r["metrics"][metric] for r in runs if metric in r["metrics"]]
                    if values:
                        row[metric] = {"mean": float(np.mean(values)), "min": min(values),
                                       "max": max(values)}
                rr = np.mean([r["metrics"]["reciprocal_ranks"] for r in runs], 0)
                row["p_vs_dense"] = (None if sparsity == "dense" else
                                     paired_permutation_p(rr, reference))
                if mode == "fine-tuned":
                    row["tokens_per_second"] = float(np.median(
                        [r["tokens_per_second"] for r in runs]))
                    row["last_loss"] = float(np.mean([np.mean(r["loss"][-5:]) for r in runs]))
                summary["rows"].append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    def cell(row, metric):
        if metric not in row:
            return "–"
        m = row[metric]
        spread = f" ({m['min'] * 100:.1f}–{m['max'] * 100:.1f})" if row["runs"] > 1 else ""
        return f"{m['mean'] * 100:.1f}{spread}"

    # Tokens/s stay in summary.json only: runs are not timed in turns (docs/benchmarks.md has
    # the controlled throughput comparison).
    print("| task | sparsity | mode | runs | MRR@10 | R@1 | topic kNN | p vs dense |")
    print("|---|---|---|---|---|---|---|---|")
    for row in summary["rows"]:
        p = "–" if row["p_vs_dense"] is None else f"{row['p_vs_dense']:.3g}"
        print(f"| {row['task']} | {row['sparsity']} | {row['mode']} | {row['runs']} | "
              f"{cell(row, 'mrr@10')} | {cell(row, 'r@1')} | {cell(row, 'topic_knn@10')} | {p} |")


if __name__ == "__main__":
    main()
