"""python -m dfss.finetune: fine-tune and evaluate a sentence-embedding model with dfss attention.

    python -m dfss.finetune --model models/all-MiniLM-L6-v2 --task wiki --sparsity 2:4 \\
        --steps 60 --batch-size 32 --seed 0 --out out/finetune/wiki-2-4-s0
    python -m dfss.finetune --model ... --task books --sparsity 1:8 --steps 0   # zero-shot eval
    torchrun --nproc_per_node 2 -m dfss.finetune --threads 1 ...               # data-parallel
    torchrun --nproc_per_node 2 -m dfss.finetune --threads 1 --balance ...     # shares by cost

Exit code 2 with a message naming the argument or file on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .data import TASKS, DataFileError


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m dfss.finetune", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--model", required=True, help="Hugging Face model folder (BERT family)")
    parser.add_argument("--task", choices=TASKS, default="wiki")
    parser.add_argument("--data", type=Path, help="the wiki JSON or the books folder instead of "
                        "the installed ones")
    parser.add_argument("--train-limit", type=int, metavar="N", help="use the first N training "
                        "pairs only")
    parser.add_argument("--test-limit", type=int, metavar="N", help="evaluate on the first N test "
                        "pairs only")
    parser.add_argument("--sparsity", default="dense",
                        help="attention pattern of every layer: dense, N:M, topk:K, dsa:K")
    parser.add_argument("--dense-first", type=int, default=0, metavar="K",
                        help="keep the first K layers dense")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps (0: evaluate only)")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch (pairs)")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=256, help="tokens per text")
    parser.add_argument("--dropout", type=float, default=0.0, help="hidden dropout while training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--attn-implementation", default="dfss",
                        help="dfss, or sdpa/eager for comparison (dense only)")
    parser.add_argument("--balance", action="store_true",
                        help="under torchrun: give each rank a share of every global batch by "
                             "predicted cost (longest processing time first on c(query) + "
                             "c(document)) instead of an equal slice")
    parser.add_argument("--balance-cost", default=None, metavar="A,B",
                        help="c(s) = A*s*s + B*s for --balance (default: the fit in "
                             "docs/finetune.md)")
    parser.add_argument("--out", type=Path, help="save the fine-tuned model folder here")
    parser.add_argument("--json", type=Path, help="write the record (losses, metrics) here")
    parser.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for name in ("steps", "dense_first", "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')}: expected an int >= 0, got "
                         f"{getattr(args, name)}")
    for name in ("batch_size", "max_length", "train_limit", "test_limit"):
        if getattr(args, name) is None:
            continue
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected an int >= 1, got "
                         f"{getattr(args, name)}")
    if not (args.lr > 0):
        parser.error(f"--lr: expected a positive number, got {args.lr}")
    if not (0.0 <= args.dropout < 1.0):
        parser.error(f"--dropout: expected a number in [0, 1), got {args.dropout}")
    if not (Path(args.model) / "config.json").is_file():
        parser.error(f"--model: {args.model} is not a model folder (no config.json)")
    if args.balance_cost is not None:
        try:
            a, b = (float(x) for x in args.balance_cost.split(","))
        except ValueError:
            a = b = math.nan
        if not (math.isfinite(a) and math.isfinite(b) and a >= 0 and b >= 0 and a + b > 0):
            parser.error(f"--balance-cost: expected A,B: two numbers >= 0, not both 0, got "
                         f"{args.balance_cost!r}")
        if not args.balance:
            parser.error("--balance-cost: only with --balance")
        args.balance_cost = {"a": a, "b": b, "c0": 0.0}
    if args.attn_implementation != "dfss" and args.sparsity != "dense":
        parser.error(f"--sparsity: {args.sparsity} needs --attn-implementation dfss")
    return args


def run(args) -> dict:
    from tokenizers import Tokenizer

    from . import data, evaluate, train

    from .._ops import _normalize_sparsity

    sparsity = _normalize_sparsity(args.sparsity)
    tokenizer = None
    if args.task == "books":
        tokenizer = Tokenizer.from_file(str(Path(args.model) / "tokenizer.json"))
    task = data.load_task(args.task, tokenizer, args.data, args.train_limit, args.test_limit)
    config = train.TrainConfig(
        model=str(args.model), task=args.task, sparsity=sparsity, dense_first=args.dense_first,
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, max_length=args.max_length,
        dropout=args.dropout, seed=args.seed, threads=args.threads,
        attn_implementation=args.attn_implementation, balance=args.balance,
        **({"balance_cost": args.balance_cost} if args.balance_cost else {}))

    def evaluate_fn(model, tok):
        return evaluate.evaluate(model, tok, task, args.max_length)

    record = train.train(config, task, out=args.out, progress=not args.no_progress,
                         evaluate_fn=None if args.no_eval else evaluate_fn)
    return record


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        record = run(args)
    except (ValueError, TypeError, DataFileError) as error:
        print(f"python -m dfss.finetune: error: {error}", file=sys.stderr)
        return 2
    metrics = record.get("metrics")
    summary = {k: v for k, v in (metrics or {}).items() if k != "reciprocal_ranks"}
    if record["loss"]:
        summary["first_loss"], summary["last_loss"] = record["loss"][0], record["loss"][-1]
        summary["tokens_per_second"] = round(record["tokens_per_second"], 1)
    if os.environ.get("RANK", "0") != "0":  # rank 0 reports for all
        return 0
    if summary:
        print(json.dumps(summary))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(record) + "\n")
        partial.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
