"""Gradients of dfss.attention against autograd through the float64 reference."""

import pytest
import torch

import dfss
from conftest import assert_close, bottom_right_mask, make_qkv, reference
from test_sparse import SCALE, exact_qkv, kept_set


def grads(fn, q, k, v, d_out):
    out = fn(q, k, v)
    return torch.autograd.grad(out, (q, k, v), d_out)


def check_gradients(q, k, v, dtype, attn_mask=None, causal=False, window=0, scale=None,
                    sparsity=None, kept=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    b, hq, lq, _ = q.shape
    d_out = torch.randn(b, hq, lq, v.shape[3], generator=gen)
    ours = grads(lambda *t: dfss.attention(*t, attn_mask=attn_mask, is_causal=causal,
                                           window=window or None, scale=scale,
                                           sparsity=sparsity, enable_gqa=k.shape[1] != hq),
                 q, k, v, d_out.to(dtype))
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    expected = grads(lambda *t: reference(*t, attn_mask=attn_mask, causal=causal, window=window,
                                          scale=scale, kept=kept), *leaves, d_out.double())
    for name, g, e, t in zip("qkv", ours, expected, (q, k, v)):
        assert g.dtype == dtype and g.shape == t.shape, name
        assert_close(g, e, dtype, scale=4.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("lq,lk", [(1, 17), (13, 13), (9, 31), (33, 7)])
@pytest.mark.parametrize("ratio", [1, 2, 4, 8])
@pytest.mark.parametrize("d", [32, 64, 80, 128, 256])
def test_dense_gradients_grid(d, ratio, lq, lk, dtype):
    hkv = 2 if ratio <= 2 else 1
    q, k, v = make_qkv(2, hkv * ratio, hkv, lq, lk, d, dtype=dtype, seed=d + lq,
                       requires_grad=True)
    check_gradients(q, k, v, dtype, seed=ratio)


@pytest.mark.parametrize("mask_kind", ["key_padding", "bool[Lq,Lk]", "float[B,1,Lq,Lk]"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_masked_gradients(mask_kind, causal):
    b, h, lq, lk = 2, 4, 11, 15
    q, k, v = make_qkv(b, h, 2, lq, lk, 64, seed=1, requires_grad=True)
    gen = torch.Generator().manual_seed(3)
    if mask_kind == "key_padding":
        keep = torch.ones(b, 1, 1, lk, dtype=torch.bool)
        keep[0, ..., 12:] = False
        keep[1, ..., :3] = False
        mask = keep
    elif mask_kind == "bool[Lq,Lk]":
        mask = torch.rand(lq, lk, generator=gen) > 0.3
    else:
        mask = torch.randn(b, 1, lq, lk, generator=gen)
    check_gradients(q, k, v, torch.float32, attn_mask=mask, causal=causal)


@pytest.mark.parametrize("window", [1, 4])
def test_window_gradients(window):
    q, k, v = make_qkv(2, 4, 2, 12, 20, 32, seed=window, requires_grad=True)
    check_gradients(q, k, v, torch.float32, causal=True, window=window)


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "3:8"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_nm_gradients(pattern, causal):
    n, m = map(int, pattern.split(":"))
    lq, lk = 10, 26
    q, k, v = exact_qkv(2, 4, 2, lq, lk, 64, seed=m, requires_grad=True)
    structure = torch.zeros(lq, lk, dtype=torch.float64).masked_fill(
        ~bottom_right_mask(lq, lk, causal), float("-inf"))
    kept = kept_set(q.detach(), k.detach(), n, m, SCALE, structure)
    check_gradients(q, k, v, torch.float32, causal=causal, scale=SCALE, sparsity=pattern,
                    kept=kept)


def test_gradcheck_of_the_float64_reference():
    """The reference the gradients are checked against is itself right (finite differences).
    dfss runs fp32 only, so its own gradients are compared to this reference above."""
    q, k, v = (t.double().requires_grad_() for t in make_qkv(1, 2, 1, 3, 5, 4, seed=2))
    mask = torch.tensor([[True, True, False, True, True]] * 3)
    assert torch.autograd.gradcheck(
        lambda q, k, v: reference(q, k, v, attn_mask=mask, causal=True), (q, k, v))
    kept = torch.rand(1, 2, 3, 5, generator=torch.Generator().manual_seed(0)) > 0.4
    kept[..., 0] = True
    assert torch.autograd.gradcheck(lambda q, k, v: reference(q, k, v, kept=kept), (q, k, v))


def test_gradient_of_a_broadcast_output_gradient():
    # out.sum() hands the backward an expanded (stride 0) gradient.
    q, k, v = make_qkv(1, 2, 2, 5, 8, 32, seed=8, requires_grad=True)
    dfss.attention(q, k, v).sum().backward()
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    reference(*leaves).sum().backward()
    for ours, expected in zip((q, k, v), leaves):
        assert_close(ours.grad, expected.grad, torch.float32, scale=4.0)


def test_mask_requiring_grad_is_refused():
    q, k, v = make_qkv(1, 2, 2, 3, 4, 16)
    mask = torch.zeros(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match="attn_mask"):
        dfss.attention(q, k, v, attn_mask=mask)
    with torch.no_grad():
        dfss.attention(q, k, v, attn_mask=mask)  # fine without autograd
    dfss.attention(q, k, v, attn_mask=mask.detach())
