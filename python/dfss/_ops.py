"""The torch.library ops dfss::attention_fwd and dfss::attention_bwd, and dfss.attention.

The C++ extension (dfss._C) takes raw data pointers, dtypes, shapes and strides, so nothing
here depends on torch's C++ ABI. The ops are registered with fake (meta) implementations,
so torch.compile can trace them, and the forward is differentiable through the backward op.
"""

from __future__ import annotations

import math
import re
from typing import Optional

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import _C

__all__ = ["attention", "attention_fwd", "attention_bwd"]

_DTYPE_NAMES = {torch.float32: "f32", torch.bfloat16: "bf16"}


def _spec(t: torch.Tensor, dtype_name: Optional[str] = None):
    """(data pointer, dtype name, shape, strides) of a 4-D CPU tensor, for dfss._C."""
    return (t.data_ptr(), dtype_name or _DTYPE_NAMES[t.dtype], tuple(t.shape), tuple(t.stride()))


def _key_padding_args(key_padding: Optional[torch.Tensor]):
    if key_padding is None:
        return 0, -1
    return key_padding.data_ptr(), key_padding.stride(0)


# --------------------------------------------------------------------------------------
# The ops. Arguments are already validated and normalized by dfss.attention:
#   key_padding: None or additive fp32 [B, Lk] with unit column stride
#   score_mask:  None or additive fp32 [B, Hq, Lq, Lk] (zero strides broadcast)
#   sparsity:    "dense", "N:M", "topk:K" or "dsa:K:block=B" (canonical form)
# --------------------------------------------------------------------------------------


@torch.library.custom_op("dfss::attention_fwd", mutates_args=(), device_types="cpu")
def attention_fwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding: Optional[torch.Tensor],
    score_mask: Optional[torch.Tensor],
    scale: Optional[float],
    is_causal: bool,
    window: int,
    sparsity: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """out [B, Hq, Lq, dv] (dtype of q) and log_sum_exp [B, Hq, Lq] (fp32)."""
    return _forward(q, k, v, key_padding, score_mask, scale, is_causal, window, sparsity)


def _forward(q, k, v, key_padding, score_mask, scale, is_causal, window, sparsity):
    """attention_fwd's body: also called directly where the op's dispatch can be skipped."""
    batch, heads, lq, _ = q.shape
    out = torch.empty((batch, heads, lq, v.shape[3]), dtype=q.dtype)
    lse = torch.empty((batch, heads, lq), dtype=torch.float32)
    key_padding_ptr, key_padding_stride = _key_padding_args(key_padding)
    _C.forward(
        _spec(q), _spec(k), _spec(v), _spec(out),
        key_padding_ptr, key_padding_stride,
        None if score_mask is None else _spec(score_mask, "f32"),
        scale, is_causal, window, lse.data_ptr(), torch.get_num_threads(), sparsity, "fused",
    )
    return out, lse


@attention_fwd.register_fake
def _attention_fwd_fake(q, k, v, key_padding, score_mask, scale, is_causal, window, sparsity):
    batch, heads, lq, _ = q.shape
    out = q.new_empty((batch, heads, lq, v.shape[3]))
    lse = q.new_empty((batch, heads, lq), dtype=torch.float32)
    return out, lse


@torch.library.custom_op("dfss::attention_bwd", mutates_args=(), device_types="cpu")
def attention_bwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    d_out: torch.Tensor,
    lse: torch.Tensor,
    key_padding: Optional[torch.Tensor],
    score_mask: Optional[torch.Tensor],
    scale: Optional[float],
    is_causal: bool,
    window: int,
    sparsity: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dq, dk, dv (dtype and shape of q, k, v; contiguous) for d_out = dL/d(out)."""
    dq = torch.empty(q.shape, dtype=q.dtype)
    dk = torch.empty(k.shape, dtype=k.dtype)
    dv = torch.empty(v.shape, dtype=v.dtype)
    lse = lse.contiguous()
    d_out = d_out.to(out.dtype)
    key_padding_ptr, key_padding_stride = _key_padding_args(key_padding)
    _C.backward(
        _spec(q), _spec(k), _spec(v), _spec(out), _spec(d_out), lse.data_ptr(),
        _spec(dq), _spec(dk), _spec(dv),
        key_padding_ptr, key_padding_stride,
        None if score_mask is None else _spec(score_mask, "f32"),
        scale, is_causal, window, torch.get_num_threads(), sparsity, "fused",
    )
    return dq, dk, dv


@attention_bwd.register_fake
def _attention_bwd_fake(q, k, v, out, d_out, lse, key_padding, score_mask, scale, is_causal,
                        window, sparsity):
    return (q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape))


def _setup_context(ctx, inputs, output):
    q, k, v, key_padding, score_mask, scale, is_causal, window, sparsity = inputs
    out, lse = output
    # The log-sum-exp is an auxiliary output: no gradient flows through it.
    ctx.mark_non_differentiable(lse)
    ctx.save_for_backward(q, k, v, out, lse, key_padding, score_mask)
    ctx.options = (scale, is_causal, window, sparsity)


def _backward(ctx, d_out, _d_lse):
    q, k, v, out, lse, key_padding, score_mask = ctx.saved_tensors
    scale, is_causal, window, sparsity = ctx.options
    dq, dk, dv = attention_bwd(q, k, v, out, d_out, lse, key_padding, score_mask, scale,
                               is_causal, window, sparsity)
    # Masks receive no gradient (dfss.attention refuses a mask that requires one).
    return dq, dk, dv, None, None, None, None, None, None


attention_fwd.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------------------
# The user-facing function.
# --------------------------------------------------------------------------------------


def _plain_eager_call(*tensors) -> bool:
    """Whether nothing can observe the op here: eager mode, no gradient to record, plain
    tensors, no Python dispatch or function modes and no profiler. Then dfss.attention runs
    the op's body directly: the op's dispatch costs about 35 µs a call, more than a decode
    step against a short cache takes. Anywhere else (autograd, torch.compile, fake tensors,
    opcheck, the profiler) it goes through the registered op."""
    if torch.compiler.is_compiling() or torch.autograd._profiler_enabled():
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if type(t) is not torch.Tensor or (grad and t.requires_grad):
            return False
    return (not torch._C._is_torch_function_mode_enabled()
            and _get_current_dispatch_mode() is None)


def _check_tensor(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise RuntimeError(f"dfss.attention is CPU only: {name} is on {t.device}")
    if t.layout != torch.strided:
        raise TypeError(f"{name}: expected a dense (strided) tensor, got layout {t.layout}")


_PATTERN = re.compile(r"(-?[0-9]+):(-?[0-9]+)")
_COUNT = re.compile(r"-?[0-9]+")
_INT64_MAX = 2**63 - 1
_DSA_DEFAULT_BLOCK = 16
_DSA_MAX_BLOCK = 128


def _parse_count(text: str) -> int:
    """A positive int64 written in full (as the C++ parser's from_chars), else 0."""
    if not _COUNT.fullmatch(text):
        return 0
    value = int(text)
    return value if 0 < value <= _INT64_MAX else 0


def _normalize_sparsity(sparsity) -> str:
    """"dense", "N:M", "topk:K" or "dsa:K[:block=B]"; the same rule, canonical form and message
    as the C++ dfss::parse_pattern (kept in Python so that torch.compile traces it; tests check
    that both agree)."""
    if sparsity is None:
        return "dense"
    if not isinstance(sparsity, str):
        raise TypeError(
            f"sparsity: expected None or a pattern string (\"dense\", \"N:M\", \"topk:K\", "
            f"\"dsa:K\"), got {type(sparsity).__name__}")
    if sparsity == "dense":
        return sparsity

    def fail(why: str = ""):
        return ValueError(
            "sparsity: expected 'dense', 'N:M' with 1 <= N < M <= 8 (e.g. 2:4, 1:2, 2:8), "
            "'topk:K' or 'dsa:K[:block=B]' (K >= 1; B a power of two <= 128 dividing K, default "
            f"16){why}; got '{sparsity}'")

    head, colon, rest = sparsity.partition(":")
    if not colon:
        raise fail()
    if head in ("topk", "dsa"):
        predicted = head == "dsa"
        count, separator, option = rest.partition(":")
        keep = _parse_count(count)
        if keep == 0:
            raise fail()
        block = 1
        if separator:
            if not predicted or not option.startswith("block="):
                raise fail()
            block = _parse_count(option[6:])
        elif predicted:
            block = min(_DSA_DEFAULT_BLOCK, keep & -keep)
        if block < 1 or block > _DSA_MAX_BLOCK or block & (block - 1) or keep % block:
            raise fail(f" (block {block})")
        return f"dsa:{keep}:block={block}" if predicted else f"topk:{keep}"
    match = _PATTERN.fullmatch(sparsity)
    if match and 1 <= int(match[1]) < int(match[2]) <= 8:
        return f"{int(match[1])}:{int(match[2])}"
    raise fail()


def _normalize_mask(attn_mask: torch.Tensor, shape4: tuple[int, int, int, int]):
    """(key_padding [B, Lk] or None, score_mask [B, Hq, Lq, Lk] or None), additive fp32."""
    batch, heads, lq, lk = shape4
    _check_tensor(attn_mask, "attn_mask")
    if attn_mask.dtype != torch.bool and not attn_mask.dtype.is_floating_point:
        raise TypeError(
            f"attn_mask: expected a bool (True = attend) or floating-point (additive) mask, got "
            f"dtype {attn_mask.dtype}")
    if attn_mask.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            "attn_mask: dfss.attention computes no gradient for the mask, but attn_mask requires "
            "grad; pass attn_mask.detach() if a constant mask is meant")
    expected = (batch, heads, lq, lk)
    ok = attn_mask.dim() <= 4
    if ok:
        try:
            ok = tuple(torch.broadcast_shapes(tuple(attn_mask.shape), expected)) == expected
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"attn_mask: expected a shape broadcastable to [B, Hq, Lq, Lk] = {list(expected)}, got "
            f"{list(attn_mask.shape)}")
    if attn_mask.dtype == torch.bool:
        additive = torch.zeros(attn_mask.shape, dtype=torch.float32).masked_fill_(
            attn_mask.logical_not(), float("-inf"))
    else:
        additive = attn_mask.to(torch.float32)
    mask4 = additive.reshape((1,) * (4 - additive.dim()) + tuple(additive.shape))
    if mask4.shape[1] == 1 and mask4.shape[2] == 1 and mask4.shape[3] == lk:
        # Key padding, broadcast over heads and query rows: the kernels' cheaper path.
        key_padding = mask4[:, 0, 0, :].expand(batch, lk)
        if key_padding.stride(1) != 1 or (batch > 1 and key_padding.stride(0) < lk):
            key_padding = key_padding.contiguous()
        return key_padding, None
    return None, mask4.expand(expected)


def _prepare(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, sparsity,
             window):
    """Checks dfss.attention's arguments; returns (key_padding, score_mask, scale, window,
    pattern) as the ops take them."""
    for t, name in ((query, "query"), (key, "key"), (value, "value")):
        _check_tensor(t, name)
    for t, name in ((query, "query"), (key, "key"), (value, "value")):
        if t.dim() != 4:
            layout = "[B, Hq, Lq, d]" if name == "query" else "[B, Hkv, Lk, d]"
            raise ValueError(f"{name}: expected a 4-D tensor {layout}, got shape {list(t.shape)}")
    if query.dtype not in _DTYPE_NAMES:
        raise TypeError(
            f"query: expected dtype torch.float32 or torch.bfloat16, got {query.dtype}")
    for t, name in ((key, "key"), (value, "value")):
        if t.dtype != query.dtype:
            raise TypeError(f"{name}: expected the dtype of query ({query.dtype}), got {t.dtype}")
    batch, heads, lq, d = query.shape
    kv_heads, lk = key.shape[1], key.shape[2]
    if key.shape[0] != batch or key.shape[3] != d:
        raise ValueError(
            f"key: expected shape [B, Hkv, Lk, d] with B = {batch} and d = {d} of query, got "
            f"{list(key.shape)}")
    if tuple(value.shape[:3]) != (batch, kv_heads, lk):
        raise ValueError(
            f"value: expected shape [B, Hkv, Lk, dv] with B, Hkv, Lk = {batch}, {kv_heads}, {lk} "
            f"of query and key, got {list(value.shape)}")
    if kv_heads != heads:
        if not enable_gqa:
            raise ValueError(
                f"key: expected {heads} heads as query, got {kv_heads} (pass enable_gqa=True for "
                f"grouped-query attention)")
        if kv_heads == 0 or heads % kv_heads != 0:
            raise ValueError(
                f"key: expected a number of heads that divides the {heads} heads of query, got "
                f"{kv_heads}")
    if not isinstance(dropout_p, (int, float)) or dropout_p != 0:
        raise ValueError(f"dropout_p: dfss.attention implements no dropout, expected 0.0, got "
                         f"{dropout_p!r}")
    if not isinstance(is_causal, bool):
        raise TypeError(f"is_causal: expected a bool, got {type(is_causal).__name__}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"scale: expected None or a float, got {type(scale).__name__}")
        if not math.isfinite(scale):
            raise ValueError(f"scale: expected a finite value, got {scale}")
        scale = float(scale)
    if window is None:
        window = 0
    elif isinstance(window, bool) or not isinstance(window, int):
        raise TypeError(f"window: expected None or an int, got {type(window).__name__}")
    elif window < 0:
        raise ValueError(f"window: expected >= 0 (0 or None = no sliding window), got {window}")
    pattern = _normalize_sparsity(sparsity)

    key_padding = score_mask = None
    if attn_mask is not None:
        key_padding, score_mask = _normalize_mask(attn_mask, (batch, heads, lq, lk))

    return key_padding, score_mask, scale, window, pattern


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    enable_gqa: bool = False,
    *,
    sparsity: Optional[str] = None,
    window: Optional[int] = None,
    return_lse: bool = False,
):
    """Scaled dot-product attention on the CPU, with torch SDPA's argument conventions.

    query [B, Hq, Lq, d], key [B, Hkv, Lk, d], value [B, Hkv, Lk, dv]: any strides, all
    float32 or all bfloat16; returns out [B, Hq, Lq, dv] in their dtype (and, with
    return_lse=True, also the fp32 log-sum-exp [B, Hq, Lq] of each row's softmax).

    attn_mask: bool (True = attend) or additive float, broadcastable to [B, Hq, Lq, Lk].
    is_causal: query i sees keys j <= i + Lk - Lq (bottom-right aligned; the same as SDPA's
        top-left alignment when Lq == Lk, and what a KV-cache decode step needs).
    window: sliding window; query i sees only keys j > i + Lk - Lq - window.
    enable_gqa: must be True when Hkv < Hq (as for SDPA); K/V heads are never copied.
    sparsity: None or "dense"; "N:M" (1 <= N < M <= 8): in each aligned group of M keys
        only the N largest scores of a row are kept (DFSS); "topk:K": each query row keeps
        its K largest scores; "dsa:K[:block=B]": each row keeps K keys in blocks of B chosen
        by a pooled-key predictor, then attends exactly over them. Gradients flow through
        the kept entries only (see docs/python.md).
    dropout_p: must be 0 (no dropout is implemented).
    A row that sees no key gives zeros. See docs/python.md.
    """
    key_padding, score_mask, scale, window, pattern = _prepare(
        query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, sparsity, window)
    op = _forward if _plain_eager_call(query, key, value) else attention_fwd
    out, lse = op(query, key, value, key_padding, score_mask, scale, is_causal, window, pattern)
    return (out, lse) if return_lse else out


def selected_keys(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    is_causal: bool = False,
    scale: Optional[float] = None,
    enable_gqa: bool = False,
    *,
    sparsity: str,
    window: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys each query row keeps under sparsity "topk:K" or "dsa:K[:block=B]", exactly
    as dfss.attention selects them (same arguments): (keys, counts) with keys int64
    [B, Hq, Lq, min(K, Lk)] (increasing, -1 past counts) and counts int64 [B, Hq, Lq]. For
    analysis, e.g. the recall of dsa's predictor against topk."""
    key_padding, score_mask, scale, window, pattern = _prepare(
        query, key, value, attn_mask, 0.0, is_causal, scale, enable_gqa, sparsity, window)
    if not pattern.startswith(("topk:", "dsa:")):
        raise ValueError(f"sparsity: expected 'topk:K' or 'dsa:K[:block=B]' for selected_keys, "
                         f"got '{pattern}'")
    key_padding_ptr, key_padding_stride = _key_padding_args(key_padding)
    stride, keys, counts = _C.selected_keys(
        _spec(query), _spec(key), _spec(value), key_padding_ptr, key_padding_stride,
        None if score_mask is None else _spec(score_mask, "f32"), scale, is_causal, window,
        torch.get_num_threads(), pattern)
    batch, heads, lq, _ = query.shape

    def tensor(data: bytes, dtype) -> torch.Tensor:  # frombuffer refuses an empty buffer
        return torch.frombuffer(bytearray(data), dtype=dtype) if data else torch.empty(0, dtype=dtype)

    counts = tensor(counts, torch.int64).reshape(batch, heads, lq)
    keys = tensor(keys, torch.int32).to(torch.int64).reshape(batch, heads, lq, stride)
    keys[torch.arange(stride).expand_as(keys) >= counts.unsqueeze(-1)] = -1
    return keys, counts
