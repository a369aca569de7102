"""Distillation of a pruned encoder against the dense one: the student's sentence embeddings
(mean-pooled, L2-normalized) are pulled towards the teacher's on real text, loss 1 - cosine,
with AdamW, linear warm-up and decay; the pruned weights are zeroed again after every step, so
the student keeps its block-sparse pattern."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from ..finetune.train import PairEncoder, tokenize
from .masks import BlockPattern, apply_masks


def distill(student, teacher, tokenizer, texts: list[str], kept: dict, pattern: BlockPattern,
            steps: int, batch_size: int = 16, lr: float = 1e-4, max_length: int = 128,
            seed: int = 0, progress: bool = True) -> dict:
    if steps < 0 or batch_size < 1 or batch_size > len(texts):
        raise ValueError(f"distill: expected steps >= 0 and 1 <= batch_size <= {len(texts)} texts, "
                         f"got steps {steps}, batch_size {batch_size}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    student_encoder, teacher_encoder = PairEncoder(student), PairEncoder(teacher)
    student.train()
    teacher.eval()
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)

    def schedule(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc=f"distill {pattern}", unit="step")
    losses, tokens, start = [], 0, time.perf_counter()
    order = []
    for _ in range(steps):
        if len(order) < batch_size:
            order += list(rng.permutation(len(texts)))
        batch, order = order[:batch_size], order[batch_size:]
        features = tokenize(tokenizer, [texts[i] for i in batch], max_length)
        with torch.no_grad():
            target = teacher_encoder.embed(features)
        predicted = student_encoder.embed(features)
        loss = (1.0 - F.cosine_similarity(predicted, target, dim=-1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        apply_masks(student, kept, pattern)
        losses.append(float(loss.detach()))
        tokens += int(features["attention_mask"].sum())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.5f}")
    if bar is not None:
        bar.close()
    student.eval()
    seconds = time.perf_counter() - start
    return {"loss": losses, "seconds": seconds, "tokens": tokens,
            "tokens_per_second": tokens / seconds if seconds > 0 else 0.0}
