#!/usr/bin/env python3
"""Compares two embedding matrices row by row (e.g. dfss embed's output against reference-embed.py's).

Both .npy files must be 2-D with the same shape [n, dim]. For every row it computes the cosine
similarity (in float64) and prints n, mean, min, the 1st percentile, the index of the worst row and
the largest absolute difference. Exit code 1 if the smallest cosine is below --min-cosine (or a row
is NaN/inf), 2 if the files cannot be compared, 0 otherwise. numpy only: runs under /usr/bin/python3.

  python3 scripts/compare-embeddings.py ref.npy emb.npy [--min-cosine 0.99999] [--json]
"""
import argparse
import json
import sys

import numpy as np


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="first .npy [n, dim]")
    p.add_argument("b", help="second .npy [n, dim]")
    p.add_argument("--min-cosine", type=float, default=0.99999, help="fail when any row's cosine is below this")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return p.parse_args()


def row_cosines(a, b):
    """Cosine of each row pair; two all-zero rows count as identical (1), one all-zero row as 0."""
    dot = np.einsum("ij,ij->i", a, b)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = dot / (na * nb)
    cos[(na == 0) & (nb == 0)] = 1.0
    cos[(na == 0) ^ (nb == 0)] = 0.0
    return cos


def main():
    args = parse_args()
    try:
        a, b = np.load(args.a), np.load(args.b)
    except (OSError, ValueError) as e:
        print(f"compare-embeddings: {e}", file=sys.stderr)
        return 2
    if a.ndim != 2 or a.shape != b.shape:
        print(f"compare-embeddings: shapes differ or are not 2-D: {args.a} {a.shape} {a.dtype}, "
              f"{args.b} {b.shape} {b.dtype}", file=sys.stderr)
        return 2
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    n = a.shape[0]
    summary = {"a": args.a, "b": args.b, "n": n, "dim": a.shape[1], "dtype": [str(a.dtype), str(b.dtype)],
               "min_cosine_required": args.min_cosine}
    if n == 0:
        summary.update(mean=None, min=None, p1=None, worst_row=None, max_abs_diff=None, non_finite_rows=0, ok=True)
    else:
        cos = row_cosines(a64, b64)
        bad = ~np.isfinite(cos) | ~np.isfinite(a64).all(axis=1) | ~np.isfinite(b64).all(axis=1)
        finite = np.where(bad, -np.inf, cos)  # a NaN/inf row is the worst row
        worst = int(np.argmin(finite))
        summary.update(mean=float(np.mean(finite)) if not bad.any() else None,
                       min=float(finite[worst]) if not bad.any() else None,
                       p1=float(np.percentile(finite, 1)) if not bad.any() else None,
                       worst_row=worst, max_abs_diff=float(np.max(np.abs(a64 - b64))) if not bad.any() else None,
                       non_finite_rows=int(bad.sum()),
                       ok=bool(not bad.any() and finite[worst] >= args.min_cosine))
    if args.json:
        print(json.dumps(summary))
    else:
        def fmt(x, spec=".9f"):
            return "-" if x is None else format(x, spec)
        print(f"n {n}  dim {a.shape[1]}  cosine mean {fmt(summary['mean'])}  min {fmt(summary['min'])}  "
              f"p1 {fmt(summary['p1'])}  worst row {summary['worst_row']}  "
              f"max |a-b| {fmt(summary['max_abs_diff'], '.3g')}")
        if summary["non_finite_rows"]:
            print(f"{summary['non_finite_rows']} rows hold NaN or inf (first: row {summary['worst_row']})")
        print(("OK" if summary["ok"] else "FAIL") + f": min cosine must be >= {args.min_cosine}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
