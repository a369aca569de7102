"""dfss.prune: block-structured N:M masks (the rule, ties, blocks, activation-aware scores),
the compressed export read back by dfss's C++ runtime, distillation that keeps the pattern,
and the command line's errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO
from dfss.prune import export, masks

transformers = pytest.importorskip("transformers")


def test_parse_pattern():
    assert masks.parse_pattern("2:4x16") == masks.BlockPattern(2, 4, 16)
    assert masks.parse_pattern("1:8") == masks.BlockPattern(1, 8, 16)
    assert str(masks.parse_pattern("3:7x1")) == "3:7x1"
    assert masks.parse_pattern("2:4").sparsity == 0.5
    for bad in ["", "2", "2:4x", "5:4", "0:4", "2:4x0", "1:65", "2:4x65", "a:b", None]:
        with pytest.raises(ValueError, match="pattern: expected"):
            masks.parse_pattern(bad)


def test_block_columns_rule():
    # The C++ test's matrix (tests/sparse_linear_test.cc): 3 x 8, 1:4, blocks of 2 rows.
    w = torch.tensor([[1, -5, 0, 2, 0, 0, 0, 0],
                      [1, 1, -4, 0, 3, -3, 0, 0],
                      [7, 0, 0, -8, 0, 0, 0, 0]], dtype=torch.float32)
    pattern = masks.BlockPattern(1, 4, 2)
    columns = masks.block_columns(w, pattern)
    assert columns.tolist() == [[[1], [0]], [[3], [0]]]  # offsets: block 0 -> 1, 4; block 1 -> 3, 4
    mask = masks.mask_from_columns(columns, 3, 8, pattern)
    pruned = (w * mask).tolist()
    assert pruned == [[0, -5, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 3, 0, 0, 0],
                      [0, 0, 0, -8, 0, 0, 0, 0]]
    # Activation-aware: |w| * ‖x_c‖ changes the choice.
    row = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert masks.block_columns(row, masks.BlockPattern(1, 4, 1)).tolist() == [[[3]]]
    scale = torch.tensor([10.0, 1.0, 1.0, 1.0])
    assert masks.block_columns(row, masks.BlockPattern(1, 4, 1), scale).tolist() == [[[0]]]
    with pytest.raises(ValueError, match="not a multiple of M"):
        masks.block_columns(torch.ones(4, 6), masks.BlockPattern(2, 4, 4))


def test_mask_shares_columns_within_blocks():
    torch.manual_seed(0)
    w = torch.randn(40, 32)
    pattern = masks.BlockPattern(2, 8, 16)
    mask = masks.mask_from_columns(masks.block_columns(w, pattern), 40, 32, pattern)
    assert mask.shape == (40, 32)
    for block in range(3):
        rows = mask[block * 16:(block + 1) * 16]
        assert (rows == rows[0]).all()  # one pattern per block (the last is 8 rows)
        assert (rows[0].view(4, 8).sum(dim=1) == 2).all()  # N of every M


def _prune_cli(args, check=True):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "dfss.prune", "--no-progress"] + args, env=env,
                          capture_output=True, text=True, check=check, timeout=600)


def test_prune_distill_export_round_trip(tiny_model, tmp_path):
    out = tmp_path / "pruned"
    _prune_cli(["--model", str(tiny_model), "--pattern", "2:4x16", "--method", "wanda",
                "--calibration-texts", "16", "--distill-steps", "12", "--batch-size", "8",
                "--lr", "2e-4", "--max-length", "48", "--train-limit", "32", "--test-limit", "24",
                "--threads", "1", "--out", str(out), "--json", str(tmp_path / "r.json")])
    record = json.loads((tmp_path / "r.json").read_text())
    assert set(record) >= {"dense", "one_shot", "distilled", "distill"}
    # Pruning moved the embeddings; distillation brought them back towards the dense ones.
    assert record["one_shot"]["cosine_to_dense_mean"] < 0.9999
    assert record["distilled"]["cosine_to_dense_mean"] > record["one_shot"]["cosine_to_dense_mean"]
    losses = record["distill"]["loss"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])

    # The saved dense checkpoint holds the pattern: 2 of every 4 columns, shared by 16 rows.
    model = transformers.AutoModel.from_pretrained(out).eval()
    for name, layer in masks.linear_layers(model).items():
        nonzero = (layer.weight != 0).view(-1, 16, layer.in_features // 4, 4)
        assert (nonzero.sum(dim=-1) <= 2).all(), name
    from safetensors import safe_open

    with safe_open(str(out / export.FILE_NAME), "np") as f:
        assert f.metadata()["format"] == export.FORMAT
        assert f.metadata()["encoder.layer.1.intermediate.dense"] == "2:4x16"
        assert f.get_tensor("encoder.layer.0.output.dense.values").shape == (4, 64, 16)
        assert f.get_tensor("encoder.layer.0.output.dense.columns").dtype == np.uint8

    # dfss's C++ runtime reads the compressed layers (checking them against the dense ones)
    # and its block-sparse kernels give the embeddings transformers gives.
    dfss_cli = REPO / "build" / "dfss"
    if not dfss_cli.exists():
        pytest.skip("build/dfss not built")
    from dfss.finetune import evaluate

    texts = ["an article about rivers", "a film by a famous director"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ours = evaluate.embed(model, tokenizer, texts, max_length=48)
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    result = subprocess.run([str(dfss_cli), "eval", "embed", "--model", str(out), "--input",
                             str(tmp_path / "texts.txt"), "--attention", "dense", "--reps", "1"],
                            check=True, capture_output=True, text=True)
    assert "weights 2:4x16 (12/12 linears)" in result.stdout
    subprocess.run([str(dfss_cli), "embed", "--model", str(out), "--input",
                    str(tmp_path / "texts.txt"), "--output", str(tmp_path / "e.npy")],
                   check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), ours, atol=2e-5)


def test_layer_kinds():
    assert masks.parse_layer_kinds("all") == ("qkv", "attention-output", "ffn-in", "ffn-out")
    assert masks.parse_layer_kinds("ffn") == ("ffn-in", "ffn-out")
    assert masks.parse_layer_kinds("ffn-out, qkv,ffn-out") == ("ffn-out", "qkv")
    for bad in ("", "query", "ffn,mlp", None):
        with pytest.raises(ValueError, match="layers: expected all, ffn, attention"):
            masks.parse_layer_kinds(bad)


def test_prune_only_some_layers(tiny_model, tmp_path):
    """--layers ffn prunes the feed-forward layers only; the C++ runtime runs them block-sparse
    and the attention layers dense, and gives transformers' embeddings."""
    out = tmp_path / "ffn"
    _prune_cli(["--model", str(tiny_model), "--pattern", "1:4x16", "--method", "magnitude",
                "--layers", "ffn", "--max-length", "48", "--test-limit", "8", "--threads", "1",
                "--out", str(out), "--json", str(tmp_path / "r.json"), "--no-eval"])
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["layers"] == ["ffn-in", "ffn-out"]
    model = transformers.AutoModel.from_pretrained(out).eval()
    linears = masks.linear_layers(model)
    total = sum(layer.weight.numel() for layer in linears.values())
    ffn = sum(layer.weight.numel() for name, layer in linears.items()
              if name.endswith(("intermediate.dense", ".output.dense"))
              and "attention" not in name)
    assert record["zeros_fraction"] == pytest.approx(0.75 * ffn / total)
    for name, layer in linears.items():
        zeros = (layer.weight == 0).float().mean().item()
        if name.endswith("intermediate.dense") or (name.endswith("output.dense")
                                                   and "attention" not in name):
            assert zeros >= 0.75, name
        else:
            assert zeros < 0.01, name
    dfss_cli = REPO / "build" / "dfss"
    if not dfss_cli.exists():
        pytest.skip("build/dfss not built")
    from dfss.finetune import evaluate

    texts = ["an article about rivers", "a film by a famous director"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    result = subprocess.run([str(dfss_cli), "eval", "embed", "--model", str(out), "--input",
                             str(tmp_path / "texts.txt"), "--attention", "dense", "--reps", "1"],
                            check=True, capture_output=True, text=True)
    assert "weights 1:4x16 (4/12 linears)" in result.stdout, result.stdout
    subprocess.run([str(dfss_cli), "embed", "--model", str(out), "--input",
                    str(tmp_path / "texts.txt"), "--output", str(tmp_path / "e.npy")],
                   check=True, capture_output=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ours = evaluate.embed(model, tokenizer, texts, max_length=48)
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), ours, atol=2e-5)


def test_prune_errors(tiny_model, tmp_path):
    base = ["--model", str(tiny_model), "--test-limit", "8", "--train-limit", "8"]
    cases = [
        (["--pattern", "2:4y"], "--pattern: expected"),
        (["--pattern", "1:3x16"], "not a multiple of M"),
        (["--pattern", "2:4", "--distill-steps", "-1"], "--distill-steps: expected an int >= 0"),
        (["--pattern", "2:4", "--batch-size", "0"], "--batch-size: expected an int >= 1"),
        (["--pattern", "2:4", "--layers", "mlp"], "--layers: expected all, ffn, attention"),
        (["--pattern", "2:4", "--distill-steps", "1", "--batch-size", "99"], "batch_size <="),
    ]
    for extra, message in cases:
        result = _prune_cli(base + extra + ["--json", str(tmp_path / "x.json"), "--no-eval"],
                            check=False)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr, (extra, result.stderr)
        assert not (tmp_path / "x.json").exists()
    result = _prune_cli(["--model", str(tmp_path / "nowhere"), "--pattern", "2:4"], check=False)
    assert result.returncode == 2 and "no config.json" in result.stderr
