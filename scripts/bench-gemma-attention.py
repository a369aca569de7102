#!/usr/bin/env python3
"""Speed and selection quality of dfss's sparse patterns on the real Q/K/V of Gemma-3-270M's
full-attention layers (4 query heads, 1 KV head, head dim 256, causal).

Captures Q/K/V of layers 5, 11, 17 in a dense forward of the first N tokens of a text (the
helpers of scripts/eval-gemma-perplexity.py: same model, text and tokens), then for each
layer and pattern times dfss.attention against dense dfss.attention on the same tensors
(median of --reps calls, timed in turns with dense, torch.get_num_threads() threads) and
reports, on every --stride-th query row of the last quarter of the sequence: kept_mass
(dense softmax mass on the kept keys, float64), recall (share of the exact top-K keys kept,
from dfss.selected_keys) and the relative output error ||O - O_dense|| / ||O_dense||.

Usage: .venv-torch/bin/python scripts/bench-gemma-attention.py --lengths 4096,16384
       --patterns topk:256,dsa:256,dsa:1024 [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

import dfss  # noqa: E402
from bench_timing import median_ms_in_turns  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def eval_module():
    spec = importlib.util.spec_from_file_location(
        "eval_gemma_perplexity", os.path.join(HERE, "eval-gemma-perplexity.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def capture(ev, tokenizer, model, tokens, n):
    captured = ev.register_functions()
    layers = ev.full_layers(model)
    model.set_attn_implementation(ev.CAPTURE)
    for module in ev._attention_modules(model):
        module.dfss_capture = module.layer_idx in layers
    ids = torch.tensor([[tokenizer.bos_token_id] + tokens[:n - 1]])
    with torch.inference_mode():
        model.model(input_ids=ids, use_cache=False)
    return {layer: captured[layer] for layer in layers}


def quality(q, k, v, scale, pattern, rows, dense_out):
    """kept_mass, recall against topk:K, relative error, on query rows `rows`."""
    n = k.shape[2]

    def kept_mask(sparsity):  # [1, H, rows, n] bool of the keys the op keeps
        keys, _ = dfss.selected_keys(q, k, v, None, True, scale, True, sparsity=sparsity)
        keys = keys[:, :, rows]
        mask = torch.zeros(keys.shape[:-1] + (n + 1,), dtype=torch.bool)
        mask.scatter_(-1, torch.where(keys < 0, n, keys), True)
        return mask[..., :n]

    kept = kept_mask(pattern)
    best = kept_mask(f"topk:{pattern.split(':')[1]}")
    s = (q[:, :, rows].double() @ k.double().transpose(-1, -2)) * scale
    s = s.masked_fill(torch.arange(n)[None, :] > rows[:, None], float("-inf"))
    p = s.softmax(-1)
    mass = (p * kept).sum(-1).mean().item()
    recall = ((kept & best).sum(-1).double() / best.sum(-1)).mean().item()
    out = dfss.attention(q, k, v, is_causal=True, scale=scale, enable_gqa=True, sparsity=pattern)
    error = ((out[:, :, rows].double() - dense_out[:, :, rows].double()).norm()
             / dense_out[:, :, rows].double().norm()).item()
    return mass, recall, error


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="4096")
    parser.add_argument("--patterns", default="topk:256,dsa:256,dsa:1024")
    parser.add_argument("--text", default="austen", choices=["austen", "kjv"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ev = eval_module()
    tokenizer, model = ev.load_model(ev.DEFAULT_GGUF)
    tokens = tokenizer(ev.load_text(args.text), add_special_tokens=False)["input_ids"]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"cpu: {cpu}; dfss isa {dfss.isa()}; {args.threads} threads; text {args.text}")
    print("| N | layer | pattern | ms | dense ms | speedup | kept_mass | recall | rel. error |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for n in [int(x) for x in args.lengths.split(",")]:
        layers = capture(ev, tokenizer, model, tokens, n)
        rows = torch.arange(n - n // 4, n, args.stride)
        for layer, data in layers.items():
            q, k, v, scale = (data["q"].contiguous(), data["k"].contiguous(),
                              data["v"].contiguous(), data["scale"])
            def run(pattern):
                return lambda: dfss.attention(q, k, v, is_causal=True, scale=scale,
                                              enable_gqa=True, sparsity=pattern)
            patterns = args.patterns.split(",")
            times = median_ms_in_turns({pattern: run(pattern) for pattern in ["dense"] + patterns},
                              args.reps)
            dense_ms = times["dense"]
            dense_out = run("dense")()
            for pattern in patterns:
                ms = times[pattern]
                mass, recall, error = quality(q, k, v, scale, pattern, rows, dense_out)
                row = dict(n=n, layer=layer, pattern=dfss._C.parse_pattern(pattern), ms=ms,
                           dense_ms=dense_ms, speedup=dense_ms / ms, kept_mass=mass,
                           recall=recall, rel_error=error, threads=args.threads, cpu=cpu,
                           text=args.text)
                results.append(row)
                print(f"| {n} | {layer} | {row['pattern']} | {ms:.1f} | {dense_ms:.1f} | "
                      f"{dense_ms / ms:.2f}x | {mass:.3f} | {recall:.3f} | {error:.3f} |",
                      flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
