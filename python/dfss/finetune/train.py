"""Contrastive fine-tuning of a sentence-embedding model with dfss attention in the loop.

The model is a Hugging Face encoder (all-MiniLM-L6-v2 by default) loaded with
attn_implementation="dfss", its attention sparsity set per layer by dfss.hf.set_sparsity, and
its embedding the mean of the last hidden states over real tokens, L2-normalized (what the
sentence-transformers model does). Loss: in-batch negatives (each query's own document against
every other document of the global batch, cross-entropy over scale * cosine).

Data-parallel under torch.distributed (gloo, launched by torchrun): every rank encodes its
share of the global batch, the embeddings are all-gathered and every rank computes the loss
of the whole global batch, so the loss and the update equal those of one process running the
same global batch (up to summation order). DistributedDataParallel averages the gradients.
The shares are equal slices, or (balance=True) shares of balanced predicted cost with
balance.CostModel (Hydraulis-style), counting each rank's padding to its longest text, so that
no rank waits behind one holding the long texts; ranks then hold different numbers of pairs,
which the gather pads and trims.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .balance import CostModel
from .data import Task

# c(s) fitted from all-MiniLM-L6-v2's forward+backward times under dfss attention on Zen 3
# (docs/finetune.md, "Cost-balanced batches"): only the ratio a/b matters for the assignment.
DEFAULT_BALANCE_COST = {"a": 1.78e-7, "b": 1.10e-3, "c0": 0.0}

# Files of the source folder copied beside the new weights: sentence-transformers' (so that the
# saved folder loads there as the original did) and vocab.txt (dfss embed's tokenizer; a fast
# tokenizer saves only tokenizer.json).
_COPIED_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
                 "1_Pooling", "README.md", "vocab.txt")


@dataclass
class TrainConfig:
    model: str
    task: str = "wiki"
    sparsity: str = "dense"
    dense_first: int = 0
    steps: int = 60
    batch_size: int = 32
    lr: float = 5e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    scale: float = 20.0
    max_length: int = 256
    dropout: float = 0.0
    seed: int = 0
    threads: int = 0  # 0: torch's default
    attn_implementation: str = "dfss"
    balance: bool = False  # spread each global batch's pairs over the ranks by predicted cost
    balance_cost: dict = field(default_factory=lambda: dict(DEFAULT_BALANCE_COST))
    extra: dict = field(default_factory=dict)


class PairEncoder(torch.nn.Module):
    """Both sides of a batch of pairs in one forward, so that DistributedDataParallel sees one
    forward per backward (its gradient hooks then fire once per parameter)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def embed(self, features: dict) -> torch.Tensor:
        hidden = self.model(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def forward(self, queries: dict, documents: dict):
        return self.embed(queries), self.embed(documents)


def contrastive_loss(queries: torch.Tensor, documents: torch.Tensor, scale: float):
    logits = scale * queries @ documents.T
    return F.cross_entropy(logits, torch.arange(len(queries)))


def load_model(config: TrainConfig):
    import dfss.hf
    from transformers import AutoModel, AutoTokenizer

    dfss.hf.register()
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    # dfss attention has no dropout: attention dropout must be 0; hidden dropout is an option.
    model = AutoModel.from_pretrained(config.model, attn_implementation=config.attn_implementation,
                                      attention_probs_dropout_prob=0.0,
                                      hidden_dropout_prob=config.dropout)
    dfss.hf.set_sparsity(model, config.sparsity, dense_first=config.dense_first)
    return model, tokenizer


def tokenize(tokenizer, texts: list[str], max_length: int) -> dict:
    return dict(tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt"))


class _Distributed:
    """The torch.distributed state when launched by torchrun (WORLD_SIZE > 1)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("gloo")

    def gather(self, local: torch.Tensor, sizes: Optional[list[int]] = None) -> torch.Tensor:
        """The global batch's rows, differentiable in this rank's own rows only (each rank's
        loss then back-propagates into its own encoder; DDP sums the parts). sizes: every
        rank's row count when they differ (all equal if None); the parts are padded to the
        largest for all_gather and trimmed back."""
        if not self.enabled:
            return local
        rows = max(sizes) if sizes is not None else len(local)
        padded = local.detach()
        if len(local) < rows:
            padded = torch.cat([padded, padded.new_zeros((rows - len(local),) + local.shape[1:])])
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        torch.distributed.all_gather(parts, padded)
        if sizes is not None:
            parts = [part[:size] for part, size in zip(parts, sizes)]
        parts[self.rank] = local
        return torch.cat(parts)

    def all_values(self, value: float) -> list[float]:
        """value from every rank, in rank order."""
        if not self.enabled:
            return [value]
        parts = [torch.zeros(1, dtype=torch.float64) for _ in range(self.world)]
        torch.distributed.all_gather(parts, torch.tensor([value], dtype=torch.float64))
        return [float(p.item()) for p in parts]

    def total(self, value: float) -> float:
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item())

    def close(self):
        if self.enabled:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def batch_order(n_train: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """The global batches: a seeded permutation per epoch, cut into full batches."""
    if steps > 0 and n_train < batch_size:
        raise ValueError(f"batch_size: {batch_size} is larger than the {n_train} training pairs")
    rng = np.random.default_rng(seed)
    batches: list[np.ndarray] = []
    while len(batches) < steps:
        order = rng.permutation(n_train)
        batches += [order[i:i + batch_size] for i in range(0, n_train - batch_size + 1, batch_size)]
    return batches[:steps]


def _padded_cost(lengths, cost: CostModel) -> float:
    """A rank's forward: its queries padded to the longest query, its documents likewise."""
    return len(lengths) * (float(cost(max(q for q, _ in lengths)))
                           + float(cost(max(d for _, d in lengths))))


def rank_shares(batch: np.ndarray, world: int, lengths=None,
                cost: Optional[CostModel] = None) -> list[np.ndarray]:
    """Each rank's pairs of a global batch: equal slices, or (lengths: each pair's (query,
    document) token counts, and cost) shares of balanced padded cost. A rank pads its texts to
    its longest, so the pairs are sorted by length (longest documents first) and cut into
    contiguous runs, at the smallest bound on any run's padded cost that `world` runs can meet
    (bisection); long texts then share a rank instead of padding short ones. Deterministic, so
    every rank computes the same plan on its own."""
    if lengths is None:
        local = len(batch) // world
        return [batch[r * local:(r + 1) * local] for r in range(world)]
    order = sorted(range(len(batch)), key=lambda j: (-lengths[j][1], -lengths[j][0], j))

    def runs(bound: float) -> list[list[int]]:
        out, run, longest_q, longest_d = [], [], 0, 0
        for j in order:
            q, d = max(longest_q, lengths[j][0]), max(longest_d, lengths[j][1])
            if run and (len(run) + 1) * (float(cost(q)) + float(cost(d))) > bound:
                out.append(run)
                run, q, d = [], lengths[j][0], lengths[j][1]
            run.append(j)
            longest_q, longest_d = q, d
        return out + [run]

    low = max(_padded_cost([lengths[j]], cost) for j in order)
    high = _padded_cost([lengths[j] for j in order], cost)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if len(runs(middle)) <= world else (middle, high)
    plan = runs(high)
    while len(plan) < world:  # every rank gets a pair: halve the longest run (cost only falls)
        k = max(range(len(plan)), key=lambda r: (len(plan[r]), -r))
        plan[k:k + 1] = [plan[k][:len(plan[k]) // 2], plan[k][len(plan[k]) // 2:]]
    return [batch[np.asarray(sorted(run), dtype=np.int64)] for run in plan]


def save_model(model, tokenizer, source: str, out: Path, record: dict,
               record_name: str = "dfss_finetune.json", before_commit=None) -> None:
    """A model folder that dfss embed --model, transformers and sentence-transformers load.
    Written into a temporary folder and renamed, so that a failure leaves nothing half-written;
    before_commit(folder), if given, adds files to the temporary folder."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    # The source checkpoint's dropout rates, not the ones training ran with.
    source_config = json.loads((Path(source) / "config.json").read_text())
    for key in ("attention_probs_dropout_prob", "hidden_dropout_prob"):
        if key in source_config:
            setattr(model.config, key, source_config[key])
    model.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    for name in _COPIED_FILES:
        path = Path(source) / name
        if (partial / name).exists():
            continue
        if path.is_dir():
            shutil.copytree(path, partial / name)
        elif path.is_file():
            shutil.copy2(path, partial / name)
    (partial / record_name).write_text(json.dumps(record, indent=1) + "\n")
    if before_commit is not None:
        before_commit(partial)
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)


def train(config: TrainConfig, task: Task, out: Optional[Path] = None, progress: bool = True,
          evaluate_fn=None) -> dict:
    """Fine-tunes config.model on task.train; returns the record (config, loss per step,
    tokens/s, and evaluate_fn(model, tokenizer) of the result if given) and saves the model
    folder to `out` (rank 0 only) if given."""
    dist = _Distributed()
    if config.balance and config.batch_size < dist.world:
        raise ValueError(f"batch_size: {config.batch_size} is smaller than the {dist.world} "
                         "ranks (each rank needs a pair)")
    if not config.balance and config.batch_size % dist.world:
        raise ValueError(f"batch_size: {config.batch_size} is not divisible by the {dist.world} "
                         "ranks (--balance takes any batch of at least one pair per rank)")
    cost = CostModel.from_dict(config.balance_cost) if config.balance else None
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_model(config)
    model.train()
    encoder = PairEncoder(model)
    trained = encoder
    if dist.enabled:
        # find_unused_parameters: an encoder's pooler (BertModel's) takes no part in the loss.
        trained = torch.nn.parallel.DistributedDataParallel(encoder, find_unused_parameters=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    warmup = max(1, int(round(config.warmup * config.steps)))

    def schedule(step):  # linear warm-up, then linear decay to 0
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (config.steps - step) / max(1, config.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    batches = batch_order(len(task.train), config.batch_size, config.steps, config.seed)
    losses, step_seconds, tokens = [], [], 0.0
    # This rank's forward per step, and Σ over steps of the ranks' (max − mean) forward time: the
    # wait at the loss's all_gather, which balancing shrinks (the backward's wait at DDP's
    # all-reduce follows the same loads).
    encode_seconds, forward_wait, rank_pairs = [], 0.0, []

    bar = None
    if progress and dist.rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=config.steps, desc=f"{task.name} {config.sparsity}", unit="step")
    start = time.perf_counter()
    for batch in batches:
        tick = time.perf_counter()
        lengths = None
        if config.balance and dist.enabled:
            texts = [text for i in batch for text in (task.train[i].query, task.train[i].document)]
            ids = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
            lengths = [(len(ids[2 * j]), len(ids[2 * j + 1])) for j in range(len(batch))]
        shares = rank_shares(batch, dist.world, lengths, cost)
        pairs = [task.train[i] for i in shares[dist.rank]]
        queries = tokenize(tokenizer, [p.query for p in pairs], config.max_length)
        documents = tokenize(tokenizer, [p.document for p in pairs], config.max_length)
        eq, ed = trained(queries, documents)
        encode_seconds.append(time.perf_counter() - tick)
        sizes = [len(share) for share in shares]
        rank_pairs.append(sizes)
        loss = contrastive_loss(dist.gather(eq, sizes), dist.gather(ed, sizes), config.scale)
        optimizer.zero_grad(set_to_none=True)
        # DDP averages over ranks what each rank's copy of the global loss gives its own rows.
        (loss * dist.world).backward()
        optimizer.step()
        scheduler.step()
        step_tokens = dist.total(float(queries["attention_mask"].sum()
                                       + documents["attention_mask"].sum()))
        tokens += step_tokens
        losses.append(float(loss.detach()))
        step_seconds.append(time.perf_counter() - tick)
        forwards = dist.all_values(encode_seconds[-1])
        forward_wait += max(forwards) - sum(forwards) / len(forwards)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}",
                            tok_s=f"{tokens / (time.perf_counter() - start):.0f}")
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()

    record = {"config": asdict(config), "task": task.name, "world_size": dist.world,
              "threads_per_rank": torch.get_num_threads(), "loss": losses,
              "step_seconds": step_seconds, "train_seconds": seconds, "train_tokens": tokens,
              "forward_wait_seconds": forward_wait, "rank_pairs": rank_pairs,
              "tokens_per_second": tokens / seconds if seconds > 0 else math.nan}
    model.eval()
    if dist.rank == 0:
        if evaluate_fn is not None:
            record["metrics"] = evaluate_fn(model, tokenizer)
        if out is not None:
            save_model(model, tokenizer, config.model, out, record)
    dist.close()
    return record
