#!/usr/bin/env python3
"""Cost-balanced vs equal-count data parallelism on a real mix of sequence lengths, measured.

Launch with torchrun (gloo), one thread per rank:
  .venv-torch/bin/torchrun --standalone --nproc_per_node 2 scripts/bench-balance.py \\
      --json out/bench-balance.json

1. Fit: every rank times the encoder's forward+backward (all-MiniLM-L6-v2, attn "dfss" with the
   chosen --sparsity) on micro-batches of --budget padded tokens at lengths 32..512, at the
   same time (as in training: the ranks share the memory system); the times are averaged over
   ranks and fitted to c(s) = a*s^2 + b*s + c0 per sequence (dfss.finetune.balance.CostModel).
2. Measure: the real mix (the wiki task's train extracts and the books task's 512-token train
   passages, tokenized, up to 512 tokens) is shuffled and cut into global batches; each step is
   planned three ways (dfss.finetune.balance.plan_step: equal-count; balanced by sequence;
   balanced by packed micro-batch), in turns, and run: each rank runs its
   micro-batches (forward+backward, gradients accumulated), then the gradients are all-reduced
   (DDP's sync point). Per step: the ranks' compute times; straggler wait = max - mean.
3. Simulate: the same planners for 8, 32 and 128 ranks on the fitted model and the real mix.
The loss is a stand-in (in-micro-batch contrastive on the pooled embeddings): the time is the
encoder's forward and backward, which is what the balance is about.
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--sparsity", default="dense")
    parser.add_argument("--budget", type=int, default=4096, help="padded tokens per micro-batch")
    parser.add_argument("--global-batch", type=int, default=64, help="sequences per step")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--fit-lengths", default="32,64,128,256,384,512")
    parser.add_argument("--fit-repeats", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--simulate-ranks", default="2,8,32,128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only the first N sequences of each task")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def cpu_name():
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def real_mix(args, tokenizer):
    """Token ids of every sequence of the mix: wiki extracts and books passages (query +
    document, one 512-token sequence), truncated to --max-length."""
    from tokenizers import Tokenizer

    from dfss.finetune import data

    wiki = data.load_task("wiki", train_limit=args.limit).train
    books = data.load_task("books", Tokenizer.from_file(str(Path(args.model) / "tokenizer.json")),
                           train_limit=args.limit).train
    texts = [p.document for p in wiki] + [p.query + " " + p.document for p in books]
    ids = tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    return ids, {"wiki_extracts": len(wiki), "books_passages": len(books)}


def collate(sequences, pad_id):
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, s in enumerate(sequences):
        input_ids[row, :len(s)] = torch.tensor(s)
        mask[row, :len(s)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def forward_backward(encoder, features):
    embeddings = encoder.embed(features)
    logits = 20.0 * embeddings @ embeddings.T
    F.cross_entropy(logits, torch.arange(len(logits))).backward()


def all_mean(values):
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return (tensor / dist.get_world_size()).tolist()


def all_values(value):
    parts = [torch.zeros(1, dtype=torch.float64) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, torch.tensor([value], dtype=torch.float64))
    return [float(p) for p in parts]


def main():
    args = parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    from dfss.finetune import balance, train

    config = train.TrainConfig(model=args.model, sparsity=args.sparsity)
    model, tokenizer = train.load_model(config)
    model.train()
    encoder = train.PairEncoder(model)
    params = [p for p in model.parameters() if p.requires_grad]
    pad = tokenizer.pad_token_id
    rng = np.random.default_rng(args.seed + rank)
    vocabulary = len(tokenizer)

    # 1. Fit the cost model.
    fit_lengths = [int(s) for s in args.fit_lengths.split(",")]
    measured = []
    for s in fit_lengths:
        count = max(1, args.budget // s)
        features = collate([rng.integers(1000, vocabulary, s).tolist() for _ in range(count)], pad)
        times = []
        for _ in range(args.fit_repeats + 1):
            model.zero_grad(set_to_none=True)
            dist.barrier()
            tick = time.perf_counter()
            forward_backward(encoder, features)
            times.append(time.perf_counter() - tick)
        measured.append((s, count, statistics.median(times[1:])))
    seconds = all_mean([m[2] for m in measured])
    cost = balance.CostModel.fit([m[0] for m in measured], seconds, [m[1] for m in measured])

    # 2. Measure both plans on the real mix, in turns.
    sequences, mix = real_mix(args, tokenizer)
    lengths = [len(s) for s in sequences]
    order = np.random.default_rng(args.seed).permutation(len(sequences))
    steps = []
    for step in range(args.steps):
        batch = order[step * args.global_batch:(step + 1) * args.global_batch]
        batch_lengths = [lengths[i] for i in batch]
        record = {}
        modes = ["equal_count", "balanced", "balanced_micro_batches"]
        for mode in modes[step % 3:] + modes[:step % 3]:  # in turns, rotating the order
            plan = balance.plan_step(batch_lengths, cost, world, args.budget,
                                     balanced=mode != "equal_count",
                                     granularity="micro_batch" if mode.endswith("batches")
                                     else "sequence")
            model.zero_grad(set_to_none=True)
            dist.barrier()
            tick = time.perf_counter()
            for micro_batch in plan[rank]:
                forward_backward(encoder, collate([sequences[batch[i]] for i in micro_batch], pad))
            compute = time.perf_counter() - tick
            flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                              for p in params])
            dist.all_reduce(flat)  # every rank waits here for the slowest
            step_time = time.perf_counter() - tick
            times = all_values(compute)
            predicted = [sum(cost.batch_cost([batch_lengths[i] for i in mb]) for mb in mbs)
                         for mbs in plan]
            record[mode] = {"compute": times, "step": max(all_values(step_time)),
                            "wait": max(times) - statistics.mean(times),
                            "predicted": predicted,
                            "micro_batches": [len(mbs) for mbs in plan],
                            "tokens": [sum(batch_lengths[i] for mb in mbs for i in mb)
                                       for mbs in plan]}
        steps.append(record)
        if rank == 0:
            print(f"step {step}: " + ", ".join(
                f"{m} compute {['%.2f' % t for t in r['compute']]} s wait {r['wait']:.2f} s"
                for m, r in record.items()), file=sys.stderr, flush=True)

    if rank == 0:
        totals = {m: {"step_seconds": sum(s[m]["step"] for s in steps),
                      "straggler_wait": sum(s[m]["wait"] for s in steps)}
                  for m in ("equal_count", "balanced", "balanced_micro_batches")}
        simulated = {}
        for ranks in [int(r) for r in args.simulate_ranks.split(",")]:
            per_rank = args.global_batch // 2
            simulated[ranks] = balance.simulate(lengths, cost, ranks, per_rank * ranks,
                                                args.budget, seed=args.seed)
        result = {"cpu": cpu_name(), "ranks": world, "threads_per_rank": 1,
                  "sparsity": args.sparsity, "budget": args.budget,
                  "global_batch": args.global_batch, "mix": mix,
                  "lengths": {"median": float(np.median(lengths)), "max": max(lengths),
                              "share_over_256": float(np.mean(np.array(lengths) > 256))},
                  "fit": {"lengths": fit_lengths, "counts": [m[1] for m in measured],
                          "seconds": seconds, "cost": cost.to_dict()},
                  "steps": steps, "totals": totals,
                  "wait_ratio": totals["equal_count"]["straggler_wait"]
                  / max(totals["balanced"]["straggler_wait"], 1e-12),
                  "speedup": totals["equal_count"]["step_seconds"]
                  / totals["balanced"]["step_seconds"],
                  "wait_ratio_micro_batches": totals["equal_count"]["straggler_wait"]
                  / max(totals["balanced_micro_batches"]["straggler_wait"], 1e-12),
                  "simulated": simulated}
        print(json.dumps({k: result[k] for k in ("cpu", "fit", "totals", "wait_ratio",
                                                 "wait_ratio_micro_batches", "speedup")},
                         indent=1))
        for ranks, sim in simulated.items():
            print(f"simulated {ranks} ranks: wait ratio {sim['wait_ratio']:.2f}, "
                  f"speedup {sim['speedup']:.3f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
