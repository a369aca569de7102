#!/usr/bin/env python3
"""Writes the seed corpus of npz_fuzz into the directory given as argument: small valid
.npz archives (as dfss and as np.savez write them) and typical broken ones. Uses only the
standard library (zipfile), so it needs no NumPy."""
import io
import os
import struct
import sys
import zipfile


def npy(descr, shape, data):
    dims = "".join(f"{d}, " for d in shape).rstrip(" ") if len(shape) != 1 else f"{shape[0]},"
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}"
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    body = (text + " " * pad + "\n").encode("latin-1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + data


def archive(members, compression=zipfile.ZIP_STORED, force_zip64=False):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))  # fixed: reproducible seeds
            info.compress_type = compression
            # np.savez writes each member with force_zip64=True: a ZIP64 extra field in
            # the local header.
            with z.open(info, "w", force_zip64=force_zip64) as f:
                f.write(data)
    return buffer.getvalue()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    values = npy("<f4", (2, 2), struct.pack("<4f", 1.0, -2.0, float("inf"), 0.5))
    columns = npy("<i4", (2, 2), struct.pack("<4i", 0, 3, 5, 6))
    metadata = npy("<u2", (2, 1), struct.pack("<2H", 0xC, 0x9))
    members = [("values.npy", values), ("columns.npy", columns), ("metadata.npy", metadata)]
    good = archive(members)
    seeds = {
        "scores": good,
        "numpy_zip64_extra": archive(members, force_zip64=True),
        "one": archive([("pattern.npy", npy("<i4", (2,), struct.pack("<2i", 2, 4)))]),
        "empty_archive": archive([]),
        "deflated": archive(members[:1], compression=zipfile.ZIP_DEFLATED),
        "not_npy_member": archive([("notes.txt", b"hello")]),
        "bad_member": archive([("x.npy", b"\x93NUMPY garbage")]),
        "truncated": good[: len(good) // 2],
        "bad_crc": good[:100] + bytes([good[100] ^ 1]) + good[101:],
        "comment": good[:-2] + struct.pack("<H", 4) + b"note",
        "npy_file": values,
        "empty": b"",
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
