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
    from .masks import parse_layer_kinds, parse_pattern

    parser = argparse.ArgumentParser(prog="python -m dfss.prune",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="Hugging Face model folder (BERT family)")
    parser.add_argument("--pattern", required=True, help="N:MxV, e.g. 2:4x16 (V defaults to 16)")
    parser.add_argument("--method", choices=("magnitude", "wanda"), default="wanda")
    parser.add_argument("--layers", default="all",
                        help="which linear layers to prune (the others stay dense): all, ffn, "
                             "attention, or a comma list of qkv, attention-output, ffn-in, ffn-out")
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
        args.layers = parse_layer_kinds(args.layers)
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


def embed_test(model, tokenizer, task, max_length) -> dict:
    """The test split's query and document embeddings of `model`."""
    from ..finetune import evaluate

    return {"q": evaluate.embed(model, tokenizer, [p.query for p in task.test], max_length),
            "d": evaluate.embed(model, tokenizer, [p.document for p in task.test], max_length)}


def metrics_of(embeddings: dict, task, dense: dict | None = None) -> dict:
    """The wiki metrics of test embeddings; with the dense model's (embeddings and metrics),
    also the documents' cosine to the dense embeddings and the paired test against dense."""
    from ..finetune import evaluate

    rr = evaluate.reciprocal_ranks(embeddings["q"], embeddings["d"])
    metrics = {"test_pairs": len(task.test), "mrr@10": float(rr.mean()),
               "r@1": float((rr == 1.0).mean()), "reciprocal_ranks": rr.tolist(),
               "topic_knn@10": evaluate.topic_knn_accuracy(embeddings["d"],
                                                           [p.label for p in task.test])}
    if dense is not None:
        a, b = embeddings["d"], dense["embeddings"]["d"]
        cosine = (a * b).sum(axis=1) / np.maximum(
            np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
        metrics["cosine_to_dense_mean"] = float(cosine.mean())
        metrics["cosine_to_dense_min"] = float(cosine.min())
        metrics["p_vs_dense"] = evaluate.paired_permutation_p(
            metrics["reciprocal_ranks"], dense["metrics"]["reciprocal_ranks"])
    return metrics


def evaluate_dense(teacher, tokenizer, task, max_length) -> dict:
    embeddings = embed_test(teacher, tokenizer, task, max_length)
    return {"embeddings": embeddings, "metrics": metrics_of(embeddings, task)}


def prune_one(args, teacher, tokenizer, task, dense: dict | None, norms=None) -> dict:
    """Prunes a copy of `teacher` as `args` asks, distills and saves it if asked; returns the
    record. `dense` (evaluate_dense) is computed once by the caller for any number of runs."""
    import torch

    from ..finetune import train
    from . import distill, export, masks

    torch.manual_seed(args.seed)
    student = copy.deepcopy(teacher)
    texts = [p.document for p in task.train] + [p.query for p in task.train]
    record = {"model": str(args.model), "pattern": str(args.pattern), "method": args.method,
              "layers": list(args.layers),
              "calibration_texts": args.calibration_texts, "distill_steps": args.distill_steps,
              "batch_size": args.batch_size, "lr": args.lr, "max_length": args.max_length,
              "seed": args.seed, "threads": torch.get_num_threads()}
    if args.method == "wanda" and norms is None:
        norms = masks.activation_norms(teacher, tokenizer, texts[:args.calibration_texts],
                                       args.max_length)
    kept = masks.prune(student, args.pattern, args.method, norms, args.layers)
    linears = masks.linear_layers(student)
    total = sum(layer.weight.numel() for layer in linears.values())
    record["zeros_fraction"] = args.pattern.sparsity * sum(
        linears[name].weight.numel() for name in kept) / total
    if dense is not None:
        record["dense"] = dense["metrics"]
        record["one_shot"] = metrics_of(embed_test(student, tokenizer, task, args.max_length),
                                        task, dense)
    if args.distill_steps > 0:
        record["distill"] = distill.distill(student, teacher, tokenizer, texts, kept, args.pattern,
                                            args.distill_steps, args.batch_size, args.lr,
                                            args.max_length, args.seed, not args.no_progress)
        if dense is not None:
            record["distilled"] = metrics_of(
                embed_test(student, tokenizer, task, args.max_length), task, dense)
    if args.out is not None:
        def add_block_sparse(folder):
            export.write_block_sparse(folder, student, kept, args.pattern)

        train.save_model(student, tokenizer, str(args.model), args.out, record,
                         record_name="dfss_prune.json", before_commit=add_block_sparse)
    return record


def load_teacher(model: str, threads: int):
    import torch
    from transformers import AutoModel, AutoTokenizer

    import dfss.hf
    from . import masks

    if threads > 0:
        torch.set_num_threads(threads)
    dfss.hf.register()
    tokenizer = AutoTokenizer.from_pretrained(model)
    teacher = AutoModel.from_pretrained(model, attn_implementation="dfss",
                                        attention_probs_dropout_prob=0.0,
                                        hidden_dropout_prob=0.0).eval()
    masks.linear_layers(teacher)  # a clear error for a model that is not BERT-like
    return teacher, tokenizer


def run(args) -> dict:
    from ..finetune import data

    teacher, tokenizer = load_teacher(str(args.model), args.threads)
    task = data.load_task("wiki", None, None, args.train_limit, args.test_limit)
    dense = None if args.no_eval else evaluate_dense(teacher, tokenizer, task, args.max_length)
    return prune_one(args, teacher, tokenizer, task, dense)


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
