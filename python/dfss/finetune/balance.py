"""Cost-balanced data parallelism for variable-length batches (Hydraulis-style).

Attention cost grows as s^2 while memory grows as s, so sharding a batch across data-parallel
ranks by sequence count leaves ranks with short sequences idle while the rank holding the long
ones finishes. This module packs sequences into micro-batches under a padded-token budget (the
memory limit) and assigns micro-batches to ranks by predicted cost (the time limit).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_lengths(lengths: Sequence[int]) -> list[int]:
    for i, s in enumerate(lengths):
        if not _is_int(s) or s <= 0:
            raise ValueError(f"lengths[{i}] = {s!r} is not a positive int")
    return [int(s) for s in lengths]


def _check_positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class CostModel:
    """Seconds to process one sequence of s tokens: c(s) = a*s*s + b*s + c0.

    a covers attention (quadratic), b the per-token work (projections, MLP), c0 fixed overhead.
    """

    a: float
    b: float
    c0: float

    def __call__(self, s: float | np.ndarray) -> float | np.ndarray:
        if isinstance(s, np.ndarray):
            s = s.astype(np.float64)
            return self.a * s * s + self.b * s + self.c0
        s = float(s)
        return self.a * s * s + self.b * s + self.c0

    def batch_cost(self, lengths: Sequence[int]) -> float:
        """Cost of a padded micro-batch: every row is padded to the longest one."""
        if len(lengths) == 0:
            return 0.0
        return len(lengths) * float(self(max(lengths)))

    @classmethod
    def fit(cls, lengths: Sequence[int], seconds: Sequence[float],
            counts: Sequence[int] | None = None) -> CostModel:
        """Non-negative least squares fit of seconds[i] ~ counts[i] * c(lengths[i]).

        Non-negativity keeps the model monotone in s, which noisy timings could otherwise break.
        """
        s = np.asarray(lengths, dtype=np.float64).ravel()
        t = np.asarray(seconds, dtype=np.float64).ravel()
        n = np.ones_like(s) if counts is None else np.asarray(counts, dtype=np.float64).ravel()
        if not (len(s) == len(t) == len(n)):
            raise ValueError(f"mismatched sizes: {len(s)} lengths, {len(t)} seconds, "
                             f"{len(n)} counts")
        if len(s) < 3:
            raise ValueError(f"need at least 3 measurements to fit a, b, c0, got {len(s)}")
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("lengths must be positive and finite")
        if not np.all(np.isfinite(n)) or np.any(n <= 0):
            raise ValueError("counts must be positive and finite")
        if not np.all(np.isfinite(t)):
            raise ValueError("seconds must be finite")
        if len(np.unique(s)) < 3:
            raise ValueError("need at least 3 distinct lengths to separate a, b and c0")
        design = n[:, None] * np.stack([s * s, s, np.ones_like(s)], axis=1)
        # Unit-norm columns: s^2 and 1 differ by ~1e7 in scale, which would cost precision.
        norms = np.linalg.norm(design, axis=0)
        design = design / norms
        # Exact NNLS for 3 unknowns: the optimum is the unconstrained fit on its support, so
        # the best non-negative fit over all 7 supports is the answer (no scipy needed).
        best, best_res = np.zeros(3), float(np.sum(t * t))
        for k in (1, 2, 3):
            for support in itertools.combinations(range(3), k):
                cols = list(support)
                x, *_ = np.linalg.lstsq(design[:, cols], t, rcond=None)
                if np.any(x < 0):
                    continue
                res = float(np.sum((design[:, cols] @ x - t) ** 2))
                if res < best_res:
                    best = np.zeros(3)
                    best[cols] = x
                    best_res = res
        a, b, c0 = best / norms
        return cls(float(a), float(b), float(c0))

    def to_dict(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "c0": self.c0}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostModel:
        return cls(float(d["a"]), float(d["b"]), float(d["c0"]))


def pack_micro_batches(lengths: Sequence[int], token_budget: int,
                       min_fill: float = 0.5) -> list[list[int]]:
    """Pack sequences into micro-batches whose padded size len(mb)*max(mb) <= token_budget.

    Sorted by length descending, so each micro-batch's first sequence is its longest; a
    micro-batch is also closed when the next sequence is shorter than min_fill times that
    longest one, so no sequence is padded to more than 1/min_fill times its length (measured
    with 2 ranks: filling every micro-batch to the budget padded short sequences to 512 tokens
    and cost more than the balancing saved). Returns indices into lengths.
    """
    budget = _check_positive_int("token_budget", token_budget)
    lens = _check_lengths(lengths)
    if not 0.0 <= min_fill <= 1.0:
        raise ValueError(f"min_fill must be in [0, 1], got {min_fill!r}")
    for i, s in enumerate(lens):
        if s > budget:
            raise ValueError(f"sequence {i} has length {s}, over token_budget {budget}")
    order = sorted(range(len(lens)), key=lambda i: (-lens[i], i))
    batches: list[list[int]] = []
    for i in order:
        # The batch's first (longest) sequence sets the padded row length.
        if batches and (len(batches[-1]) + 1) * lens[batches[-1][0]] <= budget and \
                lens[i] >= min_fill * lens[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _check_costs(costs: Sequence[float]) -> list[float]:
    out = [float(c) for c in costs]
    for i, c in enumerate(out):
        if not math.isfinite(c) or c < 0:
            raise ValueError(f"costs[{i}] = {c!r} must be finite and non-negative")
    return out


def assign_lpt(costs: Sequence[float], ranks: int) -> list[list[int]]:
    """Longest-processing-time-first: biggest item to the least-loaded rank, repeatedly.

    Placing big items first leaves small ones to even out the loads at the end. Ties go to
    the lower item index and the lower rank, so the result is deterministic.
    """
    m = _check_positive_int("ranks", ranks)
    cs = _check_costs(costs)
    heap = [(0.0, r) for r in range(m)]
    out: list[list[int]] = [[] for _ in range(m)]
    for i in sorted(range(len(cs)), key=lambda i: (-cs[i], i)):
        load, r = heapq.heappop(heap)
        out[r].append(i)
        heapq.heappush(heap, (load + cs[i], r))
    return [sorted(items) for items in out]


def assign_equal_count(n_items: int, ranks: int) -> list[list[int]]:
    """Baseline: strided equal-count sharding, rank r gets items r, r+ranks, r+2*ranks, ...

    This is torch's DistributedSampler(shuffle=False) order, without its padding by repeats
    (so shard sizes may differ by one).
    """
    m = _check_positive_int("ranks", ranks)
    if not _is_int(n_items) or n_items < 0:
        raise ValueError(f"n_items must be a non-negative int, got {n_items!r}")
    return [list(range(r, int(n_items), m)) for r in range(m)]


def rank_loads(assignment: Sequence[Sequence[int]], costs: Sequence[float]) -> list[float]:
    return [float(sum(costs[i] for i in items)) for items in assignment]


def straggler_wait(loads: Sequence[float]) -> float:
    """Mean time ranks sit idle waiting for the slowest one: max - mean."""
    if len(loads) == 0:
        return 0.0
    return float(max(loads) - sum(loads) / len(loads))


def makespan(loads: Sequence[float]) -> float:
    return float(max(loads)) if len(loads) else 0.0


def lpt_bound(costs: Sequence[float], ranks: int) -> float:
    """Graham's list-scheduling bound on LPT's makespan: sum/ranks + max*(1 - 1/ranks).

    LPT also satisfies makespan <= (4/3 - 1/(3*ranks)) * optimum (Graham 1969).
    """
    m = _check_positive_int("ranks", ranks)
    cs = _check_costs(costs)
    if not cs:
        return 0.0
    return sum(cs) / m + max(cs) * (1.0 - 1.0 / m)


def plan_step(lengths: Sequence[int], cost: CostModel, ranks: int, token_budget: int,
              balanced: bool = True, granularity: str = "sequence") -> list[list[list[int]]]:
    """Per rank, its micro-batches (lists of indices into lengths) for one global batch.

    balanced=False: the baseline, sequences sharded by count (strided), each rank packs its
    share. balanced=True, granularity "sequence" (default): sequences spread by LPT on their cost
    c(s), then each rank packs its share; "micro_batch": the whole batch packed first, then the
    micro-batches spread by LPT on their cost. A global batch makes only a few micro-batches of
    up to token_budget tokens, too coarse to even out: measured with 2 ranks, balancing
    micro-batches left more idle time than equal-count sharding (docs/finetune.md).
    """
    m = _check_positive_int("ranks", ranks)
    lens = _check_lengths(lengths)
    if granularity not in ("sequence", "micro_batch"):
        raise ValueError(f"granularity: expected 'sequence' or 'micro_batch', got {granularity!r}")
    if balanced and granularity == "micro_batch":
        mbs = pack_micro_batches(lens, token_budget)
        costs = [cost.batch_cost([lens[i] for i in mb]) for mb in mbs]
        return [[mbs[j] for j in items] for items in assign_lpt(costs, m)]
    if balanced:
        shards = assign_lpt([float(cost(s)) for s in lens], m)
    else:
        shards = assign_equal_count(len(lens), m)
    plan = []
    for shard in shards:
        local = pack_micro_batches([lens[i] for i in shard], token_budget)
        plan.append([[shard[k] for k in mb] for mb in local])
    return plan


def simulate(lengths: Sequence[int], cost: CostModel, ranks: int, global_batch: int,
             token_budget: int, seed: int = 0, steps: int | None = None) -> dict[str, Any]:
    """Simulate training steps with equal-count and balanced plans; compare idle time."""
    lens = np.asarray(_check_lengths(lengths), dtype=np.int64)
    m = _check_positive_int("ranks", ranks)
    gb = _check_positive_int("global_batch", global_batch)
    n_steps = len(lens) // gb
    if steps is not None:
        n_steps = min(n_steps, _check_positive_int("steps", steps))
    if n_steps == 0:
        raise ValueError(f"{len(lens)} sequences make no full global batch of {gb}")
    perm = np.random.default_rng(seed).permutation(len(lens))
    totals = {"equal_count": [0.0, 0.0], "balanced": [0.0, 0.0]}
    for step in range(n_steps):
        batch = [int(x) for x in lens[perm[step * gb:(step + 1) * gb]]]
        for key, bal in (("equal_count", False), ("balanced", True)):
            plan = plan_step(batch, cost, m, token_budget, balanced=bal)
            loads = [sum(cost.batch_cost([batch[i] for i in mb]) for mb in rank_mbs)
                     for rank_mbs in plan]
            totals[key][0] += makespan(loads)
            totals[key][1] += straggler_wait(loads)
    out: dict[str, Any] = {"ranks": m, "steps": n_steps}
    for key, (total, wait) in totals.items():
        out[key] = {"total": total, "straggler_wait": wait, "mean_step": total / n_steps}

    def ratio(num: float, den: float) -> float:
        if den > 0:
            return num / den
        return math.inf if num > 0 else 1.0

    out["wait_ratio"] = ratio(totals["equal_count"][1], totals["balanced"][1])
    out["speedup"] = ratio(totals["equal_count"][0], totals["balanced"][0])
    return out
