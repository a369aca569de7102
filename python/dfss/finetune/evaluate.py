"""Retrieval and topic metrics of the fine-tuning tasks, and the paired significance test.

- MRR@10 and R@1 of query -> document over the test split (document i is query i's answer;
  every other test document is a distractor).
- Topic kNN accuracy (wiki): each test document's topic predicted by the majority of its 10
  nearest other test documents (ties to the nearer neighbours), leave-one-out.
- Paired sign-flip permutation test on the per-query reciprocal ranks of two models.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
import torch

from .data import Task


@torch.inference_mode()
def embed(model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int = 64):
    """L2-normalized mean-pooled embeddings [len(texts), hidden], batched by length (less
    padding), returned in the input order."""
    from .train import PairEncoder, tokenize

    encoder = PairEncoder(model)
    lengths = [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: (-lengths[i], i))
    out = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        vectors = encoder.embed(tokenize(tokenizer, [texts[i] for i in chunk], max_length))
        for i, vector in zip(chunk, vectors):
            out[i] = vector
    return torch.stack(out).float().numpy()


def reciprocal_ranks(queries: np.ndarray, documents: np.ndarray, cutoff: int = 10) -> np.ndarray:
    """Per query: 1/rank of its own document (rank 1 = nearest) if within `cutoff`, else 0.
    A distractor tied with the answer counts as ranked ahead (no credit for ties)."""
    scores = queries @ documents.T
    own = np.diagonal(scores)[:, None]
    rank = 1 + (scores > own).sum(axis=1) + ((scores == own).sum(axis=1) - 1)
    return np.where(rank <= cutoff, 1.0 / rank, 0.0)


def topic_knn_accuracy(documents: np.ndarray, labels: Sequence[str], k: int = 10) -> float:
    scores = documents @ documents.T
    np.fill_diagonal(scores, -np.inf)
    correct = 0
    for i in range(len(labels)):
        nearest = np.argsort(-scores[i], kind="stable")[:k]
        votes = Counter(labels[j] for j in nearest)
        best = max(votes.values())
        # Ties between topics go to the one whose nearest member is nearer.
        predicted = next(labels[j] for j in nearest if votes[labels[j]] == best)
        correct += predicted == labels[i]
    return correct / len(labels)


def evaluate(model, tokenizer, task: Task, max_length: int, batch_size: int = 64) -> dict:
    q = embed(model, tokenizer, [p.query for p in task.test], max_length, batch_size)
    d = embed(model, tokenizer, [p.document for p in task.test], max_length, batch_size)
    rr = reciprocal_ranks(q, d)
    metrics = {"test_pairs": len(task.test), "mrr@10": float(rr.mean()),
               "r@1": float((rr == 1.0).mean()), "reciprocal_ranks": rr.tolist()}
    if task.name == "wiki":
        metrics["topic_knn@10"] = topic_knn_accuracy(d, [p.label for p in task.test])
    return metrics


def paired_permutation_p(a: Sequence[float], b: Sequence[float], rounds: int = 20000,
                         seed: int = 0) -> float:
    """Two-sided p-value of mean(a - b) = 0 under random sign flips of the paired differences."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.shape != (len(a),) or len(a) != len(b) or len(a) == 0:
        raise ValueError(f"a, b: expected two equally long non-empty lists, got {len(a)} and "
                         f"{len(b)}")
    observed = abs(diff.mean())
    if observed == 0.0:
        return 1.0
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, rounds, 1000):  # in chunks: rounds x pairs signs would be large
        signs = rng.choice([-1.0, 1.0], size=(min(1000, rounds - start), len(diff)))
        extreme += int((np.abs((signs * diff).mean(axis=1)) >= observed - 1e-15).sum())
    return float((extreme + 1) / (rounds + 1))
