"""dfss.finetune: fixed task splits, checked data files, metrics, and a tiny fine-tune (single
process and 2-process gloo) whose saved folder loads back."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import MODEL_DIR, REPO
import dfss.hf  # noqa: F401  registers attn_implementation="dfss" for the round-trip check
from dfss.finetune import data, evaluate, train

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


# ------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------


def test_wiki_split_is_fixed():
    first, second = data.load_task("wiki"), data.load_task("wiki")
    assert first == second
    # The counts pin the split (a changed hash rule or file would move them).
    assert (len(first.train), len(first.test)) == (7924, 1938)
    assert all(data.split_of(p.group) == "test" for p in first.test)
    assert not {p.group for p in first.train} & {p.group for p in first.test}
    assert {p.label for p in first.test} >= {"People", "Geography", "Mathematics"}
    limited = data.load_task("wiki", train_limit=10, test_limit=3)
    assert limited.train == first.train[:10] and limited.test == first.test[:3]


def test_wiki_file_altered_or_missing(tmp_path):
    original = data.wiki_file()
    altered = tmp_path / "summaries_en-us.json"
    content = bytearray(original.read_bytes())
    content[100] ^= 1
    altered.write_bytes(bytes(content))
    with pytest.raises(data.DataFileError, match=r"summaries_en-us\.json: SHA-256 .* expected"):
        data.load_task("wiki", path=altered)
    with pytest.raises(data.DataFileError, match=r"missing\.json: data file not found"):
        data.load_task("wiki", path=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="task: expected one of wiki, books"):
        data.load_task("squad")


def _tokenizer():
    return tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))


def _write_books(folder, words_per_book=2500):
    rng = np.random.default_rng(0)
    vocabulary = "the king house river letter morning sister ship silver garden".split()
    lines = []
    for source, count in (("austen", 3), ("kjv", 5)):
        for b in range(count):
            name = f"{source}-Book{b}.txt"
            text = "\n".join(" ".join(rng.choice(vocabulary, 100)) + "."
                             for _ in range(words_per_book // 100))
            (folder / name).write_text(text + "\n", encoding="utf-8")
            lines.append(f"{data._sha256(folder / name)}  {name}")
    manifest = folder / "books.sha256"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_books_passages_and_split(tmp_path):
    manifest = _write_books(tmp_path)
    task = data.load_books(_tokenizer(), tmp_path, manifest)
    again = data.load_books(_tokenizer(), tmp_path, manifest)
    assert task == again
    test_books = {p.group for p in task.test}
    # One test book per source (20 % rounded, at least one), none of them in train.
    assert sorted(b.split("-")[0] for b in test_books) == ["austen", "kjv"]
    assert not test_books & {p.group for p in task.train}
    tok = _tokenizer()
    tok.no_truncation()
    for pair in task.train + task.test:
        for half in (pair.query, pair.document):
            assert abs(len(tok.encode(half, add_special_tokens=False).ids) - 254) <= 2
    # 2500 words of one-token words: windows of 508 tokens, every other one.
    assert len(task.train) + len(task.test) == 8 * len(range(0, 2500 - 508 + 1, 1016))


def test_books_manifest_is_installed_with_the_package():
    names = [line.split()[1] for line in data.BOOKS_MANIFEST.read_text().splitlines()]
    assert len(names) == 72 and len(set(names)) == 72
    assert sum(n.startswith("austen-") for n in names) == 6
    assert sorted(data.book_test_split([n[:-4] for n in names])) == [
        "austen-Persuasion", "kjv-1Chr", "kjv-1Jn", "kjv-1Th", "kjv-2Cor", "kjv-2Jn", "kjv-2Ki",
        "kjv-2Pet", "kjv-Amos", "kjv-Eph", "kjv-Lev", "kjv-Phmn", "kjv-SSol", "kjv-Zep"]


def test_books_file_altered_or_missing(tmp_path):
    manifest = _write_books(tmp_path)
    with open(tmp_path / "kjv-Book2.txt", "a", encoding="utf-8") as handle:
        handle.write("added\n")
    with pytest.raises(data.DataFileError, match=r"kjv-Book2\.txt: SHA-256"):
        data.load_books(_tokenizer(), tmp_path, manifest)
    (tmp_path / "kjv-Book2.txt").unlink()
    with pytest.raises(data.DataFileError, match=r"kjv-Book2\.txt: data file not found"):
        data.load_books(_tokenizer(), tmp_path, manifest)
    with pytest.raises(ValueError, match="tokenizer"):
        data.load_task("books", path=tmp_path)


# ------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------


def test_reciprocal_ranks_and_topic_knn():
    documents = np.eye(4)
    queries = np.array([[1, 0, 0, 0],      # own document first
                        [0.9, 0.5, 0, 0],  # own second
                        [0, 0, 0, 0],      # tied with every document: no credit for ties
                        [0, 0, 0, 1.0]])
    rr = evaluate.reciprocal_ranks(queries, documents)
    assert rr.tolist() == [1.0, 0.5, 0.25, 1.0]
    assert evaluate.reciprocal_ranks(queries, documents, cutoff=3)[2] == 0.0
    points = np.array([[1, 0], [0.9, 0.1], [0.95, 0.05], [0, 1], [0.1, 0.9], [0.05, 0.95]])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels = ["a", "a", "a", "b", "b", "b"]
    assert evaluate.topic_knn_accuracy(points, labels, k=2) == 1.0
    # k = 1: the nearest neighbours are 0<->2, 1->2, 3<->5, 4->5; 1 and 4 get the wrong topic.
    assert evaluate.topic_knn_accuracy(points, ["a", "b", "a", "b", "a", "b"], k=1) == 4 / 6


def test_rank_shares_cover_the_batch_and_balance_the_cost():
    batch = np.arange(100, 108)
    assert [list(s) for s in train.rank_shares(batch, 2)] == [[100, 101, 102, 103],
                                                             [104, 105, 106, 107]]
    # One long pair and seven short ones: equal slices give one rank the long pair and three
    # short ones; by cost the long pair goes alone against the seven.
    lengths = [(20, 500)] + [(10, 60)] * 7
    cost = train.CostModel(1.78e-7, 1.10e-3, 0.0)
    shares = train.rank_shares(batch, 2, lengths, cost)
    assert sorted(int(i) for s in shares for i in s) == list(range(100, 108))
    pair_cost = {100 + j: float(cost(q)) + float(cost(d)) for j, (q, d) in enumerate(lengths)}
    loads = sorted(sum(pair_cost[int(i)] for i in s) for s in shares)
    equal = sorted(sum(pair_cost[int(i)] for i in s) for s in train.rank_shares(batch, 2))
    assert loads[1] < equal[1]
    assert [len(s) for s in shares] in ([1, 7], [7, 1])


def test_paired_permutation_p():
    rng = np.random.default_rng(1)
    a = rng.random(300)
    assert evaluate.paired_permutation_p(a, a) == 1.0
    assert evaluate.paired_permutation_p(a + 0.2, a) < 1e-3  # every pair moves the same way
    noise = rng.normal(0, 0.1, 300)
    assert evaluate.paired_permutation_p(a + noise, a) > 0.01  # no real difference
    with pytest.raises(ValueError, match="equally long"):
        evaluate.paired_permutation_p([1.0, 2.0], [1.0])


# ------------------------------------------------------------------------------------------
# A tiny fine-tune through the command line
# ------------------------------------------------------------------------------------------


def _finetune(args, distributed=False, check=True):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if distributed:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2"]
    else:
        launcher = [sys.executable]
    return subprocess.run(launcher + ["-m", "dfss.finetune", "--no-progress"] + args, env=env,
                          capture_output=True, text=True, check=check, timeout=600)


@pytest.mark.parametrize("sparsity", ["dense", "2:4"])
def test_tiny_finetune_single_and_two_ranks(tiny_model, tmp_path, sparsity):
    common = ["--model", str(tiny_model), "--task", "wiki", "--train-limit", "16",
              "--test-limit", "24", "--steps", "10", "--batch-size", "8", "--lr", "1e-3",
              "--max-length", "64", "--threads", "1", "--sparsity", sparsity]
    _finetune(common + ["--json", str(tmp_path / "one.json"), "--out", str(tmp_path / "model")])
    _finetune(common + ["--json", str(tmp_path / "two.json")], distributed=True)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2
    if sparsity == "dense":  # deterministic with a seed: a second run gives the same bits
        _finetune(common + ["--json", str(tmp_path / "again.json"), "--no-eval"])
        assert json.loads((tmp_path / "again.json").read_text())["loss"] == one["loss"]
    assert one["config"]["sparsity"] == sparsity
    # 16 pairs in batches of 8 (5 epochs): the loss must fall.
    assert np.mean(one["loss"][-2:]) < 0.7 * np.mean(one["loss"][:2])
    # Two ranks of 4 pairs each compute the loss of the same global batch: the same curve up to
    # float32 summation order.
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=2e-4, atol=1e-6)
    assert two["rank_pairs"] == [[4, 4]] * 10
    if sparsity == "dense":
        # Shares by predicted cost: other splits of the same global batches (uneven ones among
        # them: at 256 tokens these documents run from 56 to 231), the same loss as one process.
        longer = [a if a != "64" else "256" for a in common] + ["--no-eval"]
        _finetune(longer + ["--json", str(tmp_path / "one256.json")])
        _finetune(longer + ["--json", str(tmp_path / "balanced.json"), "--balance"],
                  distributed=True)
        one256 = json.loads((tmp_path / "one256.json").read_text())
        balanced = json.loads((tmp_path / "balanced.json").read_text())
        assert balanced["config"]["balance"] is True
        assert all(sum(sizes) == 8 and min(sizes) >= 1 for sizes in balanced["rank_pairs"])
        assert any(sizes != [4, 4] for sizes in balanced["rank_pairs"])
        np.testing.assert_allclose(balanced["loss"], one256["loss"], rtol=2e-4, atol=1e-6)
        assert balanced["forward_wait_seconds"] >= 0
    assert set(one["metrics"]) >= {"mrr@10", "r@1", "topic_knn@10", "reciprocal_ranks"}

    # The saved folder round-trips: transformers and sentence-transformers load it and give the
    # embeddings the recipe evaluated with.
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "model"
    assert json.loads((folder / "dfss_finetune.json").read_text())["loss"] == one["loss"]
    texts = ["an article about rivers", "a film by a famous director"]
    model = transformers.AutoModel.from_pretrained(folder, attn_implementation="dfss").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    ours = evaluate.embed(model, tokenizer, texts, max_length=64)
    st = SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(st.encode(texts), ours, atol=2e-5)
    dfss_cli = REPO / "build" / "dfss"
    if dfss_cli.exists():
        (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
        subprocess.run([str(dfss_cli), "embed", "--model", str(folder), "--input",
                        str(tmp_path / "texts.txt"), "--output", str(tmp_path / "e.npy")],
                       check=True, capture_output=True)
        np.testing.assert_allclose(np.load(tmp_path / "e.npy"), ours, atol=2e-5)


def test_finetune_errors(tiny_model, tmp_path):
    base = ["--model", str(tiny_model), "--train-limit", "8", "--test-limit", "8"]
    cases = [
        (["--sparsity", "3:3", "--steps", "1", "--batch-size", "4"], "sparsity: expected"),
        (["--steps", "-1"], "--steps: expected an int >= 0"),
        (["--batch-size", "0"], "--batch-size: expected an int >= 1"),
        (["--steps", "1", "--batch-size", "9"], "batch_size: 9 is larger than the 8"),
        (["--attn-implementation", "sdpa", "--sparsity", "2:4"], "needs --attn-implementation"),
        (["--balance", "--balance-cost", "1e-7"], "--balance-cost: expected A,B"),
        (["--balance", "--balance-cost", "0,0"], "--balance-cost: expected A,B"),
        (["--balance", "--balance-cost=-1,2"], "--balance-cost: expected A,B"),
        (["--balance-cost", "1e-7,1e-3"], "--balance-cost: only with --balance"),
    ]
    for extra, message in cases:
        result = _finetune(base + extra + ["--json", str(tmp_path / "x.json")], check=False)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr, (extra, result.stderr)
        assert not (tmp_path / "x.json").exists()
    result = _finetune(["--model", str(tmp_path / "nowhere")], check=False)
    assert result.returncode == 2 and "--model:" in result.stderr and "no config.json" in \
        result.stderr
    result = _finetune(base + ["--steps", "1", "--batch-size", "3", "--json",
                               str(tmp_path / "x.json")], distributed=True, check=False)
    assert result.returncode != 0 and "batch_size: 3 is not divisible by the 2 ranks" in \
        result.stderr
    result = _finetune(base + ["--steps", "1", "--batch-size", "1", "--balance", "--json",
                               str(tmp_path / "x.json")], distributed=True, check=False)
    assert result.returncode != 0 and "batch_size: 1 is smaller than the 2 ranks" in \
        result.stderr
