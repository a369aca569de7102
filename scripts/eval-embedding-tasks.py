#!/usr/bin/env python3
"""Scores sentence embeddings on the real-text tasks of scripts/make-corpora.sh (numpy only).

Evaluate one set of embeddings (each .npy float32 [n, dim], one row per line of the text
file, as `dfss embed` writes them; rows are L2-normalized here again, so cosine = dot):
  --queries Q.npy --targets T.npy    paired-passage retrieval: query i must find target i
                                     among all targets: recall@1, recall@5, MRR (overall
                                     and per source of pairs_sources.txt)
  --reuters R.npy                    Reuters acq/crude: leave-one-out 1-NN accuracy, and
                                     mean average precision / R-precision of same-topic
                                     retrieval (each article against the 69 others)
  --emb DIR                          shorthand for DIR/{queries,targets,reuters,sentences}.npy
  --reference DIR                    dense embeddings of the same texts: fidelity (per-text
                                     cosine to the reference: mean, min, 1st percentile) and
                                     the queries whose top-1 hit changed against it (lost,
                                     gained, two-sided exact sign test p)
  --json                             print JSON instead of text

Aggregate: --table A.json B.json ...  one markdown table (JSON files written by --json).

Example:
  /usr/bin/python3 scripts/eval-embedding-tasks.py --emb out/accuracy/len256/2-4 \\
      --reference out/accuracy/len256/dense --label 2:4 --json
"""

import argparse
import json
import math
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = ("sentences", "queries", "targets", "reuters")


def load(path):
    x = np.load(path).astype(np.float64)
    if x.ndim != 2:
        sys.exit(f"eval-embedding-tasks: {path}: expected [n, dim], got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(x)):
        sys.exit(f"eval-embedding-tasks: {path}: zero or non-finite rows")
    return x / norms


def read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def true_ranks(queries, targets):
    """1-based rank of target i for query i (ties counted against it)."""
    sim = queries @ targets.T
    diag = np.diag(sim)
    return np.sum(sim >= diag[:, None], axis=1)  # counts i itself: rank >= 1


def retrieval(queries, targets, sources):
    if queries.shape != targets.shape:
        sys.exit(f"eval-embedding-tasks: queries {queries.shape} vs targets {targets.shape}")
    ranks = true_ranks(queries, targets)

    def scores(r):
        return {"n": int(len(r)), "recall@1": float(np.mean(r <= 1)),
                "recall@5": float(np.mean(r <= 5)), "mrr": float(np.mean(1.0 / r))}

    result = scores(ranks)
    if sources is not None:
        if len(sources) != len(ranks):
            sys.exit(f"eval-embedding-tasks: {len(sources)} pair sources for {len(ranks)} pairs")
        for column, field in ((0, "by_source"), (2, "by_length")):
            values = [row[column] if len(row) > column else "" for row in sources]
            result[field] = {}
            for key in sorted(set(values)):
                mask = np.array([v == key for v in values])
                result[field][key] = scores(ranks[mask])
    return result, ranks


def topic_retrieval(x, labels):
    labels = np.array(labels)
    n = len(labels)
    if x.shape[0] != n:
        sys.exit(f"eval-embedding-tasks: {n} labels for {x.shape[0]} Reuters embeddings")
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argmax(sim, axis=1)
    ap, rprec = np.zeros(n), np.zeros(n)
    for i in range(n):
        order = [j for j in np.argsort(-sim[i], kind="stable") if j != i]
        relevant = labels[order] == labels[i]
        hits = np.cumsum(relevant)
        count = hits[-1]
        ap[i] = np.sum((hits / np.arange(1, n)) * relevant) / count
        rprec[i] = hits[count - 1] / count
    result = {"n": int(n), "1nn_accuracy": float(np.mean(labels[nearest] == labels)),
              "map": float(np.mean(ap)), "r_precision": float(np.mean(rprec)), "by_label": {}}
    for key in sorted(set(labels.tolist())):
        mask = labels == key
        result["by_label"][key] = {"n": int(mask.sum()), "map": float(np.mean(ap[mask]))}
    return result


def sign_test(a, b):
    """Two-sided exact sign (McNemar) test of a vs b discordant outcomes."""
    n = a + b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a, b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def fidelity(cos):
    return {"n": int(len(cos)), "mean": float(np.mean(cos)), "min": float(np.min(cos)),
            "p1": float(np.percentile(cos, 1))}


def evaluate(args):
    paths = {}
    if args.emb:
        for name in SETS:
            path = os.path.join(args.emb, f"{name}.npy")
            if os.path.exists(path):
                paths[name] = path
    for name in SETS:
        if getattr(args, name):
            paths[name] = getattr(args, name)
    emb = {name: load(path) for name, path in paths.items()}
    result = {"label": args.label or (os.path.basename(os.path.normpath(args.emb)) if args.emb else "")}

    ranks = None
    if "queries" in emb and "targets" in emb:
        src_path = os.path.join(args.corpora, "pairs_sources.txt")
        sources = [line.split("\t") for line in read_lines(src_path)] \
            if os.path.exists(src_path) else None
        result["pairs"], ranks = retrieval(emb["queries"], emb["targets"], sources)
    if "reuters" in emb:
        labels = read_lines(os.path.join(args.corpora, "reuters_labels.txt"))
        result["reuters"] = topic_retrieval(emb["reuters"], labels)

    if args.reference:
        per_set, all_cos = {}, []
        for name in emb:
            path = os.path.join(args.reference, f"{name}.npy")
            if not os.path.exists(path):
                continue
            ref = load(path)
            if ref.shape != emb[name].shape:
                sys.exit(f"eval-embedding-tasks: {path} {ref.shape} vs {emb[name].shape}")
            cos = np.sum(ref * emb[name], axis=1)
            per_set[name] = fidelity(cos)
            all_cos.append(cos)
        if all_cos:
            result["fidelity"] = fidelity(np.concatenate(all_cos))
            result["fidelity"]["by_set"] = per_set
        if ranks is not None and all(os.path.exists(os.path.join(args.reference, f"{n}.npy"))
                                     for n in ("queries", "targets")):
            _, ref_ranks = retrieval(load(os.path.join(args.reference, "queries.npy")),
                                     load(os.path.join(args.reference, "targets.npy")), None)
            lost = int(np.sum((ref_ranks == 1) & (ranks != 1)))
            gained = int(np.sum((ref_ranks != 1) & (ranks == 1)))
            result["pairs"]["top1_lost"] = lost
            result["pairs"]["top1_gained"] = gained
            result["pairs"]["top1_sign_test_p"] = sign_test(lost, gained)
    return result


def pct(x):
    return f"{100 * x:.1f}"


def table(results):
    lines = ["| attention | fidelity mean | min | p1 | pairs R@1 | R@5 | MRR | top-1 lost/gained "
             "(sign test) | Reuters 1-NN | mAP | R-prec | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f, p, t = r.get("fidelity"), r.get("pairs"), r.get("reuters")
        cells = [f"`{r['label']}`"]
        cells += [f"{f['mean']:.4f}", f"{f['min']:.4f}", f"{f['p1']:.4f}"] if f else ["—"] * 3
        if p:
            cells += [pct(p["recall@1"]), pct(p["recall@5"]), f"{p['mrr']:.3f}"]
            if "top1_lost" not in p:
                cells.append("—")
            elif p["top1_lost"] + p["top1_gained"] == 0:
                cells.append("0/0")
            else:
                cells.append(f"{p['top1_lost']}/{p['top1_gained']} (p {p['top1_sign_test_p']:.2f})")
        else:
            cells += ["—"] * 4
        cells += [pct(t["1nn_accuracy"]), f"{t['map']:.3f}", f"{t['r_precision']:.3f}"] \
            if t else ["—"] * 3
        cells.append(f"{r['seconds']:.0f}" if "seconds" in r else "—")
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for field, title in (("by_source", "source"), ("by_length", "passage length class")):
        rows = [r for r in results if r.get("pairs", {}).get(field)]
        if rows:
            keys = list(rows[0]["pairs"][field])
            counts = ", ".join(f"{k} {rows[0]['pairs'][field][k]['n']}" for k in keys)
            notes.append(f"Pairs recall@1 by {title} ({counts}): " + "; ".join(
                f"`{r['label']}` " + " / ".join(pct(r["pairs"][field][k]["recall@1"])
                                                for k in keys if k in r["pairs"][field])
                for r in rows) + ".")
    rows = [r for r in results if r.get("fidelity", {}).get("by_set")]
    if rows:
        keys = list(rows[0]["fidelity"]["by_set"])
        notes.append(f"Fidelity mean / min by set ({', '.join(keys)}): " + "; ".join(
            f"`{r['label']}` " + " · ".join(
                f"{r['fidelity']['by_set'][k]['mean']:.4f}/{r['fidelity']['by_set'][k]['min']:.4f}"
                for k in keys if k in r["fidelity"]["by_set"])
            for r in rows if r["label"] != "dense") + ".")
    return "\n".join(lines + [""] * bool(notes) + ["\n\n".join(notes)] * bool(notes))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emb", help="directory with queries/targets/reuters/sentences .npy")
    for name in SETS:
        parser.add_argument(f"--{name}", help=f"{name} embeddings .npy")
    parser.add_argument("--reference", help="directory with the dense embeddings")
    parser.add_argument("--corpora", default=os.path.join(ROOT, "out", "corpora"))
    parser.add_argument("--label", help="name of this configuration in the output")
    parser.add_argument("--seconds", type=float, help="wall time to record with the result")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="print one markdown table of these results")
    args = parser.parse_args()

    if args.table:
        results = []
        for path in args.table:
            with open(path, encoding="utf-8") as handle:
                results.append(json.load(handle))
        print(table(results))
        return
    if not (args.emb or args.queries or args.reuters or args.sentences):
        parser.error("give --emb DIR or embeddings files")
    result = evaluate(args)
    if args.seconds is not None:
        result["seconds"] = args.seconds
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(table([result]))


if __name__ == "__main__":
    main()
