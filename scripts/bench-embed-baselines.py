#!/usr/bin/env python3
"""Times all-MiniLM-L6-v2 sentence embeddings (encoder + mean pooling + L2 norm) in PyTorch and ONNX Runtime,
as the baselines for `dfss bench embed`. Tokenization is excluded: every run feeds pre-made input_ids /
attention_mask / token_type_ids of exactly B x L tokens, all valid (no padding), fp32, CPU.

  torch         sentence-transformers' model (Transformer -> Pooling(mean) -> Normalize, built as in
                scripts/reference-embed.py) called on the token tensors under torch.inference_mode;
                attention as transformers picks it (sdpa)
  ort           onnxruntime on torch.onnx.export (default dynamo exporter) of BertModel + mean pooling + L2
                norm, dynamic batch and sequence axes; intra_op_num_threads = --threads, inter_op 1,
                ORT_ENABLE_ALL
  ort-fused     the same through the TorchScript exporter (dynamo=False, eager attention, opset 17) and
                onnxruntime.transformers' BERT fusions (EmbedLayerNormalization, Attention,
                SkipLayerNormalization, BiasGelu), which match only that exporter's graph; then as `ort`
  ort-int8      the `ort-fused` model through onnxruntime.quantization.quantize_dynamic: int8 weights,
                per channel, reduce_range (7-bit weights, so that u8 x s8 products summed in pairs cannot
                saturate int16 on CPUs without VNNI); activations quantized per call; then as `ort`

Each case: warmup, then the median of --repeats calls (fewer when a call is slow, see --budget);
tokens/s = B*L / median. Each ONNX Runtime output is checked against torch's on the same tokens (max abs
diff, also on a right-padded batch) and by the mean cosine similarity of its embeddings to torch's on the
same B x L tokens, which says more than the max abs diff about the int8 model's error. Prints a markdown
table; --json FILE writes the rows.

  bash scripts/setup-embed-reference.sh     # once
  nice -n 19 .venv-torch/bin/python scripts/bench-embed-baselines.py [--shapes 32x128,8x512] [--threads 2]
      [--impls torch,ort,ort-fused,ort-int8] [--repeats 10] [--json FILE]
"""
import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ["implementation", "version", "GEMM", "threads", "B x L", "median ms", "tokens/s", "max abs diff vs torch",
           "mean cosine vs torch"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    p.add_argument("--shapes", default="32x128,8x512", help="comma-separated BxL")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--impls", default="torch,ort,ort-fused",
                   help="any of torch, ort, ort-fused, ort-int8 (not a default)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds per case: slower calls get fewer repeats, but at least 3")
    p.add_argument("--keep-onnx", metavar="DIR", help="keep the exported .onnx files in DIR")
    p.add_argument("--json", help="write the rows to this file")
    return p.parse_args()


def print_table(rows):
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for r in rows:
        diff, cosine = r.get("max_abs_diff_vs_torch"), r.get("mean_cosine_vs_torch")
        cells = [r["implementation"], r["version"], r["gemm"], r["threads"], f"{r['B']} x {r['L']}",
                 f"{r['median_ms']:.1f}", f"{r['tokens_per_s']:.0f}", "-" if diff is None else f"{diff:.1e}",
                 "-" if cosine is None else f"{cosine:.6f}"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    busy = max((r.get("other_load", 0) for r in rows), default=0)
    if busy > 0.2:
        print(f"\nWarning: other processes kept up to {busy:.1f} cores busy during these timings; "
              "rerun on an idle machine.")


def cpu_seconds():
    """Busy CPU seconds of the whole machine and of this process, to tell how much other work ran meanwhile."""
    ticks = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), time.process_time()


def time_calls(fn, warmup, repeats, budget):
    """Median seconds of fn() after warmup, the repeats done, and the cores other processes kept busy."""
    warm = 0.0
    for _ in range(max(1, warmup)):
        t0 = time.perf_counter(); fn(); warm = time.perf_counter() - t0
    repeats = max(3, min(repeats, int(budget / max(warm, 1e-9))))
    times = []
    machine0, own0 = cpu_seconds()
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    machine1, own1 = cpu_seconds()
    others = max(0.0, (machine1 - machine0) - (own1 - own0)) / sum(times)
    return statistics.median(times), repeats, round(others, 2)


def torch_gemm(torch):
    """Short summary of torch.__config__.show(): BLAS, oneDNN, CPU capability."""
    show = torch.__config__.show()
    parts = []
    blas = re.search(r"BLAS_INFO=(\w+)", show)
    mkl = re.search(r"Math Kernel Library Version (\S+)", show)
    if blas:
        parts.append(f"BLAS_INFO={blas.group(1)}" + (f" (MKL {mkl.group(1)})" if mkl and blas.group(1) == "mkl" else ""))
    dnn = re.search(r"MKL-DNN (v[\d.]+)", show)
    if dnn:
        parts.append(f"oneDNN {dnn.group(1)}")
    cap = re.search(r"CPU capability usage: (\S+)", show)
    if cap:
        parts.append(cap.group(1))
    return ", ".join(parts) or "unknown"


def load_reference_module():
    spec = importlib.util.spec_from_file_location("reference_embed", os.path.join(ROOT, "scripts", "reference-embed.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tokens(torch, B, L, vocab, seed=0):
    """[CLS] random-wordpieces [SEP], all valid; token_type_ids 0."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (B, L), generator=g, dtype=torch.long)
    ids[:, 0], ids[:, -1] = 101, 102
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def export_onnx(torch, model_dir, path, fused):
    """BertModel + mean pooling + L2 norm -> ONNX with dynamic batch and sequence axes."""
    import torch.nn.functional as F
    from transformers import BertModel

    class Embedder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            w = attention_mask.unsqueeze(-1).to(h.dtype)
            return F.normalize((h * w).sum(1) / w.sum(1).clamp(min=1e-9), p=2, dim=1)

    # The TorchScript exporter + BERT fusions need the eager attention pattern; the dynamo export keeps sdpa.
    bert = BertModel.from_pretrained(model_dir, attn_implementation="eager" if fused else "sdpa",
                                     dtype=torch.float32).eval()
    example = make_tokens(torch, 2, 16, bert.config.vocab_size)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    args = tuple(example[n] for n in names)
    kwargs = dict(input_names=names, output_names=["sentence_embedding"], external_data=False)
    embedder = Embedder(bert).eval()
    # The exporters' notes (missing torchvision ops, legacy exporter, traced shape checks) are expected.
    import logging
    import warnings
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fused:
            torch.onnx.export(embedder, args, path, dynamo=False, opset_version=17,
                              dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names}, **kwargs)
            from onnxruntime.transformers import optimizer
            opt = optimizer.optimize_model(path, model_type="bert", num_heads=bert.config.num_attention_heads,
                                           hidden_size=bert.config.hidden_size, opt_level=0)
            stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
            opt.save_model_to_file(path)
            if not stats.get("Attention"):
                print(f"warning: the BERT fusions found no Attention pattern ({stats})", file=sys.stderr)
            return f"fusions {stats}"
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=bert.config.max_position_embeddings)
        torch.onnx.export(embedder, args, path, dynamo=True, verbose=False,
                          dynamic_shapes={n: {0: batch, 1: seq} for n in names}, **kwargs)
        return "dynamo exporter"


def quantize_int8(src, dst):
    """Dynamic int8 quantization of the fused model: weights once, activations per call."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    # reduce_range: 7-bit weights. Without VNNI the u8 x s8 kernels add product pairs in int16, which full
    # 8-bit weights can saturate; 7 bits cannot, at a small cost in precision.
    # DefaultTensorType: ONNX shape inference gives no type to the outputs of the fused com.microsoft ops
    # (Attention, SkipLayerNormalization), and quantize_dynamic refuses the MatMuls fed by them without it.
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    return "QInt8 per-channel, reduce_range"


def mean_cosine(a, b):
    """Mean over rows of cos(a_i, b_i); both are L2-normalized already, but don't rely on it."""
    import numpy as np
    dots = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(dots.mean())


def ort_session(ort, path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    args = parse_args()
    # Thread pools read these when torch (and its BLAS) load, so set them before the import.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import numpy as np
    import torch
    import transformers
    transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    impls = args.impls.split(",")
    unknown = set(impls) - {"torch", "ort", "ort-fused", "ort-int8"}
    if unknown:
        sys.exit(f"bench-embed-baselines: unknown --impls {sorted(unknown)}")
    shapes = [tuple(int(x) for x in s.lower().split("x")) for s in args.shapes.split(",")]

    reference = load_reference_module()
    max_len = max(L for _, L in shapes)
    st_model, transformer, _ = reference.build_model(args.model, max_len)
    vocab = transformer.model.config.vocab_size
    attn = getattr(transformer.model.config, "_attn_implementation", "?")
    torch_version = torch.__version__
    gemm = torch_gemm(torch)
    print(f"torch {torch_version} ({gemm}); {torch.get_num_threads()} threads; attention {attn}", file=sys.stderr)

    def torch_forward(tokens):
        with torch.inference_mode():
            return st_model(dict(tokens))["sentence_embedding"]

    rows = []
    # Torch's outputs on every shape (and a padded batch), the yardstick for the ONNX Runtime checks.
    inputs = {shape: make_tokens(torch, *shape, vocab) for shape in shapes}
    padded = make_tokens(torch, 4, 64, vocab, seed=1)
    for i, n in enumerate((64, 40, 7, 2)):  # right padding, as the tokenizer pads
        padded["attention_mask"][i, n:] = 0
        padded["input_ids"][i, n:] = 0
        padded["input_ids"][i, n - 1] = 102
    expected = {shape: torch_forward(inputs[shape]).numpy() for shape in shapes}
    expected_padded = torch_forward(padded).numpy()

    if "torch" in impls:
        for B, L in shapes:
            t, repeats, others = time_calls(lambda: torch_forward(inputs[(B, L)]), args.warmup, args.repeats, args.budget)
            rows.append(dict(implementation=f"PyTorch, sentence-transformers ({attn})", impl="torch",
                             version=f"torch {torch_version}", gemm=gemm, threads=args.threads, B=B, L=L,
                             median_ms=t * 1e3, tokens_per_s=B * L / t, repeats=repeats, other_load=others,
                             max_abs_diff_vs_torch=None, mean_cosine_vs_torch=None))
            print(f"{rows[-1]['implementation']} {B}x{L}: {t * 1e3:.1f} ms ({repeats} runs, "
                  f"other processes busy on {others:.1f} cores)", file=sys.stderr, flush=True)

    ort_impls = [i for i in impls if i.startswith("ort")]
    if ort_impls:
        import onnxruntime as ort
        with tempfile.TemporaryDirectory() as tmp:
            directory = args.keep_onnx or tmp
            os.makedirs(directory, exist_ok=True)
            exports = {}  # fused -> (path, how): ort-int8 quantizes the model ort-fused ran, if it ran
            for impl in ort_impls:
                fused, int8 = impl in ("ort-fused", "ort-int8"), impl == "ort-int8"
                path = os.path.join(directory, f"all-MiniLM-L6-v2-embed{'-fused' if fused else ''}.onnx")
                t0 = time.perf_counter()
                try:
                    if fused not in exports:
                        exports[fused] = path, export_onnx(torch, args.model, path, fused)
                    path, how = exports[fused]
                    if int8:
                        src, path = path, os.path.join(directory, "all-MiniLM-L6-v2-embed-fused-int8.onnx")
                        how = f"{how}; {quantize_int8(src, path)}"
                except Exception as e:  # report and go on with the other implementations
                    print(f"{impl}: export failed: {type(e).__name__}: {e}", file=sys.stderr)
                    continue
                print(f"{impl}: exported {path} ({how}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
                session = ort_session(ort, path, args.threads)

                def run(tokens):
                    return session.run(None, {k: v.numpy() for k, v in tokens.items()})[0]

                pad_diff = float(np.abs(run(padded) - expected_padded).max())
                for B, L in shapes:
                    feed = {k: v.numpy() for k, v in inputs[(B, L)].items()}
                    out = session.run(None, feed)[0]
                    diff = float(np.abs(out - expected[(B, L)]).max())
                    cosine = mean_cosine(out, expected[(B, L)])
                    t, repeats, others = time_calls(lambda: session.run(None, feed), args.warmup, args.repeats,
                                                    args.budget)
                    if int8:
                        label = "ONNX Runtime int8 (dynamic, per-channel 7-bit weights; BERT fusions)"
                    else:
                        label = "ONNX Runtime" + (", BERT fusions" if fused else "") + \
                                (" (TorchScript export)" if fused else " (dynamo export)")
                    rows.append(dict(implementation=label, impl=impl, version=f"onnxruntime {ort.__version__}",
                                     gemm="MLAS (built in)", threads=args.threads, B=B, L=L, median_ms=t * 1e3,
                                     tokens_per_s=B * L / t, repeats=repeats, other_load=others,
                                     max_abs_diff_vs_torch=max(diff, pad_diff), mean_cosine_vs_torch=cosine,
                                     export=how))
                    print(f"{label} {B}x{L}: {t * 1e3:.1f} ms ({repeats} runs, other processes busy on "
                          f"{others:.1f} cores); max |ort - torch| {diff:.2e}, padded batch {pad_diff:.2e}; "
                          f"mean cosine {cosine:.6f}", file=sys.stderr, flush=True)
                del session
    print_table(rows)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
