"""python -m dfss.prune: prune a BERT-family encoder's linear layers to a block-structured N:M
pattern, optionally distill it against the dense model, evaluate both on the wiki task, and
save a folder that dfss embed runs on its block-sparse kernels.

    python -m dfss.prune --model models/all-MiniLM-L6-v2 --pattern 2:4x16 --method wanda \\
        --distill-steps 200 --out out/prune/minilm-2-4x16 --json out/prune/2-4x16.json

Exit code 2 with a message naming the argument or file on bad input.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np


def parse_args(argv):
    from .masks import parse_pattern

    parser = argparse.ArgumentParser(prog="python -m dfss.prune",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="Hugging Face model folder (BERT family)")
    parser.add_argument("--pattern", required=True, help="N:MxV, e.g. 2:4x16 (V defaults to 16)")
    parser.add_argument("--method", choices=("magnitude", "wanda"), default="wanda")
    parser.add_argument("--calibration-texts", type=int, default=128, metavar="N",
                        help="wiki training texts whose activations weigh the columns (wanda)")
    parser.add_argument("--distill-steps", type=int, default=0, help="0: one-shot pruning only")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per distillation step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128, help="tokens per text")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--test-limit", type=int, metavar="N", help="evaluate on N test pairs")
    parser.add_argument("--train-limit", type=int, metavar="N", help="distill on the first N "
                        "training pairs' texts")
    parser.add_argument("--out", type=Path, help="save the pruned model folder here")
    parser.add_argument("--json", type=Path, help="write the record (metrics, losses) here")
    parser.add_argument("--no-eval", action="store_true", help="skip the wiki evaluation")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.pattern = parse_pattern(args.pattern)
    except ValueError as e:
        parser.error(f"--{e}")
    for name in ("distill_steps", "threads"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')}: expected an int >= 0, got "
                         f"{getattr(args, name)}")
    for name in ("calibration_texts", "batch_size", "max_length", "test_limit", "train_limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected an int >= 1, got {value}")
    if not (args.lr > 0):
        parser.error(f"--lr: expected a positive number, got {args.lr}")
    if not (Path(args.model) / "config.json").is_file():
        parser.error(f"--model: {args.model} is not a model folder (no config.json)")
    return args


def _evaluate(student, teacher, tokenizer, task, max_length, dense_metrics):
    from ..finetune import evaluate

    metrics = evaluate.evaluate(student, tokenizer, task, max_length)
    docs = [p.document for p in task.test]
    a = evaluate.embed(student, tokenizer, docs, max_length)
    b = evaluate.embed(teacher, tokenizer, docs, max_length)
    cosine = (a * b).sum(axis=1) / np.maximum(
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    metrics["cosine_to_dense_mean"] = float(cosine.mean())
    metrics["cosine_to_dense_min"] = float(cosine.min())
    if dense_metrics is not None:
        metrics["p_vs_dense"] = evaluate.paired_permutation_p(
            metrics["reciprocal_ranks"], dense_metrics["reciprocal_ranks"])
    return metrics


def run(args) -> dict:
    import torch
    from transformers import AutoModel, AutoTokenizer

    import dfss.hf
    from ..finetune import data, evaluate, train
    from . import distill, export, masks

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dfss.hf.register()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    teacher = AutoModel.from_pretrained(args.model, attn_implementation="dfss",
                                        attention_probs_dropout_prob=0.0,
                                        hidden_dropout_prob=0.0).eval()
    masks.linear_layers(teacher)  # a clear error for a model that is not BERT-like
    student = copy.deepcopy(teacher)
    task = data.load_task("wiki", None, None, args.train_limit, args.test_limit)
    texts = [p.document for p in task.train] + [p.query for p in task.train]
    record = {"model": str(args.model), "pattern": str(args.pattern), "method": args.method,
              "calibration_texts": args.calibration_texts, "distill_steps": args.distill_steps,
              "batch_size": args.batch_size, "lr": args.lr, "max_length": args.max_length,
              "seed": args.seed, "threads": torch.get_num_threads()}

    norms = None
    if args.method == "wanda":
        norms = masks.activation_norms(teacher, tokenizer, texts[:args.calibration_texts],
                                       args.max_length)
    kept = masks.prune(student, args.pattern, args.method, norms)
    dense_metrics = None
    if not args.no_eval:
        dense_metrics = evaluate.evaluate(teacher, tokenizer, task, args.max_length)
        record["dense"] = dense_metrics
        record["one_shot"] = _evaluate(student, teacher, tokenizer, task, args.max_length,
                                       dense_metrics)
    if args.distill_steps > 0:
        record["distill"] = distill.distill(student, teacher, tokenizer, texts, kept, args.pattern,
                                            args.distill_steps, args.batch_size, args.lr,
                                            args.max_length, args.seed, not args.no_progress)
        if not args.no_eval:
            record["distilled"] = _evaluate(student, teacher, tokenizer, task, args.max_length,
                                            dense_metrics)
    if args.out is not None:
        def add_block_sparse(folder):
            export.write_block_sparse(folder, student, kept, args.pattern)

        train.save_model(student, tokenizer, str(args.model), args.out, record,
                         record_name="dfss_prune.json", before_commit=add_block_sparse)
    return record


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from ..finetune.data import DataFileError

    try:
        record = run(args)
    except (ValueError, DataFileError) as e:
        print(f"python -m dfss.prune: error: {e}", file=sys.stderr)
        return 2
    summary = {}
    for key in ("dense", "one_shot", "distilled"):
        if key in record:
            summary[key] = {k: v for k, v in record[key].items() if k != "reciprocal_ranks"}
    print(json.dumps({"pattern": record["pattern"], "method": record["method"], **summary},
                     indent=1))
    if args.json is not None:
        partial = args.json.with_name(args.json.name + ".partial")
        partial.write_text(json.dumps(record) + "\n")
        os.replace(partial, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
