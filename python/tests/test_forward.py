"""dfss.attention forward against torch SDPA computed in float64 with explicit masks."""

import itertools

import pytest
import torch

import dfss
from conftest import assert_close, bottom_right_mask, make_qkv, reference

DTYPES = [torch.float32, torch.bfloat16]
HEAD_DIMS = [32, 64, 80, 128, 256]
GQA_RATIOS = [1, 2, 4, 8]
LENGTHS = [(1, 17), (13, 13), (9, 31), (33, 7)]  # (Lq, Lk): decode, square, Lq < Lk, Lq > Lk


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
@pytest.mark.parametrize("lq,lk", LENGTHS)
@pytest.mark.parametrize("ratio", GQA_RATIOS)
@pytest.mark.parametrize("d", HEAD_DIMS)
def test_dense_grid(d, ratio, lq, lk, dtype):
    hkv = 2 if ratio <= 2 else 1
    q, k, v = make_qkv(2, hkv * ratio, hkv, lq, lk, d, dtype=dtype, seed=d + ratio + lq)
    out = dfss.attention(q, k, v, enable_gqa=ratio > 1)
    assert out.dtype == dtype and out.shape == (2, hkv * ratio, lq, d)
    assert_close(out, reference(q, k, v), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
def test_value_dim_differs_from_head_dim(dtype):
    q, k, v = make_qkv(2, 4, 4, 11, 19, 48, dv=96, dtype=dtype, seed=3)
    out = dfss.attention(q, k, v)
    assert out.shape == (2, 4, 11, 96)
    assert_close(out, reference(q, k, v), dtype)


def _masks(b, hq, lq, lk, gen):
    """Every broadcast form SDPA accepts, as (id, mask)."""
    def bools(*shape):
        m = torch.rand(*shape, generator=gen) > 0.3
        # Keep at least one visible key per row so that every form has rows with keys.
        m[..., 0] = True
        return m

    def floats(*shape):
        return torch.randn(*shape, generator=gen).clamp(-2, 2).masked_fill(
            torch.rand(*shape, generator=gen) < 0.2, float("-inf"))

    forms = {
        "Lk": (lk,), "1,Lk": (1, lk), "Lq,Lk": (lq, lk), "B,1,1,Lk": (b, 1, 1, lk),
        "1,1,Lq,Lk": (1, 1, lq, lk), "B,1,Lq,Lk": (b, 1, lq, lk), "1,Hq,1,Lk": (1, hq, 1, lk),
        "Hq,Lq,Lk": (hq, lq, lk), "B,Hq,Lq,Lk": (b, hq, lq, lk), "B,Hq,1,1": (b, hq, 1, 1),
    }
    out = []
    for name, shape in forms.items():
        out.append((f"bool[{name}]", bools(*shape)))
        out.append((f"float[{name}]", floats(*shape)))
    return out


MASK_IDS = [name for name, _ in _masks(2, 4, 5, 9, torch.Generator().manual_seed(0))]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
@pytest.mark.parametrize("mask_id", MASK_IDS)
def test_masks_broadcast(mask_id, dtype, causal):
    b, hq, hkv, lq, lk, d = 2, 4, 2, 5, 9, 64
    masks = dict(_masks(b, hq, lq, lk, torch.Generator().manual_seed(1)))
    mask = masks[mask_id]
    q, k, v = make_qkv(b, hq, hkv, lq, lk, d, dtype=dtype, seed=7)
    out = dfss.attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=True)
    assert_close(out, reference(q, k, v, attn_mask=mask, causal=causal), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
def test_key_padding_mask_left_and_right(dtype):
    # The [B, 1, 1, Lk] form takes the kernels' key-padding path.
    b, h, lq, lk, d = 3, 2, 6, 10, 32
    q, k, v = make_qkv(b, h, h, lq, lk, d, dtype=dtype, seed=5)
    keep = torch.ones(b, lk, dtype=torch.bool)
    keep[0, 7:] = False   # right padding
    keep[1, :4] = False   # left padding
    mask = keep[:, None, None, :]
    for causal in (False, True):
        out = dfss.attention(q, k, v, attn_mask=mask, is_causal=causal)
        assert_close(out, reference(q, k, v, attn_mask=mask, causal=causal), dtype)


@pytest.mark.parametrize("lq,lk", LENGTHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
def test_causal_is_bottom_right(lq, lk, dtype):
    q, k, v = make_qkv(2, 2, 2, lq, lk, 64, dtype=dtype, seed=lq * lk)
    out = dfss.attention(q, k, v, is_causal=True)
    explicit = bottom_right_mask(lq, lk, causal=True)
    assert_close(out, reference(q, k, v, attn_mask=explicit), dtype)
    if lq == lk:  # the same as SDPA's (top-left) is_causal
        sdpa = torch.nn.functional.scaled_dot_product_attention(
            *(t.double() for t in (q, k, v)), is_causal=True)
        assert_close(out, sdpa, dtype)


@pytest.mark.parametrize("window", [1, 3, 8])
@pytest.mark.parametrize("causal", [False, True], ids=["window", "causal+window"])
@pytest.mark.parametrize("lq,lk", [(13, 13), (4, 21), (1, 30)])
def test_sliding_window(lq, lk, causal, window):
    q, k, v = make_qkv(2, 4, 2, lq, lk, 64, seed=window)
    out = dfss.attention(q, k, v, is_causal=causal, window=window, enable_gqa=True)
    explicit = bottom_right_mask(lq, lk, causal=causal, window=window)
    assert_close(out, reference(q, k, v, attn_mask=explicit), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "bf16"])
def test_non_contiguous_inputs(dtype):
    b, l, h, d = 2, 12, 4, 64
    gen = torch.Generator().manual_seed(11)
    # Projections laid out [B, L, H, d] as in transformers, viewed as [B, H, L, d].
    qkv = torch.randn(b, l, 3, h, d, generator=gen).to(dtype)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    assert not q.is_contiguous()
    out = dfss.attention(q, k, v, is_causal=True)
    assert_close(out, reference(q, k, v, causal=True), dtype)
    # A head-dim slice, every other key, and K/V broadcast over the batch (stride 0).
    big = torch.randn(b, h, 2 * l, 2 * d, generator=gen).to(dtype)
    k2 = big[:, :, ::2, :d]
    v2 = torch.randn(1, h, l, d, generator=gen).to(dtype).expand(b, h, l, d)
    out = dfss.attention(q, k2, v2)
    assert_close(out, reference(q, k2, v2), dtype)


def test_explicit_scale_and_lse():
    q, k, v = make_qkv(2, 4, 2, 7, 15, 32, seed=2)
    out, lse = dfss.attention(q, k, v, scale=0.3, enable_gqa=True, return_lse=True)
    assert_close(out, reference(q, k, v, scale=0.3), torch.float32)
    kk = k.double().repeat_interleave(2, dim=1)
    expected = torch.logsumexp(0.3 * q.double() @ kk.transpose(-1, -2), dim=-1)
    assert lse.dtype == torch.float32 and lse.shape == (2, 4, 7)
    torch.testing.assert_close(lse.double(), expected, atol=1e-5, rtol=1e-5)


def test_rows_without_keys_give_zeros():
    q, k, v = make_qkv(2, 2, 2, 9, 6, 32, seed=4)
    # Causal with Lq > Lk: rows 0..2 see no key. Batch 1: every key padded.
    keep = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    keep[1] = False
    out = dfss.attention(q, k, v, attn_mask=keep, is_causal=True)
    assert torch.equal(out[:, :, :3], torch.zeros_like(out[:, :, :3]))
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert_close(out, reference(q, k, v, attn_mask=keep, causal=True), torch.float32)
    # Lk = 0: every row sees nothing.
    out = dfss.attention(q, k[:, :, :0], v[:, :, :0])
    assert out.shape == (2, 2, 9, 32) and torch.equal(out, torch.zeros_like(out))
    # Lq = 0 and B = 0 are valid and empty.
    assert dfss.attention(q[:, :, :0], k, v).shape == (2, 2, 0, 32)
    assert dfss.attention(q[:0], k[:0], v[:0]).shape == (0, 2, 9, 32)


def test_row_without_keys_from_a_general_mask_gives_zeros():
    q, k, v = make_qkv(1, 2, 2, 4, 6, 32, seed=4)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[2] = False
    out = dfss.attention(q, k, v, attn_mask=mask)
    assert torch.equal(out[:, :, 2], torch.zeros_like(out[:, :, 2]))
    assert_close(out, reference(q, k, v, attn_mask=mask), torch.float32)


def test_output_is_a_new_contiguous_tensor():
    q, k, v = make_qkv(1, 2, 2, 3, 5, 16, seed=6)
    out = dfss.attention(q, k, v)
    assert out.is_contiguous()
    assert all(out.data_ptr() != t.data_ptr() for t in (q, k, v))
