#!/usr/bin/env python3
"""Writes the seed corpus of npy_fuzz into the directory given as first argument: small
valid .npy images of every supported dtype and version, and typical broken ones. A second
directory, if given, receives large inputs beyond the fuzzer's -max_len, which
scripts/fuzz.sh replays under time and memory limits. Pure Python, so it needs no NumPy."""
import os
import struct
import sys


def header(descr, shape, fortran="False", quote="'"):
    dims = "".join(f"{d}, " for d in shape).rstrip(" ") if len(shape) != 1 else f"{shape[0]},"
    q = quote
    return (f"{{{q}descr{q}: {q}{descr}{q}, {q}fortran_order{q}: {fortran}, "
            f"{q}shape{q}: ({dims}), }}")


def image(text, data=b"", major=1, align=64):
    preamble = 10 if major == 1 else 12
    pad = (align - (preamble + len(text) + 1) % align) % align
    body = (text + " " * pad + "\n").encode("latin-1")
    length = struct.pack("<H" if major == 1 else "<I", len(body))
    return b"\x93NUMPY" + bytes([major, 0]) + length + body + data


def main():
    out = sys.argv[1]
    f32 = struct.pack("<6f", 1.0, -2.0, 0.5, float("inf"), float("nan"), 0.0)
    seeds = {
        "f32_2x3_v1": image(header("<f4", (2, 3)), f32),
        "f32_2x3_v2": image(header("<f4", (2, 3)), f32, major=2),
        "f32_6_v3": image(header("<f4", (6,), quote='"'), f32, major=3),
        "f32_scalar": image(header("<f4", ()), f32[:4]),
        "f32_empty": image(header("<f4", (0, 4))),
        "bool_4": image(header("|b1", (4,)), b"\x01\x00\x01\x01"),
        "f64_2": image(header("<f8", (2,)), struct.pack("<2d", 1.5, -3.0)),
        "i64_1x1": image(header("<i8", (1, 1)), struct.pack("<q", -7)),
        "i32_3": image(header("<i4", (3,)), struct.pack("<3i", -1, 0, 2**31 - 1)),
        "u16_2x2": image(header("<u2", (2, 2)), struct.pack("<4H", 0, 4, 0xE9, 0xFFFF)),
        "unaligned_header": image(header("<f4", (1,)), f32[:4], align=1),
        "fortran": image(header("<f4", (2, 3), fortran="True"), f32),
        "big_endian": image(header(">f4", (2, 3)), f32),
        "truncated": image(header("<f4", (2, 3)), f32[:20]),
        "trailing": image(header("<f4", (2, 3)), f32 + b"xx"),
        "negative": image(header("<f4", (-1, 3)), f32),
        "bad_version": b"\x93NUMPY\x04\x00" + image(header("<f4", (6,)), f32)[8:],
        "bad_magic": b"\x93NUMPZ" + image(header("<f4", (6,)), f32)[6:],
        "empty": b"",
    }
    # A length field or shape that promises far more than the file holds.
    seeds["huge_header_length"] = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}"
    seeds["huge_shape"] = image(header("<f4", (1 << 40,)), f32)
    write_all(out, seeds)
    if len(sys.argv) > 2:
        f32_4m = struct.pack("<f", 0.5) * (1 << 20)
        write_all(sys.argv[2], {
            "header_20MB": image(header("<f4", (1 << 20,)) + " " * 20_000_000, f32_4m, major=2),
            "shape_1M_dims": image("{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                                   "1, " * 1_000_000 + "), }", b"", major=2),
            "data_64MB": image(header("<f4", (1 << 24,)), f32_4m * 16),
        })


def write_all(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
