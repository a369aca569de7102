#!/usr/bin/env python3
"""Times PyTorch CPU attention (B=1, H=12, d=64 by default) as a baseline for dfss.

Runs under any torch (PyPI 2.x, Debian's 1.13). Methods:
  sdpa     torch.nn.functional.scaled_dot_product_attention (fused flash kernel on CPU; absent in 1.13)
  unfused  softmax(q k^T / sqrt(d)) v as bmm -> softmax -> bmm
Reports the median over repeated calls after warmup and GFLOP/s = 4*B*H*L*L*d / time.
`--combine A.json B.json ...` instead merges earlier runs' --json output into one table.
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

COLUMNS = ["configuration", "torch", "BLAS", "dtype", "L", "median ms", "GFLOP/s"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lengths", default="384,1024,2048,4096", help="comma-separated sequence lengths")
    p.add_argument("--dtypes", default="fp32,bf16")
    p.add_argument("--methods", default="sdpa,unfused")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, default=10.0,
                   help="seconds per case: slower calls get fewer repeats, but at least 3")
    p.add_argument("--max-length", type=int, default=0, help="skip L above this (0: no limit)")
    p.add_argument("--label", default="torch", help="configuration name for the table")
    p.add_argument("--json", help="write the rows to this file")
    p.add_argument("--combine", nargs="+", metavar="JSON", help="print one table from earlier --json files")
    return p.parse_args()


def print_table(rows):
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for r in rows:
        cells = [r["configuration"], r["torch"], r["blas"], r["dtype"], r["L"],
                 f"{r['median_ms']:.2f}", f"{r['gflops']:.1f}"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    busy = max((r.get("other_load", 0) for r in rows), default=0)
    if busy > 0.2:
        print(f"\nWarning: other processes kept up to {busy:.1f} cores busy during these timings; rerun on an idle machine.")


def blas_name(torch):
    """Names the BLAS this process actually loaded, so a library swap via LD_LIBRARY_PATH is visible."""
    loaded = {line.split()[-1] for line in open("/proc/self/maps")
              if "/" in line and re.match(r"lib(open)?blas", line.rsplit("/", 1)[-1])}
    for path in sorted(loaded):
        if os.path.basename(path).startswith("libopenblas"):
            import ctypes
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = lib.openblas_get_corename.restype = ctypes.c_char_p
            version = lib.openblas_get_config().decode().split()[1]
            return f"OpenBLAS {version} ({lib.openblas_get_corename().decode()} kernels)"
    if loaded:  # Debian's libblas3 lives in .../blas/: the netlib reference implementation
        return "reference BLAS (" + ", ".join(os.path.basename(p) for p in sorted(loaded)) + ")"
    info = [s for s in torch.__config__.show().replace(",", "\n").split() if s.startswith("BLAS_INFO=")]
    return info[0].split("=")[1].upper() + " (built in)" if info else "unknown"


def cpu_seconds():
    """Busy CPU seconds of the whole machine and of this process, to tell how much other work ran meanwhile."""
    ticks = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), time.process_time()


def torch_version(torch):
    """Debian's torch calls itself 1.13.0a0; add the package version to tell which build it is."""
    if not torch.__file__.startswith("/usr/lib/python3/"):
        return torch.__version__
    import subprocess
    deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"], capture_output=True, text=True)
    return f"{torch.__version__} (Debian {deb.stdout})"


def main():
    args = parse_args()
    if args.combine:
        rows = [r for f in args.combine for r in json.load(open(f))]
        print_table(rows)
        if args.json:
            json.dump(rows, open(args.json, "w"), indent=1)
        return

    # Thread pools read these when torch (and its BLAS) load, so set them before the import.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import warnings
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # numpy is not needed here
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)

    def unfused(q, k, v):
        return torch.matmul(torch.softmax(torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2)), -1), v)

    methods = {"sdpa": ("SDPA", getattr(F, "scaled_dot_product_attention", None)),
               "unfused": ("bmm-softmax-bmm", unfused)}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    B, H, d = args.batch, args.heads, args.head_dim
    torch.manual_seed(0)
    version = torch_version(torch)

    selected = []
    for m in args.methods.split(","):
        name, fn = methods[m]
        if fn is None:
            print(f"note: torch {torch.__version__} has no F.scaled_dot_product_attention; {m} skipped", file=sys.stderr)
        else:
            selected.append((name, fn))
    # Guard against timing something wrong: every method must agree with the plain formula.
    q, k, v = (torch.randn(B, H, 128, d) for _ in range(3))
    for name, fn in selected:
        err = (fn(q, k, v) - unfused(q.double(), k.double(), v.double()).float()).abs().max().item()
        assert err < 1e-4, f"{name} differs from reference by {err}"
    try:  # name the kernel SDPA dispatches to on CPU (expected: flash attention)
        from torch.nn.attention import SDPBackend
        choice = SDPBackend(torch._fused_sdp_choice(q, k, v)).name.lower().replace("_", " ")
        selected = [(f"{n} ({choice})" if n == "SDPA" else n, fn) for n, fn in selected]
    except (ImportError, AttributeError):
        pass

    rows = []
    with torch.inference_mode():
        for L in (int(x) for x in args.lengths.split(",")):
            if args.max_length and L > args.max_length:
                continue
            for dt in args.dtypes.split(","):
                q, k, v = (torch.randn(B, H, L, d).to(dtypes[dt]) for _ in range(3))
                for name, fn in selected:
                    times = []
                    for _ in range(max(1, args.warmup)):  # a slow call warms up enough in one go
                        t0 = time.perf_counter(); fn(q, k, v); warm = time.perf_counter() - t0
                        if warm > 1.0:
                            break
                    repeats = max(3, min(args.repeats, int(args.budget / max(warm, 1e-9))))
                    machine0, own0 = cpu_seconds()
                    for _ in range(repeats):
                        t0 = time.perf_counter(); fn(q, k, v); times.append(time.perf_counter() - t0)
                    machine1, own1 = cpu_seconds()
                    # cores kept busy by other processes while timing: above ~0.2 the numbers are suspect
                    others = max(0.0, (machine1 - machine0) - (own1 - own0)) / sum(times)
                    t = statistics.median(times)
                    rows.append(dict(configuration=f"{args.label}: {name}", torch=version,
                                     blas=blas_name(torch), dtype=dt, L=L, median_ms=t * 1e3,
                                     gflops=4 * B * H * L * L * d / t / 1e9, repeats=repeats, other_load=round(others, 2),
                                     threads=args.threads, B=B, H=H, d=d))
                    print(f"{rows[-1]['configuration']} {dt} L={L}: {t * 1e3:.2f} ms ({repeats} runs, "
                          f"other processes busy on {others:.1f} cores)", file=sys.stderr, flush=True)
    print_table(rows)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
