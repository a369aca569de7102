"""Tests of dfss.finetune.balance: cost model, packing, LPT assignment and the simulator."""

import itertools
import json
import math

import numpy as np
import pytest

from dfss.finetune import balance

CostModel = balance.CostModel

# Attention-dominated: at s = 512 the quadratic term is ~2x the linear one.
QUAD = CostModel(a=2e-9, b=5e-7, c0=1e-5)


def _rel(x, y):
    return abs(x - y) / abs(y)


# ---------------------------------------------------------------- cost model

def test_cost_model_evaluation():
    c = CostModel(a=1.0, b=2.0, c0=3.0)
    assert c(4) == 16 + 8 + 3
    assert np.allclose(c(np.array([1, 2, 10])), [6.0, 11.0, 123.0])
    assert c.batch_cost([]) == 0.0
    assert c.batch_cost([1, 4, 2]) == 3 * c(4)


@pytest.mark.parametrize("counts", [None, [1, 3, 8, 2, 5, 4, 1]])
def test_fit_recovers_exact_coefficients(counts):
    true = CostModel(a=2.5e-9, b=3e-7, c0=4e-5)
    lengths = [16, 64, 128, 512, 1024, 2048, 4096]
    n = [1] * len(lengths) if counts is None else counts
    seconds = [k * true(s) for k, s in zip(n, lengths)]
    got = CostModel.fit(lengths, seconds, counts)
    for name in ("a", "b", "c0"):
        assert _rel(getattr(got, name), getattr(true, name)) < 1e-9, name


def test_fit_is_non_negative():
    # Times that fall with length would need b < 0 for an exact fit; NNLS must clamp it.
    got = CostModel.fit([10, 20, 30, 40], [5.0, 4.0, 3.0, 2.0])
    assert got.a >= 0 and got.b >= 0 and got.c0 >= 0


@pytest.mark.parametrize("lengths, seconds, counts", [
    ([10, 20], [1.0, 2.0], None),                  # too few measurements
    ([0, 10, 20], [1.0, 2.0, 3.0], None),          # non-positive length
    ([-5, 10, 20], [1.0, 2.0, 3.0], None),
    ([10, 20, 30], [1.0, 2.0], None),              # mismatched sizes
    ([10, 20, 30], [1.0, 2.0, 3.0], [1, 1]),
    ([10, 10, 20, 20], [1.0, 1.0, 2.0, 2.0], None),  # only 2 distinct lengths
    ([10, 20, 30], [1.0, 2.0, 3.0], [1, 0, 1]),    # non-positive count
])
def test_fit_errors(lengths, seconds, counts):
    with pytest.raises(ValueError):
        CostModel.fit(lengths, seconds, counts)


def test_cost_model_dict_roundtrip():
    c = CostModel(a=1.5e-9, b=2e-7, c0=3e-6)
    assert CostModel.from_dict(json.loads(json.dumps(c.to_dict()))) == c


# ---------------------------------------------------------------- packing

def _check_packing(lengths, budget, batches):
    flat = sorted(i for mb in batches for i in mb)
    assert flat == list(range(len(lengths)))
    for mb in batches:
        assert mb and len(mb) * max(lengths[i] for i in mb) <= budget


@pytest.mark.parametrize("seed", range(5))
def test_pack_covers_all_and_respects_budget(seed):
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(1, 600, size=300)]
    batches = balance.pack_micro_batches(lengths, 2048)
    _check_packing(lengths, 2048, batches)
    assert batches == balance.pack_micro_batches(lengths, 2048)  # deterministic


def test_pack_groups_similar_lengths():
    # Sorted filling: the two 512s share a batch, the 30s pack densely together.
    lengths = [30, 512, 30, 30, 512, 30]
    assert balance.pack_micro_batches(lengths, 1024) == [[1, 4], [0, 2, 3, 5]]


def test_pack_over_budget_raises_with_index():
    with pytest.raises(ValueError, match=r"\b2\b.*\b900\b"):
        balance.pack_micro_batches([10, 20, 900, 30], 512)


def test_pack_empty_and_invalid():
    assert balance.pack_micro_batches([], 512) == []
    for budget in (0, -1, 1.5, "512"):
        with pytest.raises(ValueError):
            balance.pack_micro_batches([1, 2], budget)
    for bad in ([1, 0], [1, -3], [1, 2.5]):
        with pytest.raises(ValueError):
            balance.pack_micro_batches(bad, 512)


# ---------------------------------------------------------------- LPT assignment

def _loads(assign, costs):
    return balance.rank_loads(assign, costs)


def _check_partition(assign, n, ranks):
    assert len(assign) == ranks
    assert sorted(i for items in assign for i in items) == list(range(n))
    assert all(items == sorted(items) for items in assign)


def test_lpt_equal_costs_divisible():
    assign = balance.assign_lpt([1.0] * 12, 4)
    _check_partition(assign, 12, 4)
    assert _loads(assign, [1.0] * 12) == [3.0] * 4


def test_lpt_one_giant_item():
    costs = [1.0, 1.0, 100.0, 1.0, 1.0, 1.0, 1.0]
    assign = balance.assign_lpt(costs, 3)
    _check_partition(assign, len(costs), 3)
    giant = next(items for items in assign if 2 in items)
    assert giant == [2]
    assert sorted(len(items) for items in assign if 2 not in items) == [3, 3]


def test_lpt_bimodal():
    costs = [10.0] * 4 + [1.0] * 40
    assign = balance.assign_lpt(costs, 4)
    _check_partition(assign, len(costs), 4)
    assert _loads(assign, costs) == [20.0] * 4
    assert all(sum(1 for i in items if costs[i] == 10.0) == 1 for items in assign)


def test_lpt_more_ranks_than_items_and_single_rank():
    assign = balance.assign_lpt([3.0, 1.0, 2.0], 5)
    _check_partition(assign, 3, 5)
    assert assign == [[0], [2], [1], [], []]
    assert balance.assign_lpt([3.0, 1.0, 2.0], 1) == [[0, 1, 2]]
    assert balance.assign_lpt([], 3) == [[], [], []]


@pytest.mark.parametrize("seed", range(50))
def test_lpt_within_graham_bound(seed):
    rng = np.random.default_rng(seed)
    ranks = int(rng.integers(1, 17))
    n = int(rng.integers(0, 200))
    costs = list(rng.pareto(1.5, size=n) if seed % 2 else rng.random(n))
    assign = balance.assign_lpt(costs, ranks)
    _check_partition(assign, n, ranks)
    assert balance.makespan(_loads(assign, costs)) <= balance.lpt_bound(costs, ranks) + 1e-9
    assert assign == balance.assign_lpt(costs, ranks)  # deterministic


def _brute_force_optimum(costs, ranks):
    choices = np.array(list(itertools.product(range(ranks), repeat=len(costs))))
    c = np.asarray(costs)
    loads = np.stack([(choices == r) @ c for r in range(ranks)], axis=1)
    return float(loads.max(axis=1).min())


@pytest.mark.parametrize("seed", range(40))
def test_lpt_within_four_thirds_of_optimum(seed):
    rng = np.random.default_rng(1000 + seed)
    ranks = int(rng.integers(2, 4))
    n = int(rng.integers(1, 9))
    costs = [float(x) for x in rng.integers(1, 50, size=n)]
    lpt = balance.makespan(_loads(balance.assign_lpt(costs, ranks), costs))
    opt = _brute_force_optimum(costs, ranks)
    assert lpt <= (4 / 3 - 1 / (3 * ranks)) * opt + 1e-9


def test_lpt_worst_case_is_tight():
    # Graham's tight instance for 2 ranks: LPT gives 7, the optimum is 6, ratio 7/6.
    costs = [3.0, 3.0, 2.0, 2.0, 2.0]
    lpt = balance.makespan(_loads(balance.assign_lpt(costs, 2), costs))
    assert lpt == 7.0 and _brute_force_optimum(costs, 2) == 6.0


def test_lpt_invalid():
    for bad_ranks in (0, -1, 2.0):
        with pytest.raises(ValueError):
            balance.assign_lpt([1.0], bad_ranks)
    for bad_costs in ([1.0, -1.0], [math.nan], [math.inf]):
        with pytest.raises(ValueError):
            balance.assign_lpt(bad_costs, 2)


def test_assign_equal_count_is_strided():
    assert balance.assign_equal_count(10, 3) == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert balance.assign_equal_count(2, 4) == [[0], [1], [], []]
    with pytest.raises(ValueError):
        balance.assign_equal_count(5, 0)


def test_load_helpers():
    assert balance.rank_loads([[0, 2], [1]], [1.0, 2.0, 3.0]) == [4.0, 2.0]
    assert balance.straggler_wait([4.0, 2.0]) == 1.0
    assert balance.straggler_wait([]) == 0.0
    assert balance.makespan([4.0, 2.0]) == 4.0
    assert balance.lpt_bound([], 3) == 0.0
    assert balance.lpt_bound([4.0, 2.0], 2) == 3.0 + 2.0


# ---------------------------------------------------------------- plan and simulate

def _bimodal(n, seed=0, long_frac=0.1):
    rng = np.random.default_rng(seed)
    short = rng.integers(20, 41, size=n)
    return [512 if rng.random() < long_frac else int(s) for s in short]


@pytest.mark.parametrize("balanced,granularity",
                         [(True, "sequence"), (True, "micro_batch"), (False, "sequence")])
@pytest.mark.parametrize("ranks", [1, 3, 8])
def test_plan_step_covers_all_within_budget(balanced, granularity, ranks):
    lengths = _bimodal(200, seed=ranks)
    plan = balance.plan_step(lengths, QUAD, ranks, 1024, balanced=balanced,
                             granularity=granularity)
    assert len(plan) == ranks
    flat = sorted(i for rank_mbs in plan for mb in rank_mbs for i in mb)
    assert flat == list(range(len(lengths)))
    for rank_mbs in plan:
        for mb in rank_mbs:
            assert mb and len(mb) * max(lengths[i] for i in mb) <= 1024


def test_plan_step_sequence_granularity_balances_finer():
    # 6 long sequences fill 2 micro-batches of 3 (budget 3 x 512): spreading micro-batches cannot
    # split them 3/3 across 2 ranks together with the short ones as evenly as spreading sequences.
    lengths = [512] * 6 + [40] * 30
    loads = {}
    for granularity in ("sequence", "micro_batch"):
        plan = balance.plan_step(lengths, QUAD, 2, 3 * 512, granularity=granularity)
        loads[granularity] = [sum(QUAD.batch_cost([lengths[i] for i in mb]) for mb in mbs)
                              for mbs in plan]
    assert balance.straggler_wait(loads["sequence"]) < balance.straggler_wait(
        loads["micro_batch"])
    with pytest.raises(ValueError, match="granularity"):
        balance.plan_step(lengths, QUAD, 2, 1024, granularity="token")


@pytest.mark.parametrize("ranks", [2, 8, 32])
def test_simulate_balanced_waits_less(ranks):
    lengths = _bimodal(64 * ranks * 4, seed=ranks)
    out = balance.simulate(lengths, QUAD, ranks, global_batch=64 * ranks, token_budget=1024)
    assert out["ranks"] == ranks and out["steps"] == 4
    eq, bal = out["equal_count"], out["balanced"]
    assert bal["straggler_wait"] < eq["straggler_wait"]
    assert out["wait_ratio"] > 1.0 and out["speedup"] > 1.0
    assert math.isclose(bal["mean_step"], bal["total"] / 4)
    assert out == balance.simulate(lengths, QUAD, ranks, 64 * ranks, 1024)  # deterministic


def test_simulate_steps_and_invalid():
    lengths = _bimodal(100)
    assert balance.simulate(lengths, QUAD, 2, 10, 1024, steps=3)["steps"] == 3
    assert balance.simulate(lengths, QUAD, 2, 30, 1024)["steps"] == 3  # partial batch dropped
    with pytest.raises(ValueError):
        balance.simulate(lengths, QUAD, 0, 10, 1024)
    with pytest.raises(ValueError):
        balance.simulate(lengths, QUAD, 2, 0, 1024)
    with pytest.raises(ValueError):
        balance.simulate(lengths, QUAD, 2, 200, 1024)  # no full global batch
    with pytest.raises(ValueError):
        balance.simulate(lengths, QUAD, 2, 10, 100)  # a 512 exceeds the budget
    with pytest.raises(ValueError):
        balance.plan_step([1, 2], QUAD, 0, 1024)


def test_pack_closes_micro_batches_before_padding_past_min_fill():
    assert balance.pack_micro_batches([512, 100, 90, 300], 4096) == [[0, 3], [1, 2]]
    assert balance.pack_micro_batches([512, 100, 90, 300], 4096, min_fill=0.0) == [[0, 3, 1, 2]]
    # Never padded past 1/min_fill of a sequence's own length.
    lengths = [int(s) for s in np.random.default_rng(3).integers(1, 513, 300)]
    for mb in balance.pack_micro_batches(lengths, 4096, min_fill=0.25):
        assert all(lengths[i] >= 0.25 * max(lengths[j] for j in mb) for i in mb)
    with pytest.raises(ValueError, match="min_fill"):
        balance.pack_micro_batches([1], 8, min_fill=1.5)
