"""Block-structured N:M masks of linear layers.

In a layer's weight W [out, in], every block of V consecutive output rows keeps, in every group
of M consecutive input columns, the same N columns: those of largest importance summed over the
block's rows (ties to the lower column), where importance is |W| (magnitude) or |W| times the
column's activation norm ‖X_c‖₂ over calibration text (Wanda). dfss's C++ pruning
(BlockSparseMatrix::prune) follows the same rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

# The linear layers of a BERT encoder layer, by their Hugging Face names.
LINEAR_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")
_LAYER_NAME = re.compile(r"^encoder\.layer\.\d+\.(" + "|".join(map(re.escape, LINEAR_PARTS)) +
                         r")$")
# Which parts `prune(layers=...)` can keep dense, by kind. Q, K and V go together: dfss's
# runtime stacks them into one block-sparse QKV layer.
LAYER_KINDS = {"qkv": LINEAR_PARTS[:3], "attention-output": LINEAR_PARTS[3:4],
               "ffn-in": LINEAR_PARTS[4:5], "ffn-out": LINEAR_PARTS[5:6]}
_KIND_GROUPS = {"all": tuple(LAYER_KINDS), "ffn": ("ffn-in", "ffn-out"),
                "attention": ("qkv", "attention-output")}


def parse_layer_kinds(text: str) -> tuple[str, ...]:
    """"all", "ffn", "attention", or a comma list of qkv, attention-output, ffn-in, ffn-out."""
    kinds = []
    for item in (text.split(",") if isinstance(text, str) else [None]):
        item = item.strip() if item is not None else None
        if item in _KIND_GROUPS:
            kinds += _KIND_GROUPS[item]
        elif item in LAYER_KINDS:
            kinds.append(item)
        else:
            raise ValueError(f"layers: expected all, ffn, attention or a comma list of "
                             f"{', '.join(LAYER_KINDS)}, got {text!r}")
    return tuple(dict.fromkeys(kinds))


@dataclass(frozen=True)
class BlockPattern:
    n: int
    m: int
    block_rows: int = 16

    @property
    def sparsity(self) -> float:
        return 1.0 - self.n / self.m

    def __str__(self) -> str:
        return f"{self.n}:{self.m}x{self.block_rows}"


def parse_pattern(text: str) -> BlockPattern:
    """"N:M" or "N:MxV" (V, the block rows, defaults to 16); 1 <= N <= M <= 64, 1 <= V <= 64."""
    match = re.fullmatch(r"(\d+):(\d+)(?:x(\d+))?", text.strip()) if isinstance(text, str) else None
    if match:
        n, m, v = int(match[1]), int(match[2]), int(match[3] or 16)
        if 1 <= n <= m <= 64 and 1 <= v <= 64:
            return BlockPattern(n, m, v)
    raise ValueError(f"pattern: expected N:M or N:MxV with 1 <= N <= M <= 64 and 1 <= V <= 64 "
                     f"(e.g. 2:4x16), got {text!r}")


def linear_layers(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The encoder's prunable linear layers by Hugging Face BertModel name (a "bert." prefix of
    a task model is dropped), in model order."""
    out = {}
    for name, module in model.named_modules():
        short = name[len("bert."):] if name.startswith("bert.") else name
        if isinstance(module, torch.nn.Linear) and _LAYER_NAME.match(short):
            out[short] = module
    if not out:
        raise ValueError("model: no BERT encoder linear layers (encoder.layer.N.attention.self."
                         "query, ...) found")
    return out


def block_columns(weight: torch.Tensor, pattern: BlockPattern,
                  column_scale: torch.Tensor | None = None) -> torch.Tensor:
    """The kept columns' offsets within their groups, [blocks, in / M, N] (int64, increasing
    within a group), for weight [out, in]."""
    out_features, in_features = weight.shape
    if in_features % pattern.m:
        raise ValueError(f"pattern {pattern}: in_features {in_features} is not a multiple of "
                         f"M = {pattern.m}")
    importance = weight.detach().abs().double()
    if column_scale is not None:
        importance = importance * column_scale.double()[None, :]
    v = pattern.block_rows
    blocks = -(-out_features // v)
    padded = torch.zeros(blocks * v, in_features, dtype=torch.float64)
    padded[:out_features] = importance
    score = padded.view(blocks, v, in_features // pattern.m, pattern.m).sum(dim=1)
    # Stable descending sort: equal importance keeps the lower column first.
    order = torch.sort(score, dim=-1, descending=True, stable=True).indices
    return torch.sort(order[..., :pattern.n], dim=-1).values


def mask_from_columns(columns: torch.Tensor, out_features: int, in_features: int,
                      pattern: BlockPattern) -> torch.Tensor:
    """The 0/1 float mask [out, in] of block_columns' result."""
    blocks, groups, _ = columns.shape
    group_mask = torch.zeros(blocks, groups, pattern.m)
    group_mask.scatter_(-1, columns, 1.0)
    rows = group_mask.view(blocks, 1, groups * pattern.m).expand(blocks, pattern.block_rows, -1)
    return rows.reshape(blocks * pattern.block_rows, in_features)[:out_features].contiguous()


@torch.inference_mode()
def activation_norms(model, tokenizer, texts: list[str], max_length: int = 256,
                     batch_size: int = 16) -> dict[str, torch.Tensor]:
    """‖X_c‖₂ of every prunable layer's input column c over the real (unpadded) tokens of
    `texts`, by layer name."""
    layers = linear_layers(model)
    sums = {name: torch.zeros(layer.in_features, dtype=torch.float64)
            for name, layer in layers.items()}
    current_mask = {}

    def hook(name):
        def record(_module, inputs):
            x = inputs[0].detach().double()
            keep = current_mask["mask"].reshape(-1).bool()
            sums[name] += x.reshape(-1, x.shape[-1])[keep].pow(2).sum(dim=0)
        return record

    handles = [layer.register_forward_pre_hook(hook(name)) for name, layer in layers.items()]
    try:
        for start in range(0, len(texts), batch_size):
            features = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                 max_length=max_length, return_tensors="pt")
            current_mask["mask"] = features["attention_mask"]
            model(**features)
    finally:
        for handle in handles:
            handle.remove()
    return {name: total.sqrt() for name, total in sums.items()}


@torch.no_grad()
def prune(model, pattern: BlockPattern, method: str = "magnitude",
          norms: dict[str, torch.Tensor] | None = None,
          layers: tuple[str, ...] = tuple(LAYER_KINDS)) -> dict[str, torch.Tensor]:
    """Zeroes the pruned weights of every prunable layer of the `layers` kinds (LAYER_KINDS) in
    place; returns the kept columns (block_columns) by layer name. method "wanda" needs `norms`
    (activation_norms)."""
    parts = {part for kind in layers for part in LAYER_KINDS[kind]}
    if method not in ("magnitude", "wanda"):
        raise ValueError(f"method: expected magnitude or wanda, got {method!r}")
    if method == "wanda" and norms is None:
        raise ValueError("method wanda: needs the activation norms of calibration text")
    kept = {}
    for name, layer in linear_layers(model).items():
        if _LAYER_NAME.match(name)[1] not in parts:
            continue
        scale = norms[name] if method == "wanda" else None
        columns = block_columns(layer.weight, pattern, scale)
        layer.weight.mul_(mask_from_columns(columns, *layer.weight.shape, pattern).to(
            layer.weight.dtype))
        kept[name] = columns
    return kept


@torch.no_grad()
def apply_masks(model, kept: dict[str, torch.Tensor], pattern: BlockPattern) -> None:
    """Zeroes again what `kept` prunes (after an optimizer step)."""
    layers = linear_layers(model)
    for name, columns in kept.items():
        weight = layers[name].weight
        weight.mul_(mask_from_columns(columns, *weight.shape, pattern).to(weight.dtype))
