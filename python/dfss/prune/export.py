"""The pruned model folder: a complete dense checkpoint (zeros where pruned) that transformers
and sentence-transformers load, plus dfss_block_sparse.safetensors, the compressed layers dfss
runs on its block-sparse kernels:

    <layer>.columns  U8  [blocks, kept]     offset of each kept column within its group of M
    <layer>.values   F32 [blocks, kept, V]  the kept weights, [b][j][r] = W[b*V + r][column]
    __metadata__: {"format": "dfss-block-sparse/1", "<layer>": "N:MxV", ...}

with blocks = ceil(out / V) and kept = in / M * N (rows past `out` in the last block are 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .masks import BlockPattern, linear_layers

FILE_NAME = "dfss_block_sparse.safetensors"
FORMAT = "dfss-block-sparse/1"


def compressed(weight: torch.Tensor, columns: torch.Tensor, pattern: BlockPattern):
    """(offsets U8 [blocks, kept], values F32 [blocks, kept, V]) of a pruned weight [out, in]."""
    out_features, in_features = weight.shape
    v = pattern.block_rows
    blocks, groups, n = columns.shape
    absolute = columns + (torch.arange(groups) * pattern.m)[None, :, None]
    absolute = absolute.reshape(blocks, groups * n)
    padded = torch.zeros(blocks * v, in_features, dtype=torch.float32)
    padded[:out_features] = weight.detach().float()
    rows = padded.view(blocks, v, in_features)
    values = torch.gather(rows, 2, absolute[:, None, :].expand(blocks, v, -1))  # [b, V, kept]
    return (columns.reshape(blocks, groups * n).numpy().astype(np.uint8),
            np.ascontiguousarray(values.transpose(1, 2).numpy()))


def write_block_sparse(folder: Path, model, kept: dict[str, torch.Tensor],
                       pattern: BlockPattern) -> Path:
    from safetensors.numpy import save_file

    layers = linear_layers(model)
    tensors, metadata = {}, {"format": FORMAT}
    for name, columns in kept.items():
        offsets, values = compressed(layers[name].weight, columns, pattern)
        tensors[name + ".columns"] = offsets
        tensors[name + ".values"] = values
        metadata[name] = str(pattern)
    path = Path(folder) / FILE_NAME
    save_file(tensors, str(path), metadata=metadata)
    return path
