#!/usr/bin/env python3
"""Times the dfss PyTorch op beside PyTorch's own CPU attention, in one run.

Sections (choose with --sections, comma-separated; all by default):
  forward   dfss.attention vs F.scaled_dot_product_attention, and the C++ `dfss bench attention`
            figure for the same shape (the op's overhead), fp32 and bf16
  backward  the backward alone (autograd.grad on a kept graph): dfss dense and N:M vs SDPA's
            CPU backward, fp32 and bf16
  memory    extra resident memory of one forward+backward at L = 1024 and 16384 (fresh process
            each; inputs, outputs and gradients excluded)
  decode    one query row against Lk cached keys (dfss vs SDPA)
  model     all-MiniLM-L6-v2 through Hugging Face with attn_implementation "dfss" vs "sdpa":
            a training step (forward + backward of a contrastive loss) and inference; the
            share of the time spent in attention, from torch.profiler

Shape B=1, H=12, d=64 unless changed. Medians over --repeats calls after warm-up. GFLOP/s
count 4·B·H·Lq·Lk·d for a forward and 2.5 times that for a backward (its five products);
% peak is against the fp32 multiply-add rate dfss measures at start on the same threads.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from bench_timing import median_ms_in_turns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="forward,backward,memory,decode,model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lengths", default="1024,4096")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--patterns", default="dense,2:4", help="dfss sparsity patterns for the backward")
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--decode-keys", default="4096", help="cached keys, comma-separated")
    p.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    p.add_argument("--train-shape", default="32x512")
    p.add_argument("--infer-shapes", default="32x128,8x512")
    p.add_argument("--model-patterns", default="",
                   help="also time the model with these dfss sparsities in every layer, e.g. 2:4")
    p.add_argument("--cxx", default=os.path.join(ROOT, "build", "dfss"),
                   help="the dfss CLI for the C++ forward figure (skipped if missing)")
    p.add_argument("--json", help="also write every row to this file")
    p.add_argument("--memory-probe", type=int, help=argparse.SUPPRESS)  # internal: one L, then exit
    return p.parse_args()


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def table(title, columns, rows):
    print(f"\n### {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


def inputs(torch, b, hq, hkv, lq, lk, d, dtype, grad=False):
    g = torch.Generator().manual_seed(0)
    mk = lambda h, l: torch.randn(b, h, l, d, generator=g).to(dtype).requires_grad_(grad)
    return mk(hq, lq), mk(hkv, lk), mk(hkv, lk)


DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def section_forward(torch, dfss, F, args, peak, rows_out):
    rows = []
    cxx = {}
    if os.path.exists(args.cxx):
        out = os.path.join("/tmp", f"dfss-bench-{os.getpid()}.json")
        subprocess.run([args.cxx, "bench", "attention", "--seq", args.lengths, "--dtype", args.dtypes,
                        "--impl", "fused", "--pattern", "dense", "--threads", str(args.threads),
                        "--heads", str(args.heads), "--dim", str(args.head_dim), "--reps", str(args.repeats),
                        "--json", out], check=True, stdout=subprocess.DEVNULL)
        for r in json.load(open(out)):
            cxx[(r["dtype"], int(r["L"]))] = r["ms"]
        os.remove(out)
    for name in args.dtypes.split(","):
        dtype = getattr(torch, DTYPES[name])
        for L in map(int, args.lengths.split(",")):
            q, k, v = inputs(torch, 1, args.heads, args.heads, L, L, args.head_dim, dtype)
            flops = 4 * args.heads * L * L * args.head_dim
            with torch.no_grad():
                t_dfss = median_ms(lambda: dfss.attention(q, k, v), args.repeats)
                t_sdpa = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), args.repeats)
            c = cxx.get((name, L))
            rows.append([name, L, f"{t_dfss:.2f}", f"{flops / t_dfss / 1e6:.0f}", f"{100 * flops / t_dfss / 1e6 / peak:.0f} %",
                         f"{c:.2f}" if c else "-", f"{t_dfss / c:.3f}" if c else "-", f"{t_sdpa:.2f}",
                         f"{t_sdpa / t_dfss:.2f}x"])
            rows_out.append(dict(section="forward", dtype=name, L=L, dfss_ms=t_dfss, cxx_ms=c, sdpa_ms=t_sdpa))
    table("Forward through the op (B=1, H=%d, d=%d)" % (args.heads, args.head_dim),
          ["dtype", "L", "dfss op ms", "GFLOP/s", "% peak", "C++ bench ms", "op / C++", "SDPA ms", "SDPA / dfss"], rows)


def section_backward(torch, dfss, F, args, peak, rows_out):
    rows = []
    for name in args.dtypes.split(","):
        dtype = getattr(torch, DTYPES[name])
        for L in map(int, args.lengths.split(",")):
            q, k, v = inputs(torch, 1, args.heads, args.heads, L, L, args.head_dim, dtype, grad=True)
            dout = torch.randn_like(q.detach())
            flops = 2.5 * 4 * args.heads * L * L * args.head_dim

            def timed(out):
                return median_ms(lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True), args.repeats)

            t_sdpa = timed(F.scaled_dot_product_attention(q, k, v))
            t_dense = None
            for pattern in args.patterns.split(","):
                t = timed(dfss.attention(q, k, v, sparsity=None if pattern == "dense" else pattern))
                if pattern == "dense":
                    t_dense = t
                rows.append([name, L, pattern, f"{t:.2f}", f"{flops / t / 1e6:.0f}", f"{100 * flops / t / 1e6 / peak:.0f} %",
                             f"{t_sdpa:.2f}", f"{t_sdpa / t:.2f}x", f"{t_dense / t:.2f}x" if t_dense else "-"])
                rows_out.append(dict(section="backward", dtype=name, L=L, pattern=pattern, dfss_ms=t, sdpa_ms=t_sdpa))
    table("Backward alone (B=1, H=%d, d=%d; GFLOP/s count 2.5x the forward's)" % (args.heads, args.head_dim),
          ["dtype", "L", "dfss pattern", "dfss ms", "GFLOP/s", "% peak", "SDPA ms", "SDPA / dfss", "dense / this"], rows)


def _status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def memory_probe(torch, dfss, args, L):
    """Peak RSS growth of one forward+backward minus what it returns (in a fresh process)."""
    q, k, v = inputs(torch, 1, args.heads, args.heads, L, L, args.head_dim, torch.float32, grad=True)
    dout = torch.randn_like(q.detach())
    # Warm-up on a small problem: code pages, thread pools and allocator arenas exist before.
    small = inputs(torch, 1, args.heads, args.heads, 64, 64, args.head_dim, torch.float32, grad=True)
    torch.autograd.grad(dfss.attention(*small), small, torch.ones_like(small[0]))
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM (the peak) to the current RSS
        f.write("5")
    before = _status_kib("VmRSS")
    out = dfss.attention(q, k, v)
    grads = torch.autograd.grad(out, (q, k, v), dout)
    peak = _status_kib("VmHWM")
    kept = sum(t.numel() * t.element_size() for t in (out, *grads)) + args.heads * L * 4  # + lse
    print(json.dumps({"L": L, "extra_mb": ((peak - before) * 1024 - kept) / 2**20}))


def section_memory(args, rows_out):
    rows = []
    for L in (1024, 16384):
        res = subprocess.run([sys.executable, __file__, "--memory-probe", str(L), "--threads", str(args.threads),
                              "--heads", str(args.heads), "--head-dim", str(args.head_dim)],
                             check=True, capture_output=True, text=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append([L, f"{r['extra_mb']:.1f}"])
        rows_out.append(dict(section="memory", **r))
    diff = float(rows[1][1]) - float(rows[0][1])
    rows.append(["16384 - 1024", f"{diff:.1f}"])
    table("Extra resident memory of a forward+backward, fp32 (MB, beyond inputs, outputs and gradients)",
          ["L", "extra MB"], rows)


def section_decode(torch, dfss, F, args, rows_out):
    rows = []
    for name in args.dtypes.split(","):
        dtype = getattr(torch, DTYPES[name])
        for lk in (int(x) for x in args.decode_keys.split(",")):
            q, k, v = inputs(torch, 1, args.heads, args.heads, 1, lk, args.head_dim, dtype)
            # Short caches take microseconds a call: more calls for a stable median.
            repeats = max(5 * args.repeats, 2_000_000 // (lk * args.heads))
            with torch.no_grad():
                t_dfss = median_ms(lambda: dfss.attention(q, k, v, is_causal=True), repeats)
                t_sdpa = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), repeats)
            rows.append([name, lk, f"{t_dfss * 1e3:.0f}", f"{t_sdpa * 1e3:.0f}",
                         f"{t_sdpa / t_dfss:.2f}x"])
            rows_out.append(dict(section="decode", dtype=name, lk=lk, dfss_ms=t_dfss,
                                 sdpa_ms=t_sdpa))
    table("Decode: one query row against Lk cached keys (H=%d, d=%d)" % (args.heads, args.head_dim),
          ["dtype", "Lk", "dfss µs", "SDPA µs", "SDPA / dfss"], rows)


def attention_share(torch, fn):
    """Fraction of CPU time in attention ops (dfss ops or SDPA's flash kernels), from the profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    total = attn = 0.0
    for e in prof.key_averages():
        if e.key.startswith("ProfilerStep"):
            continue
        total += e.self_cpu_time_total
        if e.key.startswith("dfss::") or "flash_attention" in e.key or "scaled_dot_product" in e.key:
            attn += e.self_cpu_time_total
    return attn / total if total else float("nan")


def section_model(torch, args, rows_out):
    import dfss.hf  # noqa: F401  registers attn_implementation="dfss"
    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    text = open(os.path.join(ROOT, "tests", "data", "minilm", "sentences.txt")).read().split()
    rows = []

    def batch(shape):
        n, length = map(int, shape.split("x"))
        words = [" ".join(text[(i * 37) % len(text):] + text)[: 8 * length] for i in range(n)]
        return tok(words, truncation=True, max_length=length, padding="max_length", return_tensors="pt")

    # No dropout in either (dfss implements none), so both train the same function.
    models = {impl: AutoModel.from_pretrained(args.model, attn_implementation=impl, attention_probs_dropout_prob=0.0,
                                              hidden_dropout_prob=0.0) for impl in ("sdpa", "dfss")}
    for pattern in filter(None, args.model_patterns.split(",")):
        models[f"dfss {pattern}"] = AutoModel.from_pretrained(
            args.model, attn_implementation="dfss", attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
        dfss.hf.set_sparsity(models[f"dfss {pattern}"], pattern)
    for shape in args.infer_shapes.split(","):
        enc = batch(shape)
        for model in models.values():
            model.eval()
        with torch.no_grad():
            times = median_ms_in_turns({impl: (lambda m=model: m(**enc)) for impl, model in models.items()},
                                       args.repeats)
        for impl, model in models.items():
            with torch.no_grad():
                share = attention_share(torch, lambda: model(**enc))
            rows.append(["inference", shape, impl, f"{times[impl]:.0f}", f"{100 * share:.0f} %",
                         f"{times['sdpa'] / times[impl]:.2f}x"])
            rows_out.append(dict(section="model", mode="inference", shape=shape, impl=impl, ms=times[impl], attention_share=share))
    enc = batch(args.train_shape)

    def step(model):
        model.zero_grad(set_to_none=True)
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        a, b = e[0::2], e[1::2]
        loss = torch.nn.functional.cross_entropy(a @ b.T / 0.05, torch.arange(a.shape[0]))
        loss.backward()

    for model in models.values():
        model.train()
    times = median_ms_in_turns({impl: (lambda m=model: step(m)) for impl, model in models.items()},
                               max(3, args.repeats // 2))
    for impl, model in models.items():
        share = attention_share(torch, lambda: step(model))
        rows.append(["training step", args.train_shape, impl, f"{times[impl]:.0f}", f"{100 * share:.0f} %",
                     f"{times['sdpa'] / times[impl]:.2f}x"])
        rows_out.append(dict(section="model", mode="train", shape=args.train_shape, impl=impl, ms=times[impl], attention_share=share))
    table("all-MiniLM-L6-v2 through Hugging Face (padded batches)",
          ["mode", "texts x tokens", "attn_implementation", "median ms", "attention share", "sdpa / this"], rows)


def main():
    args = parse_args()
    import torch
    import torch.nn.functional as F
    import dfss
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        return memory_probe(torch, dfss, args, args.memory_probe)
    peak = dfss.measure_peak_gflops(threads=args.threads)
    print(f"CPU: {cpu_name()}; {args.threads} threads; torch {torch.__version__}; dfss kernels {dfss.isa()}; "
          f"measured fp32 peak {peak:.0f} GFLOP/s")
    rows = []
    sections = args.sections.split(",")
    if "forward" in sections:
        section_forward(torch, dfss, F, args, peak, rows)
    if "backward" in sections:
        section_backward(torch, dfss, F, args, peak, rows)
    if "memory" in sections:
        section_memory(args, rows)
    if "decode" in sections:
        section_decode(torch, dfss, F, args, rows)
    if "model" in sections:
        section_model(torch, args, rows)
    if args.json:
        json.dump(dict(cpu=cpu_name(), threads=args.threads, peak_gflops=peak, rows=rows), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
