"""PyTorch *emulation* of sparse attention patterns, for accuracy analysis only.

These functions are not the dfss op: they compute the full Lq x Lk score matrix in torch (in
row chunks), select keys with the rule of a pattern and run the softmax over the kept keys.
They exist to measure what a pattern does to a real model before (or independently of) the
C++ kernels, and to compute quantities the op does not report (kept mass, recall of a
predictor against exact top-k). Used by scripts/eval-gemma-perplexity.py; every result they
produce is labelled "emulation" there.

Patterns (the strings follow the op's syntax, prefixed with "emu-"):
  emu-topk:K          exact fp32 scores; each row keeps its K largest scores among the allowed
                      keys (ties go to the lower key index); a row with <= K allowed keys keeps
                      them all.
  emu-dsa:K,block=B   DSA-style block predictor: the predicted score of a key block is
                      q . (mean of the block's keys); each row keeps the ceil(K/B) blocks with
                      the highest predicted scores (ties to the lower block), then exact
                      attention over the allowed keys of those blocks. Blocks are aligned at
                      key 0 (the last one may be partial). For a causal row the block holding
                      the diagonal is pooled over its keys up to the diagonal only, so the
                      selection never looks at future keys.
  emu-dsa:K,block=B,sink   the same, but the first block (which holds the attention sink, the
                      <bos> key) and the row's diagonal block are always among the kept
                      blocks (they count against the ceil(K/B) budget): a diagnostic variant.
  N:M                 (selection only, for kept mass) the op's DFSS rule: in each aligned
                      group of M keys the N largest scores (ties to the lower index); a partial
                      last group is padded with -inf.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["Pattern", "parse_emulated", "topk_keep", "block_scores", "blocks_keep", "nm_keep",
           "emulated_attention", "KeyBlocks"]


@dataclass(frozen=True)
class Pattern:
    kind: str            # "topk" or "dsa"
    k: int
    block: int = 1
    sink: bool = False   # dsa: always keep the first block (attention sink) and the diagonal one

    def __str__(self):
        return f"emu-topk:{self.k}" if self.kind == "topk" else \
            f"emu-dsa:{self.k},block={self.block}" + (",sink" if self.sink else "")


_EMU = re.compile(r"emu-(topk|dsa):([0-9]+)(?:,block=([0-9]+))?(,sink)?")


def parse_emulated(text: str) -> Optional[Pattern]:
    """Pattern for "emu-topk:K" / "emu-dsa:K,block=B"; None if `text` does not start with
    "emu-"; ValueError for a malformed emulated pattern."""
    if not text.startswith("emu-"):
        return None
    match = _EMU.fullmatch(text)
    if not match or int(match[2]) < 1:
        raise ValueError(f"pattern: expected emu-topk:K or emu-dsa:K,block=B with K, B >= 1, "
                         f"got '{text}'")
    kind, k = match[1], int(match[2])
    if kind == "topk":
        if match[3] is not None or match[4]:
            raise ValueError(f"pattern: emu-topk takes no block size, got '{text}'")
        return Pattern("topk", k)
    block = int(match[3]) if match[3] is not None else 64
    if block < 1:
        raise ValueError(f"pattern: block must be >= 1, got '{text}'")
    return Pattern("dsa", k, block, bool(match[4]))


def _keep_largest(s: torch.Tensor, k: int, kth: Optional[torch.Tensor] = None) -> torch.Tensor:
    """bool mask of the k largest entries along the last dim, ties to the lower index.
    kth: the k-th largest value per row if already known (shape [..., 1])."""
    n = s.shape[-1]
    if k >= n:
        return torch.ones_like(s, dtype=torch.bool)
    if kth is None:
        kth = s.topk(k, dim=-1, sorted=True).values[..., -1:]
    greater = s > kth
    equal = s == kth
    room = k - greater.sum(-1, keepdim=True)
    # Among the entries equal to the k-th value, the first `room` ones (lowest index) survive.
    return greater | (equal & (equal.cumsum(-1) <= room))


def topk_keep(s: torch.Tensor, ks: list[int]) -> dict[int, torch.Tensor]:
    """{K: keep mask} for exact top-K of scores `s` (-inf = not allowed) along the last dim;
    masked keys are never kept. One sort serves every K."""
    n = s.shape[-1]
    kmax = min(max(ks), n)
    values = s.topk(kmax, dim=-1, sorted=True).values
    allowed = s != float("-inf")
    result = {}
    for k in ks:
        if k >= n:
            result[k] = allowed.clone()
        else:
            result[k] = _keep_largest(s, k, values[..., k - 1:k]) & allowed
    return result


class KeyBlocks:
    """Pooled keys of one [B, Hkv, Lk, d] key tensor for block size `block`: the mean of each
    aligned block, and the running mean inside each block (for the diagonal block of a causal
    row)."""

    def __init__(self, k: torch.Tensor, block: int):
        b, h, lk, d = k.shape
        nb = math.ceil(lk / block)
        padded = torch.zeros(b, h, nb * block, d, dtype=torch.float32)
        padded[:, :, :lk] = k.float()
        blocks = padded.view(b, h, nb, block, d)
        counts = torch.full((nb,), float(block))
        counts[-1] = lk - (nb - 1) * block
        self.block, self.nb, self.lk = block, nb, lk
        self.means = blocks.sum(3) / counts.view(1, 1, nb, 1)               # [B, Hkv, nb, d]
        running = blocks.cumsum(3) / torch.arange(1, block + 1).view(1, 1, 1, block, 1)
        self.prefix = running.view(b, h, nb * block, d)[:, :, :lk]          # [B, Hkv, Lk, d]


def block_scores(q: torch.Tensor, blocks: KeyBlocks, rows: torch.Tensor, allowed: torch.Tensor,
                 causal: bool, sink: bool = False) -> torch.Tensor:
    """Predicted block scores [B, Hkv, G, c, nb] for a chunk of query rows.

    q: [B, Hkv, G, c, d] (query heads grouped by their KV head); rows: [c] the key index of
    each row's diagonal (for a causal row, the last key it may see); allowed: bool
    [B or 1, 1 or Hkv, G or 1, c, Lk]. A block with no allowed key scores -inf."""
    scores = torch.einsum("bhgcd,bhnd->bhgcn", q.float(), blocks.means)
    if causal:
        # The diagonal block is pooled over keys <= the row's diagonal only.
        diag_block = torch.div(rows, blocks.block, rounding_mode="floor")
        prefix = blocks.prefix[:, :, rows]                                  # [B, Hkv, c, d]
        diag = torch.einsum("bhgcd,bhcd->bhgc", q.float(), prefix)
        index = diag_block.view(1, 1, 1, -1, 1).expand(*scores.shape[:4], 1)
        scores.scatter_(-1, index, diag.unsqueeze(-1))
    nb, block = blocks.nb, blocks.block
    pad = nb * block - allowed.shape[-1]   # allowed may cover only the first keys
    allowed_pad = torch.nn.functional.pad(allowed, (0, pad), value=False) if pad else allowed
    any_allowed = allowed_pad.reshape(*allowed_pad.shape[:-1], nb, block).any(-1)
    if sink:
        # +inf ranks first; the masked_fill below still drops a block with no allowed key.
        scores[..., 0] = float("inf")
        diag_block = torch.div(rows, blocks.block, rounding_mode="floor").clamp(max=nb - 1)
        index = diag_block.view(1, 1, 1, -1, 1).expand(*scores.shape[:4], 1)
        scores.scatter_(-1, index, float("inf"))
    return scores.masked_fill(~any_allowed, float("-inf"))


def blocks_keep(scores: torch.Tensor, ks: list[int], blocks: KeyBlocks,
                allowed: torch.Tensor) -> dict[int, torch.Tensor]:
    """{K: key keep mask [..., Lk']}: the ceil(K/B) best blocks of each row, then the row's
    allowed keys inside them (Lk' = allowed.shape[-1] <= Lk: keys past it are not allowed)."""
    counts = [math.ceil(k / blocks.block) for k in ks]
    keep_blocks = topk_keep(scores, counts)
    result = {}
    for k, count in zip(ks, counts):
        keys = keep_blocks[count].repeat_interleave(blocks.block, dim=-1)[..., :allowed.shape[-1]]
        result[k] = keys & allowed
    return result


def nm_keep(s: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """DFSS N:M selection along the last dim (groups aligned at 0, -inf padding, ties to the
    lower index); masked (-inf) entries are never kept."""
    lk = s.shape[-1]
    groups = math.ceil(lk / m)
    padded = torch.nn.functional.pad(s, (0, groups * m - lk), value=float("-inf"))
    g = padded.view(*s.shape[:-1], groups, m)
    # rank of entry i in its group = #(entries greater) + #(equal entries at a lower index)
    a, b = g.unsqueeze(-1), g.unsqueeze(-2)                 # a: entry i, b: entry j
    lower = torch.ones(m, m, dtype=torch.bool).tril(-1)     # [i, j]: j < i
    rank = ((b > a) | ((b == a) & lower)).sum(-1)
    keep = (rank < n).view(*s.shape[:-1], groups * m)[..., :lk]
    return keep & (s != float("-inf"))


def _allowed_rows(attention_mask: Optional[torch.Tensor], r0: int, r1: int, lq: int, lk: int,
                  causal: bool) -> torch.Tensor:
    """bool [B or 1, 1, 1, c, Lk] (True = may attend) for query rows r0..r1-1."""
    if attention_mask is not None:
        mask = attention_mask[:, :, r0:r1]
        if mask.dtype != torch.bool:
            mask = mask == 0  # additive: 0 = attend (transformers' sdpa masks are bool)
        return mask.unsqueeze(2)
    i = torch.arange(r0, r1).unsqueeze(1) + (lk - lq)
    j = torch.arange(lk).unsqueeze(0)
    allowed = (j <= i) if causal else torch.ones(r1 - r0, lk, dtype=torch.bool)
    return allowed.view(1, 1, 1, r1 - r0, lk)


def emulated_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       attention_mask: Optional[torch.Tensor], causal: bool, scale: float,
                       pattern: Pattern, chunk: int = 256) -> torch.Tensor:
    """Attention [B, Hq, Lq, dv] under an emulated pattern. q [B, Hq, Lq, d], k/v
    [B, Hkv, Lk, d] (GQA: query head h uses KV head h // (Hq // Hkv)); attention_mask bool
    [B or 1, 1, Lq, Lk] or None (then `causal` decides, bottom-right aligned). fp32."""
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    g = hq // hkv
    qg = q.float().reshape(b, hkv, g, lq, d)
    kf, vf = k.float(), v.float()
    blocks = KeyBlocks(kf, pattern.block) if pattern.kind == "dsa" else None
    out = torch.empty(b, hkv, g, lq, v.shape[-1], dtype=torch.float32)
    for r0 in range(0, lq, chunk):
        r1 = min(lq, r0 + chunk)
        allowed = _allowed_rows(attention_mask, r0, r1, lq, lk, causal)
        qc = qg[:, :, :, r0:r1]
        s = torch.einsum("bhgcd,bhkd->bhgck", qc, kf) * scale
        s.masked_fill_(~allowed, float("-inf"))
        if pattern.kind == "topk":
            keep = topk_keep(s, [pattern.k])[pattern.k]
        else:
            rows = torch.arange(r0, r1) + (lk - lq)
            row_causal = _is_causal_chunk(allowed, rows)
            scores = block_scores(qc, blocks, rows, allowed, row_causal, pattern.sink)
            keep = blocks_keep(scores, [pattern.k], blocks, allowed)[pattern.k]
        s.masked_fill_(~keep, float("-inf"))
        p = torch.softmax(s, dim=-1).nan_to_num_(0.0)   # a row with no key gives zeros
        out[:, :, :, r0:r1] = torch.einsum("bhgck,bhkd->bhgcd", p, vf)
    return out.reshape(b, hq, lq, -1).to(q.dtype)


def _is_causal_chunk(allowed: torch.Tensor, rows: torch.Tensor) -> bool:
    """True when no row of the chunk may see a key past its diagonal."""
    lk = allowed.shape[-1]
    future = torch.arange(lk).view(1, -1) > rows.view(-1, 1)
    return not bool((allowed & future).any())
