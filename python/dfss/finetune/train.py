"""Contrastive fine-tuning of a sentence-embedding model with dfss attention in the loop.

The model is a Hugging Face encoder (all-MiniLM-L6-v2 by default) loaded with
attn_implementation="dfss", its attention sparsity set per layer by dfss.hf.set_sparsity, and
its embedding the mean of the last hidden states over real tokens, L2-normalized (what the
sentence-transformers model does). Loss: in-batch negatives (each query's own document against
every other document of the global batch, cross-entropy over scale * cosine).

Data-parallel under torch.distributed (gloo, launched by torchrun): every rank encodes its
slice of the global batch, the embeddings are all-gathered and every rank computes the loss
of the whole global batch, so the loss and the update equal those of one process running the
same global batch (up to summation order). DistributedDataParallel averages the gradients.
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

from .data import Task

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

    def gather(self, local: torch.Tensor) -> torch.Tensor:
        """The global batch's rows, differentiable in this rank's own rows only (each rank's
        loss then back-propagates into its own encoder; DDP sums the parts)."""
        if not self.enabled:
            return local
        parts = [torch.empty_like(local) for _ in range(self.world)]
        torch.distributed.all_gather(parts, local.detach())
        parts[self.rank] = local
        return torch.cat(parts)

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
    if config.batch_size % dist.world:
        raise ValueError(f"batch_size: {config.batch_size} is not divisible by the {dist.world} "
                         "ranks")
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
    local = config.batch_size // dist.world
    losses, step_seconds, tokens = [], [], 0.0

    bar = None
    if progress and dist.rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=config.steps, desc=f"{task.name} {config.sparsity}", unit="step")
    start = time.perf_counter()
    for batch in batches:
        tick = time.perf_counter()
        pairs = [task.train[i] for i in batch[dist.rank * local:(dist.rank + 1) * local]]
        queries = tokenize(tokenizer, [p.query for p in pairs], config.max_length)
        documents = tokenize(tokenizer, [p.document for p in pairs], config.max_length)
        eq, ed = trained(queries, documents)
        loss = contrastive_loss(dist.gather(eq), dist.gather(ed), config.scale)
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
              "tokens_per_second": tokens / seconds if seconds > 0 else math.nan}
    model.eval()
    if dist.rank == 0:
        if evaluate_fn is not None:
            record["metrics"] = evaluate_fn(model, tokenizer)
        if out is not None:
            save_model(model, tokenizer, config.model, out, record)
    dist.close()
    return record
