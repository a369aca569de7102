#!/usr/bin/env python3
"""Plots the speedup over fused dense attention against the sequence length, from the
JSON files of `dfss bench attention --pattern dense,2:4,... --json FILE`.

One line per (pattern, dtype) on a log2 length axis; the title names the machine, the
threads and the problem shape. Results for the same case from several files (e.g. runs
at different lengths, or repeated runs) are merged; repeats are reduced to their median.

Usage: scripts/plot-speedup.py [--impl fused] [--out speedup.png] RESULTS.json [...]

Needs matplotlib (Debian: python3-matplotlib, in scripts/install-deps.sh). Under pyenv
or a venv without it, run the system interpreter: /usr/bin/python3 scripts/plot-speedup.py
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict


def load_rows(paths):
    rows = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"plot-speedup: {path}: {e}")
        if not isinstance(data, list):
            sys.exit(f"plot-speedup: {path}: expected a JSON array from `dfss bench attention --json`")
        for row in data:
            missing = [k for k in ("impl", "dtype", "L", "speedup_vs_dense_fused") if k not in row]
            if missing:
                sys.exit(f"plot-speedup: {path}: a result lacks {', '.join(missing)}; "
                         "expected the output of a dfss with --pattern support")
            rows.append(row)
    return rows


def describe(rows, key, fmt="{}"):
    """The distinct values of `key` in `rows`, joined with '/' (runs may differ)."""
    values = []
    for row in rows:
        value = row.get(key, "?")
        if value not in values:
            values.append(value)
    return "/".join(fmt.format(v) for v in values)


def pattern_order(pattern):
    # dense first, then by N:M
    if pattern == "dense":
        return (0, 0, 0)
    n, m = (int(x) for x in pattern.split(":"))
    return (1, m, n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="result files of dfss bench attention --json")
    parser.add_argument("--out", default="speedup.png", help="PNG to write (default speedup.png)")
    parser.add_argument("--impl", default="fused",
                        help="implementation whose rows are plotted (default fused), or 'all' "
                             "for one line per (impl, pattern, dtype)")
    parser.add_argument("--title", help="replace the generated title")
    args = parser.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit(f"plot-speedup: matplotlib is not installed for {sys.executable}; install "
                 "python3-matplotlib (scripts/install-deps.sh) and run /usr/bin/python3 "
                 "scripts/plot-speedup.py")

    rows = [r for r in load_rows(args.json) if args.impl == "all" or r["impl"] == args.impl]
    rows = [r for r in rows if r["speedup_vs_dense_fused"] is not None]
    if not rows:
        sys.exit(f"plot-speedup: no results for --impl {args.impl} with speedup_vs_dense_fused; "
                 "run the benchmark with fused among --impl (or any N:M --pattern)")

    series = defaultdict(lambda: defaultdict(list))  # line -> L -> speedups
    for row in rows:
        line = (row.get("pattern", "dense"), row["dtype"])
        if args.impl == "all":
            line = line + (row["impl"],)
        series[line][int(row["L"])].append(float(row["speedup_vs_dense_fused"]))

    fig, ax = plt.subplots(figsize=(8, 5))
    lengths = sorted({length for points in series.values() for length in points})
    # Colour tells the pattern, line style and marker the dtype (and impl with --impl all).
    patterns = sorted({line[0] for line in series}, key=pattern_order)
    colors = {p: f"C{i}" for i, p in enumerate(patterns)}
    styles = {"fp32": ("-", "o"), "bf16": ("--", "s")}
    for line in sorted(series, key=lambda key: (pattern_order(key[0]),) + key[1:]):
        points = series[line]
        xs = sorted(points)
        ys = [statistics.median(points[x]) for x in xs]
        linestyle, marker = styles.get(line[1], (":", "^"))
        if len(line) > 2 and line[2] != "fused":
            marker = "x"
        ax.plot(xs, ys, linestyle=linestyle, marker=marker, color=colors[line[0]],
                label=" ".join(line))
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(length) for length in lengths])
    ax.minorticks_off()
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("sequence length L (Lq = Lk)")
    ax.set_ylabel("speedup vs fused dense (same dtype and L)")
    causal = " causal" if any(r.get("causal") for r in rows) else ""
    impl = "" if args.impl == "all" else f"{args.impl} "
    title = args.title or (
        f"dfss {impl}attention, N:M sparse vs dense\n"
        f"{describe(rows, 'cpu')}, threads: {describe(rows, 'threads')}, "
        f"isa {describe(rows, 'isa')}, B={describe(rows, 'batch')} H={describe(rows, 'heads')} "
        f"d={describe(rows, 'dim')}{causal}")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(title="pattern dtype" + (" impl" if args.impl == "all" else ""))
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
