"""Shared helpers of the dfss Python tests: the float64 reference and input makers."""

import os

# Nothing may be downloaded: models come from models/ (scripts/fetch-model.sh).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pathlib

import pytest
import torch
import torch.nn.functional as F

REPO = pathlib.Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "models" / "all-MiniLM-L6-v2"


def bottom_right_mask(lq, lk, causal=False, window=0):
    """[Lq, Lk] bool, True = visible, with dfss's bottom-right causal and window rules."""
    i = torch.arange(lq).unsqueeze(1) + (lk - lq)
    j = torch.arange(lk).unsqueeze(0)
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        allowed &= j <= i
    if window:
        allowed &= j > i - window
    return allowed


def additive(mask):
    """A bool mask (True = attend) as an additive float64 mask; float masks as float64."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=torch.float64).masked_fill(~mask, float("-inf"))
    return mask.to(torch.float64)


def combined_mask(b, hq, lq, lk, attn_mask=None, causal=False, window=0, kept=None):
    """Additive float64 [B, Hq, Lq, Lk]: attn_mask + causal/window + (N:M) kept set."""
    total = torch.zeros(b, hq, lq, lk, dtype=torch.float64)
    if attn_mask is not None:
        total = total + additive(attn_mask)
    structure = bottom_right_mask(lq, lk, causal, window)
    total = total.masked_fill(~structure, float("-inf"))
    if kept is not None:
        total = total.masked_fill(~kept, float("-inf"))
    return total


def reference(q, k, v, attn_mask=None, causal=False, window=0, scale=None, kept=None):
    """torch SDPA in float64 with an explicit mask; GQA by enable_gqa. Rows that see no key
    give 0 (as dfss documents); differentiable."""
    b, hq, lq, _ = q.shape
    lk = k.shape[2]
    mask = combined_mask(b, hq, lq, lk, attn_mask, causal, window, kept)
    q64, k64, v64 = (t.to(torch.float64) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=mask, scale=scale,
                                         enable_gqa=k.shape[1] != hq)
    seen = torch.isfinite(mask).any(dim=-1, keepdim=True)
    return torch.where(seen, out, torch.zeros((), dtype=torch.float64))


def make_qkv(b, hq, hkv, lq, lk, d, dv=None, dtype=torch.float32, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    dv = dv or d
    q = torch.randn(b, hq, lq, d, generator=gen).to(dtype)
    k = torch.randn(b, hkv, lk, d, generator=gen).to(dtype)
    v = torch.randn(b, hkv, lk, dv, generator=gen).to(dtype)
    for t in (q, k, v):
        t.requires_grad_(requires_grad)
    return q, k, v


def tolerance(dtype):
    """(atol, rtol) against the float64 reference for outputs and gradients of O(1)."""
    return (2e-5, 1e-5) if dtype == torch.float32 else (3e-2, 2e-2)


def assert_close(actual, expected, dtype, scale=1.0):
    atol, rtol = tolerance(dtype)
    torch.testing.assert_close(actual.to(torch.float64), expected.to(torch.float64),
                               atol=atol * scale, rtol=rtol)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialized 2-layer BERT (hidden 64) with all-MiniLM-L6-v2's tokenizer and
    sentence-transformers files (no download)."""
    import json
    import shutil

    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = transformers.BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=128)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "modules.json",
                 "sentence_bert_config.json", "special_tokens_map.json"):
        if (MODEL_DIR / name).exists():
            shutil.copy2(MODEL_DIR / name, folder / name)
    shutil.copytree(MODEL_DIR / "1_Pooling", folder / "1_Pooling")
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 64, "pooling_mode_mean_tokens": True}))
    return folder
