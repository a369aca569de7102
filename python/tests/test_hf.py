"""attn_implementation="dfss" in transformers and sentence-transformers against "sdpa"."""

import pytest
import torch

import dfss
import dfss.hf
from conftest import MODEL_DIR

transformers = pytest.importorskip("transformers")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Attention kernels on CPUs",
    "A considerably longer sentence, so that the batch has padding on the shorter ones and the "
    "masks matter.",
    "ok",
]


def _minilm(impl):
    from transformers import AutoModel
    return AutoModel.from_pretrained(MODEL_DIR, attn_implementation=impl).eval()


def _tokens():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(MODEL_DIR)(SENTENCES, padding=True,
                                                     return_tensors="pt")


def _mean_pool(hidden, mask):
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_minilm_embeddings_match_sdpa():
    batch = _tokens()
    assert not bool(batch["attention_mask"].all())  # padding present
    outputs = {}
    for impl in ("sdpa", "dfss"):
        model = _minilm(impl)
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            outputs[impl] = _mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(outputs["dfss"], outputs["sdpa"], atol=1e-5, rtol=0)


def test_minilm_contrastive_gradients_match_sdpa():
    batch = _tokens()
    grads = {}
    for impl in ("sdpa", "dfss"):
        model = _minilm(impl)  # eval(): no dropout, so both compute the same function
        emb = _mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])
        logits = emb[:2] @ emb[2:].T / 0.05
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
        loss.backward()
        grads[impl] = {n: p.grad.clone() for n, p in model.named_parameters()
                       if p.grad is not None}
    assert grads["dfss"].keys() == grads["sdpa"].keys()
    largest = max(g.norm() for g in grads["sdpa"].values())
    for name, expected in grads["sdpa"].items():
        got = grads["dfss"][name]
        if expected.norm() <= 1e-6 * largest:
            # Analytically zero (the key bias: a constant added to every score of a row
            # leaves its softmax unchanged): both must be rounding noise.
            assert got.norm() <= 1e-6 * largest, f"{name}: {got.norm():.2e} for a zero gradient"
            continue
        error = (got - expected).norm() / expected.norm()
        assert error <= 1e-4, f"{name}: relative error {error:.2e}"


def test_sentence_transformer_model_kwargs():
    from sentence_transformers import SentenceTransformer
    embeddings = {}
    for impl in ("sdpa", "dfss"):
        st = SentenceTransformer(str(MODEL_DIR), device="cpu",
                                 model_kwargs={"attn_implementation": impl})
        embeddings[impl] = st.encode(SENTENCES, convert_to_tensor=True, batch_size=4)
    assert embeddings["dfss"].shape == (len(SENTENCES), 384)
    torch.testing.assert_close(embeddings["dfss"].norm(dim=-1), torch.ones(len(SENTENCES)))
    torch.testing.assert_close(embeddings["dfss"], embeddings["sdpa"], atol=1e-5, rtol=0)


def test_training_mode_dropout_is_refused():
    model = _minilm("dfss").train()
    with pytest.raises(ValueError, match="dropout"):
        model(**_tokens())


def test_set_sparsity_per_layer():
    model = _minilm("dfss")
    batch = _tokens()
    with torch.no_grad():
        dense = model(**batch).last_hidden_state
        assert dfss.hf.get_sparsity(model) == ["dense"] * 6
        assert dfss.hf.set_sparsity(model, "2:4", dense_first=2) == ["dense"] * 2 + ["2:4"] * 4
        sparse = model(**batch).last_hidden_state
        assert dfss.hf.set_sparsity(model, ["2:4"] + ["dense"] * 5) == ["2:4"] + ["dense"] * 5
        first_only = model(**batch).last_hidden_state
        assert dfss.hf.set_sparsity(model, "2:4", dense_first=6) == ["dense"] * 6
        dense_again = model(**batch).last_hidden_state
    assert torch.equal(dense_again, dense)
    assert not torch.allclose(sparse, dense, atol=1e-3)
    assert not torch.allclose(first_only, dense, atol=1e-3)
    assert not torch.allclose(first_only, sparse, atol=1e-3)
    with pytest.raises(ValueError, match="sparsity: expected one entry per layer"):
        dfss.hf.set_sparsity(model, ["2:4"] * 5)
    with pytest.raises(ValueError, match="sparsity"):
        dfss.hf.set_sparsity(model, "5:4")


# ---- decoders: GQA, KV cache, left padding, sliding window ------------------------------


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, pad_token_id=0, bos_token_id=1,
                         eos_token_id=None)
    return LlamaForCausalLM(config).eval()


def _mistral(window):
    from transformers import MistralConfig, MistralForCausalLM
    torch.manual_seed(1)
    config = MistralConfig(vocab_size=100, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=128, sliding_window=window, pad_token_id=0,
                           bos_token_id=1, eos_token_id=None)
    return MistralForCausalLM(config).eval()


def _prompts(left_padding):
    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(2, 100, (3, 9), generator=gen)
    mask = torch.ones_like(ids)
    if left_padding:
        mask[1, :4] = 0
        mask[2, :2] = 0
        ids[mask == 0] = 0
    return ids, mask


@pytest.mark.parametrize("left_padding", [False, True], ids=["no_padding", "left_padding"])
def test_gqa_decoder_generate_matches_sdpa(left_padding):
    model = _llama()
    ids, mask = _prompts(left_padding)
    results = {}
    for impl in ("sdpa", "dfss"):
        model.set_attn_implementation(impl)
        with torch.no_grad():
            tokens = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12,
                                    do_sample=False, pad_token_id=0)
            logits = model(input_ids=tokens, attention_mask=torch.cat(
                [mask, torch.ones(3, 12, dtype=mask.dtype)], 1)).logits
        results[impl] = (tokens, logits)
    assert torch.equal(results["dfss"][0], results["sdpa"][0])
    real = torch.cat([mask, torch.ones(3, 12, dtype=mask.dtype)], 1).bool()
    torch.testing.assert_close(results["dfss"][1][real], results["sdpa"][1][real],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("left_padding", [False, True], ids=["no_padding", "left_padding"])
def test_sliding_window_decoder_matches_sdpa(left_padding):
    model = _mistral(window=4)
    ids, mask = _prompts(left_padding)
    results = {}
    for impl in ("sdpa", "dfss"):
        model.set_attn_implementation(impl)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
            tokens = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8,
                                    do_sample=False, pad_token_id=0)
        results[impl] = (logits, tokens)
    real = mask.bool()
    torch.testing.assert_close(results["dfss"][0][real], results["sdpa"][0][real],
                               atol=1e-5, rtol=1e-5)
    assert torch.equal(results["dfss"][1], results["sdpa"][1])


def test_mask_recognition():
    from dfss.hf import _analyse, _structure
    b, lq, lk = 2, 5, 8
    present = torch.ones(b, lk, dtype=torch.bool)
    present[1, :3] = False
    for causal, window in [(False, 0), (True, 0), (True, 3)]:
        structure = _structure(lq, lk, causal, window)
        for padding in (None, present):
            keys = torch.ones(b, lk, dtype=torch.bool) if padding is None else padding
            mask = keys[:, None, None, :].expand(b, 1, lq, lk)
            if structure is not None:
                mask = mask & structure
            parts = _analyse(mask, lq, lk, windows=(3,))
            assert parts is not None
            got_padding, got_causal, got_window = parts
            assert (got_causal, got_window) == (causal, window)
            # The parts rebuild the mask exactly (a key no row sees may be called padding).
            keys = torch.ones(b, lk, dtype=torch.bool) if got_padding is None else got_padding
            rebuilt = keys[:, None, None, :].expand(b, 1, lq, lk)
            if structure is not None:
                rebuilt = rebuilt & structure
            assert torch.equal(rebuilt, mask)
    general = torch.rand(b, 1, lq, lk, generator=torch.Generator().manual_seed(0)) > 0.5
    assert _analyse(general, lq, lk, windows=()) is None
    top_left = torch.ones(lq, lk, dtype=torch.bool).tril().expand(b, 1, lq, lk)
    assert _analyse(top_left, lq, lk, windows=()) is None  # Lq != Lk: not bottom-right
    assert _analyse(general.float(), lq, lk, windows=()) is None


def test_registered_names():
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface
    assert "dfss" in AttentionInterface().valid_keys()
    assert "dfss" in AttentionMaskInterface()._global_mapping
