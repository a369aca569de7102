#!/usr/bin/env python3
"""The weight-pruning accuracy table: all-MiniLM-L6-v2 on the wiki task (docs/finetune.md),
dense vs block-sparse linear layers, one-shot (magnitude and Wanda) and Wanda + distillation.

One process: the dense model is evaluated once and every run is compared with it (cosine of
the test documents' embeddings, MRR@10, R@1, topic kNN, paired permutation p-value). Each
run's record goes to OUT/<pattern>-<method>[-distill<steps>].json and is not repeated if it
exists (the script resumes); then a Markdown table is printed. Distilled models are saved to
OUT/minilm-<pattern> (the folder dfss embed runs on its block-sparse kernels; the last run
of a pattern wins).

Usage (from the repository root, in .venv-torch with the dfss package installed):
  .venv-torch/bin/python scripts/eval-prune.py --patterns 2:4x16,1:4x16 --distill-steps 300
  .venv-torch/bin/python scripts/eval-prune.py --patterns 2:4x16 --distill-steps 1200
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--patterns", default="2:4x16,1:4x16")
    parser.add_argument("--methods", default="magnitude,wanda", help="one-shot methods")
    parser.add_argument("--distill-steps", default="300",
                        help="Wanda + distillation: steps, comma-separated (0: none)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--calibration-texts", type=int, default=128)
    parser.add_argument("--layers", default="all",
                        help="linear layers to prune (python -m dfss.prune --layers)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "prune")
    parser.add_argument("--report-only", action="store_true")
    return parser.parse_args()


def main():
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from dfss.finetune import data
    from dfss.prune import __main__ as prune
    from dfss.prune.masks import parse_layer_kinds, parse_pattern

    layers = parse_layer_kinds(args.layers)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for text in args.patterns.split(","):
        pattern = parse_pattern(text)
        name = str(pattern).replace(":", "-")
        if args.layers != "all":
            name += "-" + args.layers.replace(",", "_")
        for method in args.methods.split(","):
            runs.append((pattern, method, 0, args.out / f"{name}-{method}.json", None))
        for steps in (int(text) for text in args.distill_steps.split(",")):
            if steps > 0:
                runs.append((pattern, "wanda", steps, args.out / f"{name}-wanda-distill{steps}.json",
                             args.out / f"minilm-{name}"))
    todo = [run for run in runs if not run[3].exists()]
    if todo and not args.report_only:
        teacher, tokenizer = prune.load_teacher(args.model, args.threads)
        task = data.load_task("wiki", None, None, None, None)
        dense = prune.evaluate_dense(teacher, tokenizer, task, args.max_length)
        for pattern, method, steps, path, folder in todo:
            print(f"+ {pattern} {method} distill {steps}", file=sys.stderr, flush=True)
            run_args = argparse.Namespace(
                model=args.model, pattern=pattern, method=method, layers=layers,
                calibration_texts=args.calibration_texts, distill_steps=steps,
                batch_size=args.batch_size, lr=args.lr, max_length=args.max_length,
                seed=args.seed, out=folder, no_progress=True)
            record = prune.prune_one(run_args, teacher, tokenizer, task, dense)
            partial = path.with_name(path.name + ".partial")
            partial.write_text(json.dumps(record) + "\n")
            os.replace(partial, path)

    print("| weights | zeros | method | MRR@10 | R@1 | topic kNN | cosine to dense (mean, min) "
          "| p vs dense |")
    print("|---|---|---|---|---|---|---|---|")
    dense_row = None
    for pattern, method, steps, path, _ in runs:
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        if dense_row is None:
            d = record["dense"]
            dense_row = (f"| dense | 0 % | – | {100 * d['mrr@10']:.1f} | {100 * d['r@1']:.1f} | "
                         f"{100 * d['topic_knn@10']:.1f} | 1 | – |")
            print(dense_row)
        m = record["distilled"] if steps else record["one_shot"]
        label = f"{method} + distill {steps} steps" if steps else f"{method}, one-shot"
        weights = str(pattern) if args.layers == "all" else f"{pattern} ({args.layers} only)"
        zeros = record.get("zeros_fraction", pattern.sparsity)
        print(f"| {weights} | {100 * zeros:.0f} % | {label} | {100 * m['mrr@10']:.1f} | "
              f"{100 * m['r@1']:.1f} | {100 * m['topic_knn@10']:.1f} | "
              f"{m['cosine_to_dense_mean']:.4f}, {m['cosine_to_dense_min']:.4f} | "
              f"{m['p_vs_dense']:.2g} |")


if __name__ == "__main__":
    main()
