"""topk:K and dsa:K attention against dense float64 attention restricted to the kept set
(forward and gradients, via autograd through the masked-dense equivalent), the kept sets
against the documented rules, and the identities the semantics promise."""

import pytest
import torch

import dfss
from conftest import make_qkv, reference, tolerance


def kept_mask(keys, lk):
    """[B, H, Lq, Lk] bool from dfss.selected_keys' padded key lists."""
    b, h, lq, _ = keys.shape
    mask = torch.zeros(b, h, lq, lk + 1, dtype=torch.bool)
    mask.scatter_(-1, torch.where(keys < 0, lk, keys), True)
    return mask[..., :lk]


CASES = [
    # b, hq, hkv, lq, lk, d, causal, window, sparsity
    (2, 4, 4, 33, 200, 32, False, 0, "topk:16"),
    (1, 4, 2, 40, 300, 64, True, 0, "topk:50"),
    (1, 2, 1, 64, 64, 16, True, 24, "topk:8"),
    (2, 4, 4, 33, 200, 32, False, 0, "dsa:32"),
    (1, 4, 2, 40, 300, 64, True, 0, "dsa:64:block=32"),
    (1, 2, 2, 17, 129, 48, False, 0, "dsa:12:block=4"),
    (1, 2, 2, 17, 129, 48, False, 0, "topk:1000"),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[8]}-L{c[4]}-causal{c[6]}-w{c[7]}")
def test_forward_and_backward_equal_masked_dense(case, dtype):
    b, hq, hkv, lq, lk, d, causal, window, sparsity = case
    q, k, v = make_qkv(b, hq, hkv, lq, lk, d, dtype=dtype, seed=lk, requires_grad=True)
    mask = torch.rand(b, 1, 1, lk, generator=torch.Generator().manual_seed(1)) > 0.1
    keys, counts = dfss.selected_keys(q, k, v, mask, causal, enable_gqa=hkv != hq,
                                      sparsity=sparsity, window=window)
    kept = kept_mask(keys, lk)
    assert int(counts.max()) <= min(int(sparsity.split(":")[1]), lk)
    out = dfss.attention(q, k, v, mask, is_causal=causal, enable_gqa=hkv != hq,
                         sparsity=sparsity, window=window)
    want = reference(q, k, v, mask, causal, window, kept=kept)
    atol, rtol = tolerance(dtype)
    torch.testing.assert_close(out.to(torch.float64), want, atol=atol, rtol=rtol)

    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    got = torch.autograd.grad(out, (q, k, v), grad)
    expected = torch.autograd.grad(want, (q, k, v), grad.to(torch.float64))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.to(torch.float64), e.to(torch.float64), atol=4 * atol,
                                   rtol=4 * rtol)


def test_topk_keeps_the_largest_scores():
    q, k, v = make_qkv(1, 2, 2, 20, 150, 32, seed=3)
    keys, counts = dfss.selected_keys(q, k, v, sparsity="topk:10")
    assert bool((counts == 10).all())
    scores = (q.double() @ k.double().transpose(-1, -2)) / 32**0.5
    best = scores.topk(10, dim=-1).indices.sort(dim=-1).values
    # Random scores have no near-ties at this scale, so the fp32 and float64 orders agree.
    assert torch.equal(keys, best)


def test_topk_with_k_at_least_lk_is_dense():
    q, k, v = make_qkv(1, 2, 2, 20, 50, 32, seed=4)
    dense = dfss.attention(q, k, v, is_causal=True)
    torch.testing.assert_close(dfss.attention(q, k, v, is_causal=True, sparsity="topk:50"), dense)
    torch.testing.assert_close(dfss.attention(q, k, v, is_causal=True, sparsity="topk:999"), dense)


def test_dsa_with_block_one_is_topk():
    q, k, v = make_qkv(1, 2, 2, 30, 100, 16, seed=5)
    exact = dfss.attention(q, k, v, sparsity="topk:8")
    assert torch.equal(dfss.attention(q, k, v, sparsity="dsa:8:block=1"), exact)


def test_sparsity_is_canonical_and_checked():
    assert dfss._C.parse_pattern("dsa:256") == "dsa:256:block=16"
    q, k, v = make_qkv(1, 1, 1, 4, 8, 8)
    with pytest.raises(ValueError, match="block 3"):
        dfss.attention(q, k, v, sparsity="dsa:12:block=3")
    with pytest.raises(ValueError, match="selected_keys"):
        dfss.selected_keys(q, k, v, sparsity="2:4")


def test_compiled_module_runs_topk():
    q, k, v = make_qkv(1, 2, 2, 16, 64, 16, seed=6)
    compiled = torch.compile(lambda a, b, c: dfss.attention(a, b, c, sparsity="topk:8"),
                             fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), dfss.attention(q, k, v, sparsity="topk:8"))
