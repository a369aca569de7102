#!/usr/bin/env python3
"""Writes the seed corpus of safetensors_fuzz into the directory given as first argument:
small valid .safetensors images of every supported dtype (laid out as the official writer
does) and typical broken ones. A second directory, if given, receives large inputs (up to
50 MB) that the fuzzer's -max_len cannot reach and that scripts/fuzz.sh replays under time
and memory limits: a header of 200k tensors (quadratic parsing took minutes), arrays of 25M
elements and 6M metadata entries (a JSON tree of them took gigabytes), deep nesting. Pure
Python, so it needs neither safetensors nor NumPy."""
import json
import os
import struct
import sys

SIZES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1,
         "U8": 1, "BOOL": 1}


def image(header, data=b"", pad=True):
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    if pad:  # the official writer pads with spaces so that the data is 8-byte aligned
        text += " " * (-len(text) % 8)
    body = text.encode("utf-8")
    return struct.pack("<Q", len(body)) + body + data


def tensors(items, metadata=None):
    """Header and data for [(name, dtype, shape, bytes)], packed in order."""
    header = {"__metadata__": metadata} if metadata is not None else {}
    data = b""
    for name, dtype, shape, raw in items:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def main():
    out = sys.argv[1]
    f32 = struct.pack("<6f", 1.0, -2.0, 0.5, float("inf"), float("nan"), 0.0)
    every = tensors([
        ("w", "F32", (2, 3), f32),
        ("d", "F64", (1,), struct.pack("<d", -1.5)),
        ("ids", "I64", (1, 2), struct.pack("<2q", 7, -8)),
        ("i", "I32", (), struct.pack("<i", 5)),
        ("h", "F16", (2,), struct.pack("<2H", 0x3C00, 0x7C01)),
        ("b", "BF16", (2,), struct.pack("<2H", 0x3F80, 0x0001)),
        ("s", "I16", (1,), struct.pack("<h", -3)),
        ("c", "I8", (2,), b"\xff\x01"),
        ("u", "U8", (3,), b"abc"),
        ("m", "BOOL", (2,), b"\x01\x00"),
        ("e", "F32", (0, 4), b""),
    ], metadata={"format": "pt"})
    one_header, one_data = tensors([("embeddings.word_embeddings.weight", "F32", (2, 3), f32)])
    seeds = {
        "every_dtype": image(*every),
        "one_f32": image(one_header, one_data),
        "unpadded": image(one_header, one_data, pad=False),
        "empty_object": image({}),
        "metadata_only": image({"__metadata__": {"a": "b"}}),
        "truncated": image(one_header, one_data)[:-5],
        "trailing": image(one_header, one_data + b"x"),
        "header_too_long": struct.pack("<Q", 1 << 40) + b"{}",
        "short": b"\x02\x00\x00",
        "not_object": image("[1,2]"),
        "bad_json": image('{"w":{"dtype":"F32",'),
        "unknown_dtype": image({"w": entry("F8_E4M3", [1], 0, 1)}, b"\x00"),
        "extra_key": image({"w": dict(entry("U8", [1], 0, 1), extra=0)}, b"\x00"),
        "negative_dim": image({"w": entry("U8", [-1], 0, 1)}, b"\x00"),
        "size_mismatch": image({"w": entry("F32", [2], 0, 4)}, f32[:4]),
        "overlap": image({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 1, 3)}, b"xyz"),
        "gap": image({"a": entry("U8", [1], 0, 1), "b": entry("U8", [1], 2, 3)}, b"xyz"),
        "duplicate": image('{"a":' + json.dumps(entry("U8", [1], 0, 1)) + ',"a":' +
                           json.dumps(entry("U8", [1], 0, 1)) + "}", b"x"),
        "overflow": image({"a": entry("U8", [1 << 32, 1 << 32], 0, 0)}),
        "bad_bool": image({"m": entry("BOOL", [1], 0, 1)}, b"\x02"),
        "empty": b"",
    }
    seeds["shape_rank_9"] = image({"w": entry("U8", [1] * 9, 0, 1)}, b"\x00")
    seeds["metadata_twice"] = image('{"__metadata__":{},"__metadata__":{}}')
    seeds["nested_offsets"] = image('{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,[0],0]}}')
    write_all(out, seeds)
    if len(sys.argv) > 2:
        write_all(sys.argv[2], large_seeds())


def large_seeds():
    """Inputs far beyond -max_len, each of which once cost minutes or gigabytes."""
    many = {}
    for i in range(200_000):
        many[f"t{i}"] = entry("U8", [0], 0, 0)
    zeros = ",".join(["0"] * 25_000_000)
    metadata = ",".join(f'"{i}":"v"' for i in range(6_000_000))
    return {
        "many_tensors_200k": image(many),
        "shape_25M": image('{"w":{"dtype":"U8","shape":[' + zeros + "]}}"),
        "offsets_25M": image('{"w":{"dtype":"U8","shape":[0],"data_offsets":[' + zeros + "]}}"),
        "metadata_6M": image('{"__metadata__":{' + metadata + "}}"),
        "nesting_1M": image("[" * 1_000_000 + "]" * 1_000_000),
    }


def write_all(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
