"""Hugging Face transformers integration: attn_implementation="dfss".

    import dfss.hf  # registers "dfss" (importing is enough; dfss.hf.register() is idempotent)
    model = AutoModel.from_pretrained(path, attn_implementation="dfss")
    st = SentenceTransformer(path, model_kwargs={"attn_implementation": "dfss"})
    dfss.hf.set_sparsity(model, "2:4", dense_first=1)   # optional: N:M per layer

The attention function receives what transformers gives sdpa_attention_forward: query
[B, Hq, Lq, d], key/value [B, Hkv, Lk, d] (grouped-query heads are not repeated), the mask
built by the "dfss" mask function (the same as sdpa's: a bool [B, 1, Lq, Lk] mask, or None
when causality alone describes it), scaling, dropout and sliding_window. It recognizes a
padding mask, a causal mask and a sliding-window causal mask (each possibly combined with
padding) and passes them as dfss's key-padding, causal and window options, which the kernels
handle without reading an Lq x Lk mask; anything else is passed as a general mask.
"""

from __future__ import annotations

import weakref
from typing import Optional, Sequence, Union

import torch

from ._ops import attention

__all__ = ["register", "attention_forward", "set_sparsity", "get_sparsity", "NAME"]

NAME = "dfss"
_registered = False


def register() -> None:
    """Registers "dfss" with transformers' AttentionInterface and AttentionMaskInterface."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention_forward)
    # Without a mask function of its own, "dfss" would get no mask at all (padding ignored).
    AttentionMaskInterface.register(NAME, sdpa_mask)
    _registered = True


# ------------------------------------------------------------------------------------------
# Sparsity per layer
# ------------------------------------------------------------------------------------------

_ATTRIBUTE = "dfss_sparsity"


def _attention_modules(model: torch.nn.Module):
    """The modules transformers passes to the attention function: those named *Attention*
    that carry an integer layer_idx, in model order."""
    return [m for m in model.modules()
            if "Attention" in type(m).__name__ and isinstance(getattr(m, "layer_idx", None), int)]


def set_sparsity(model: torch.nn.Module,
                 sparsity: Union[None, str, Sequence[Optional[str]]],
                 dense_first: int = 0) -> list[str]:
    """Chooses the attention sparsity of each layer of a transformers model.

    sparsity: None / "dense", an "N:M" string for every layer, or a list with one entry per
    layer (indexed by the attention module's layer_idx). dense_first=k keeps layers
    0..k-1 dense whatever `sparsity` says. Returns the per-layer patterns. The choice is
    stored on the attention modules (attribute `dfss_sparsity`) and read at every call, so it
    can be changed between calls; it only matters with attn_implementation="dfss".
    """
    from ._ops import _normalize_sparsity

    modules = _attention_modules(model)
    if not modules:
        raise ValueError("model: found no attention module with a layer_idx "
                         "(is this a transformers model?)")
    layers = sorted({m.layer_idx for m in modules})
    if isinstance(dense_first, bool) or not isinstance(dense_first, int) or dense_first < 0:
        raise ValueError(f"dense_first: expected an int >= 0, got {dense_first!r}")
    if sparsity is None or isinstance(sparsity, str):
        per_layer = {layer: _normalize_sparsity(sparsity) for layer in layers}
    else:
        patterns = list(sparsity)
        if len(patterns) != len(layers):
            raise ValueError(f"sparsity: expected one entry per layer ({len(layers)}), got "
                             f"{len(patterns)}")
        per_layer = {layer: _normalize_sparsity(p) for layer, p in zip(layers, patterns)}
    for layer in layers:
        if layer < dense_first:
            per_layer[layer] = "dense"
    for m in modules:
        setattr(m, _ATTRIBUTE, per_layer[m.layer_idx])
    return [per_layer[layer] for layer in layers]


def get_sparsity(model: torch.nn.Module) -> list[str]:
    """The per-layer patterns set_sparsity stored ("dense" where none was set)."""
    per_layer = {m.layer_idx: getattr(m, _ATTRIBUTE, "dense") for m in _attention_modules(model)}
    return [per_layer[layer] for layer in sorted(per_layer)]


# ------------------------------------------------------------------------------------------
# Mask analysis
# ------------------------------------------------------------------------------------------

# The decomposition of the last mask analysed: transformers builds one mask per forward
# and passes the same tensor to every layer.
_last_mask: Optional[weakref.ref] = None
_last_key: Optional[tuple] = None
_last_result = None


def _structure(lq: int, lk: int, causal: bool, window: int) -> Optional[torch.Tensor]:
    """[Lq, Lk] bool: what dfss's causal/window options let query i see (None: all)."""
    if not causal and window == 0:
        return None
    i = torch.arange(lq).unsqueeze(1) + (lk - lq)  # bottom-right aligned
    j = torch.arange(lk).unsqueeze(0)
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        allowed &= j <= i
    if window > 0:
        allowed &= j > i - window
    return allowed


def _analyse(mask: torch.Tensor, lq: int, lk: int, windows: Sequence[int]):
    """Decomposes a bool mask [B, 1, Lq, Lk] into (key padding [B, Lk] bool or None, causal,
    window) when it equals padding & causal/window; None otherwise."""
    if mask.dtype != torch.bool or mask.dim() != 4 or mask.shape[1] != 1 or \
            mask.shape[2] != lq or mask.shape[3] != lk:
        return None
    rows = mask[:, 0]
    # A key is present if any query row may see it.
    present = rows.any(dim=1)  # [B, Lk]
    padding = None if bool(present.all()) else present
    for causal, window in [(False, 0), (True, 0)] + [(True, w) for w in windows if w > 0]:
        allowed = _structure(lq, lk, causal, window)
        expected = present.unsqueeze(1).expand(-1, lq, -1)
        if allowed is not None:
            expected = expected & allowed
        if torch.equal(rows, expected):
            return padding, causal, window
    return None


def _cached_analysis(mask: torch.Tensor, lq: int, lk: int, windows: tuple):
    global _last_mask, _last_key, _last_result
    if mask.is_inference():  # no version counter to tell an in-place change: no caching
        return _analyse(mask, lq, lk, windows)
    key = (mask.data_ptr(), tuple(mask.shape), tuple(mask.stride()), mask._version, lq, lk,
           windows)
    if _last_mask is not None and _last_mask() is mask and _last_key == key:
        return _last_result
    result = _analyse(mask, lq, lk, windows)
    _last_mask, _last_key, _last_result = weakref.ref(mask), key, result
    return result


# ------------------------------------------------------------------------------------------
# The attention function
# ------------------------------------------------------------------------------------------


def attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    is_causal: Optional[bool] = None,
    sliding_window: Optional[int] = None,
    softcap: Optional[float] = None,
    position_bias: Optional[torch.Tensor] = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; returns (out [B, Lq, Hq, dv], None)."""
    if softcap is not None:
        raise ValueError("softcap: attn_implementation=\"dfss\" does not support logit "
                         "soft-capping; use \"eager\"")
    if dropout:
        raise ValueError(
            f"dropout: attn_implementation=\"dfss\" implements no attention dropout, got {dropout}; "
            "call model.eval() or set the config's attention dropout (e.g. "
            "attention_probs_dropout_prob or attention_dropout) to 0 for training")
    if kwargs.get("output_attentions", False):
        raise ValueError("output_attentions: attn_implementation=\"dfss\" computes no attention "
                         "weights; use \"eager\"")
    sparsity = getattr(module, _ATTRIBUTE, None)
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    lq, lk = query.shape[2], key.shape[2]
    windows = tuple(w for w in (sliding_window, getattr(module, "sliding_window", None))
                    if isinstance(w, int) and not isinstance(w, bool) and w > 0)

    if position_bias is not None:
        from transformers.integrations.sdpa_attention import create_position_bias_mask

        attention_mask = create_position_bias_mask(position_bias, attention_mask, is_causal,
                                                   query, key).detach()
        is_causal = False

    if attention_mask is None:
        # As sdpa: causal only for a multi-token query. transformers relies on SDPA's top-left
        # alignment when a prefill meets an empty static cache (Lk > Lq, no mask): the keys
        # past Lq are unused slots, so they are dropped (dfss's causal is bottom-right).
        causal = bool(is_causal) and lq > 1
        if causal and lk > lq:
            key, value = key[:, :, :lq], value[:, :, :lq]
        out = attention(query, key, value, is_causal=causal, scale=scaling, enable_gqa=True,
                        sparsity=sparsity)
    else:
        parts = _cached_analysis(attention_mask, lq, lk, windows)
        if parts is not None:
            padding, causal, window = parts
            mask = None if padding is None else padding[:, None, None, :]
            out = attention(query, key, value, attn_mask=mask, is_causal=causal, scale=scaling,
                            enable_gqa=True, sparsity=sparsity, window=window)
        else:
            out = attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                            enable_gqa=True, sparsity=sparsity)
    return out.transpose(1, 2).contiguous(), None


register()
