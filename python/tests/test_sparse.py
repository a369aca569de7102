"""N:M (DFSS) attention against dense float64 attention restricted to the kept set.

Inputs are small multiples of 1/4 and the scale a power of two, so every score is exact in
fp32 (and bf16 inputs are exact too): the kept set computed here in float64 is exactly the
one the kernels select, ties included (the lower column wins), without tolerance games.
"""

import pytest
import torch

import dfss
from conftest import additive, assert_close, bottom_right_mask, reference

SCALE = 0.125


def exact_qkv(b, hq, hkv, lq, lk, d, dtype=torch.float32, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(-3, 4, (b, hq, lq, d), generator=gen).float() / 4
    k = torch.randint(-3, 4, (b, hkv, lk, d), generator=gen).float() / 4
    v = torch.randn(b, hkv, lk, d, generator=gen)
    out = [t.to(dtype).requires_grad_(requires_grad) for t in (q, k, v)]
    return out


def kept_set(q, k, n, m, scale, mask_add=None):
    """[B, Hq, Lq, Lk] bool: the N largest scores of each aligned group of M keys (signed,
    masked scores -inf, ties to the lower column; a partial last group is padded with -inf)."""
    b, hq, lq, _ = q.shape
    lk = k.shape[2]
    kk = k.double().repeat_interleave(hq // k.shape[1], dim=1)
    s = scale * q.double() @ kk.transpose(-1, -2)
    if mask_add is not None:
        s = s + mask_add
    groups = -(-lk // m)
    padded = torch.full((b, hq, lq, groups * m), float("-inf"), dtype=torch.float64)
    padded[..., :lk] = s
    grouped = padded.reshape(b, hq, lq, groups, m)
    order = torch.sort(grouped, dim=-1, descending=True, stable=True).indices
    keep = torch.zeros_like(grouped, dtype=torch.bool)
    keep.scatter_(-1, order[..., :n], True)
    return keep.reshape(b, hq, lq, groups * m)[..., :lk]


PATTERNS = ["1:2", "2:4", "1:4", "3:8", "4:8", "2:8", "7:8", "2:3"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("lq,lk", [(1, 19), (13, 13), (8, 37), (21, 6)])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_nm_matches_masked_dense(pattern, lq, lk, dtype):
    n, m = map(int, pattern.split(":"))
    q, k, v = exact_qkv(2, 2, 2, lq, lk, 64, dtype=dtype, seed=n * 10 + m + lk)
    out = dfss.attention(q, k, v, scale=SCALE, sparsity=pattern)
    kept = kept_set(q, k, n, m, SCALE)
    assert_close(out, reference(q, k, v, scale=SCALE, kept=kept), dtype)


@pytest.mark.parametrize("d", [32, 80, 128, 256])
@pytest.mark.parametrize("ratio", [1, 2, 4])
def test_nm_gqa_and_head_dims(d, ratio):
    q, k, v = exact_qkv(1, 2 * ratio, 2, 9, 27, d, seed=d + ratio)
    out = dfss.attention(q, k, v, scale=SCALE, sparsity="2:4", enable_gqa=ratio > 1)
    kept = kept_set(q, k, 2, 4, SCALE)
    assert_close(out, reference(q, k, v, scale=SCALE, kept=kept), torch.float32)


@pytest.mark.parametrize("causal", [False, True], ids=["padding", "padding+causal"])
def test_nm_with_key_padding_and_causal(causal):
    b, h, lq, lk = 3, 2, 10, 18
    q, k, v = exact_qkv(b, h, h, lq, lk, 64, seed=3)
    keep = torch.ones(b, lk, dtype=torch.bool)
    keep[0, 13:] = False
    keep[1, :5] = False
    mask = keep[:, None, None, :]
    out = dfss.attention(q, k, v, attn_mask=mask, is_causal=causal, scale=SCALE, sparsity="2:4")
    total = additive(mask).expand(b, h, lq, lk)
    total = total.masked_fill(~bottom_right_mask(lq, lk, causal), float("-inf"))
    kept = kept_set(q, k, 2, 4, SCALE, total)
    assert_close(out, reference(q, k, v, attn_mask=mask, causal=causal, scale=SCALE, kept=kept),
                 torch.float32)


def test_nm_with_general_mask_and_window():
    b, h, lq, lk = 2, 4, 7, 20
    q, k, v = exact_qkv(b, h, 2, lq, lk, 32, seed=9)
    gen = torch.Generator().manual_seed(2)
    mask = torch.randint(-2, 1, (1, h, lq, lk), generator=gen).float()  # exact values
    out = dfss.attention(q, k, v, attn_mask=mask, is_causal=True, window=9, scale=SCALE,
                         sparsity="2:4", enable_gqa=True)
    total = mask.double().expand(b, h, lq, lk)
    total = total.masked_fill(~bottom_right_mask(lq, lk, True, 9), float("-inf"))
    kept = kept_set(q, k, 2, 4, SCALE, total)
    expected = reference(q, k, v, attn_mask=mask, causal=True, window=9, scale=SCALE, kept=kept)
    assert_close(out, expected, torch.float32)


@pytest.mark.parametrize("pattern", ["2:4", "1:4", "3:8"])
def test_kept_set_matches_the_library_selection(pattern):
    """dfss._C.compressed_scores (the library's own selection) keeps what kept_set keeps."""
    n, m = map(int, pattern.split(":"))
    q, k, v = exact_qkv(2, 2, 2, 6, 22, 32, seed=m)
    kept_per_row, columns, values = dfss._C.compressed_scores(
        dfss._ops._spec(q), dfss._ops._spec(k), dfss._ops._spec(v), 0, -1, SCALE, False, pattern)
    columns = torch.frombuffer(bytearray(columns), dtype=torch.int32).reshape(2, 2, 6, kept_per_row)
    library = torch.zeros(2, 2, 6, 22 + m, dtype=torch.bool)
    library.scatter_(-1, columns.long(), True)
    assert torch.equal(library[..., :22], kept_set(q, k, n, m, SCALE))


def test_sparsity_argument_forms():
    q, k, v = exact_qkv(1, 2, 2, 5, 16, 32, seed=1)
    dense = dfss.attention(q, k, v, scale=SCALE)
    assert torch.equal(dfss.attention(q, k, v, scale=SCALE, sparsity="dense"), dense)
    assert torch.equal(dfss.attention(q, k, v, scale=SCALE, sparsity=None), dense)
    assert not torch.equal(dfss.attention(q, k, v, scale=SCALE, sparsity="1:4"), dense)
