#!/usr/bin/env python3
"""PyTorch reference sentence embeddings for `dfss embed`, computed by sentence-transformers.

Builds the model the way all-MiniLM-L6-v2 is published (Transformer -> mean pooling over the
non-padding tokens -> L2 normalization) from the local files only (config.json,
model.safetensors, tokenizer.json): the folder has no modules.json, so the three modules are
assembled here. fp32 on the CPU; writes float32 .npy [n_texts, hidden] and prints the versions used.

Input: UTF-8, one text per line; only the line's final "\\n" is removed (an empty line is an
empty text; a last line without "\\n" still counts).

  bash scripts/setup-embed-reference.sh     # once: .venv-torch with the pinned packages
  nice -n 19 .venv-torch/bin/python scripts/reference-embed.py \\
      --model models/all-MiniLM-L6-v2 --input texts.txt --output ref.npy [--max-len 256] [--batch 32]
  python3 scripts/compare-embeddings.py ref.npy emb.npy
"""
import argparse
import os
import sys
import time

# Local files only: never ask a model hub for anything.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="folder with config.json, model.safetensors, tokenizer.json")
    p.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    p.add_argument("--output", required=True, help="float32 .npy [n_texts, hidden] to write")
    p.add_argument("--max-len", type=int, default=256, help="tokens per text, [CLS] and [SEP] included")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--attn-implementation", default=None,
                   help="transformers attention implementation (eager, sdpa); default: transformers' choice")
    return p.parse_args()


def read_texts(path):
    """One text per line; only the newline that ends a line is removed."""
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        return []
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the file's final newline ends the last line, it does not start a new one
        lines.pop()
    return [line.decode("utf-8") for line in lines]


def build_model(model_dir, max_len, attn_implementation=None):
    """SentenceTransformer([Transformer, Pooling(mean), Normalize]) from local files, fp32, CPU."""
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer
    model_kwargs = {"torch_dtype": "float32"} if attn_implementation is None else \
        {"torch_dtype": "float32", "attn_implementation": attn_implementation}
    try:
        transformer = Transformer(model_dir, max_seq_length=max_len, model_kwargs=model_kwargs)
    except TypeError:  # older signatures took the kwargs as model_args
        transformer = Transformer(model_dir, max_seq_length=max_len, model_args=model_kwargs)
    hidden = (transformer.get_embedding_dimension() if hasattr(transformer, "get_embedding_dimension")
              else transformer.get_word_embedding_dimension())
    pooling = Pooling(hidden, pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
    model.eval()
    return model, transformer, hidden


def versions():
    import numpy
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    return (f"torch {torch.__version__}, transformers {transformers.__version__}, "
            f"sentence-transformers {sentence_transformers.__version__}, tokenizers {tokenizers.__version__}, "
            f"numpy {numpy.__version__}, python {sys.version.split()[0]}")


def main():
    args = parse_args()
    import numpy as np
    import torch
    import transformers
    transformers.logging.disable_progress_bar()  # "Loading weights" bars
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    texts = read_texts(args.input)
    model, transformer, hidden = build_model(args.model, args.max_len, args.attn_implementation)
    assert model.max_seq_length == args.max_len, (model.max_seq_length, args.max_len)
    attn = getattr(transformer.model.config, "_attn_implementation", "?")
    print(f"reference-embed: {versions()}; attention implementation {attn}; {torch.get_num_threads()} threads")

    t0 = time.perf_counter()
    if texts:
        with torch.inference_mode():
            emb = model.encode(texts, batch_size=args.batch, convert_to_numpy=True,
                               show_progress_bar=False, normalize_embeddings=False)  # Normalize is a module
    else:
        emb = np.zeros((0, hidden), np.float32)
    seconds = time.perf_counter() - t0
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    assert emb.shape == (len(texts), hidden), emb.shape
    np.save(args.output, emb)
    # Token counts, as the model saw them (truncated to max_len), for the record.
    preprocess = model.preprocess if hasattr(model, "preprocess") else model.tokenize
    n_tokens = sum(int(preprocess(texts[i:i + 256])["attention_mask"].sum()) for i in range(0, len(texts), 256))
    print(f"reference-embed: {len(texts)} texts, {n_tokens} tokens (max_len {args.max_len}, batch {args.batch}) "
          f"-> {args.output} float32 {list(emb.shape)} in {seconds:.2f} s")


if __name__ == "__main__":
    main()
