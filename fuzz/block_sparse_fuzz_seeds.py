#!/usr/bin/env python3
"""Writes the seed corpus of block_sparse_fuzz into the directory given as first argument:
valid dfss_block_sparse.safetensors images for the fuzz target's model (zero weights) and
typical broken ones. Pure Python."""
import json
import os
import struct
import sys

FORMAT = "dfss-block-sparse/1"


def image(items, metadata):
    header = {"__metadata__": metadata}
    data = b""
    for name, dtype, shape, raw in items:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    body = text.encode()
    return struct.pack("<Q", len(body)) + body + data


def layer(name, out, inp, n, m, v, offsets=None):
    blocks, kept = -(-out // v), inp // m * n
    if offsets is None:
        offsets = bytes(list(range(n)) * (blocks * inp // m))
    return [(name + ".columns", "U8", (blocks, kept), offsets),
            (name + ".values", "F32", (blocks, kept, v), bytes(4 * blocks * kept * v))]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    inter, output = "encoder.layer.0.intermediate.dense", "encoder.layer.0.output.dense"
    seeds = {
        "both_2of4x16": image(layer(inter, 48, 16, 2, 4, 16) + layer(output, 16, 48, 2, 4, 16),
                              {"format": FORMAT, inter: "2:4x16", output: "2:4x16"}),
        "one_1of8x4": image(layer(output, 16, 48, 1, 8, 4), {"format": FORMAT, output: "1:8x4"}),
        "per_row_3of4x1": image(layer(inter, 48, 16, 3, 4, 1), {"format": FORMAT, inter: "3:4x1"}),
        "no_format": image(layer(inter, 48, 16, 2, 4, 16), {inter: "2:4x16"}),
        "bad_offset": image(layer(inter, 48, 16, 1, 4, 16, bytes([9] * 12)),
                            {"format": FORMAT, inter: "1:4x16"}),
        "bad_pattern": image(layer(inter, 48, 16, 2, 4, 16), {"format": FORMAT, inter: "2:4x"}),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
