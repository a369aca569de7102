#!/usr/bin/env python3
"""Builds the real-text corpora of the embedding-quality evaluation (stdlib only).

Sources, all from Debian packages (scripts/make-corpora.sh installs them):
  r-cran-tm           Reuters-21578 articles (tm/texts/acq, crude, reuters-21578.xml)
  bible-kjv(-text)    King James Version, read through the `bible` program
  r-cran-janeaustenr  six Jane Austen novels, read through Rscript
  fortunes            fortune-cookie quotations

Writes into OUT (default out/corpora):
  sentences.txt, sentences_sources.txt   1000 texts (single sentences up to 200-word passages)
  pairs_queries.txt, pairs_targets.txt   line i of both is a pair of consecutive passages
  pairs_sources.txt                      per pair: source<TAB>document<TAB>length class
  reuters_texts.txt, reuters_labels.txt  the 70 acq/crude articles (title + body), topic
  books/{austen,kjv}-<book>.txt          each whole book, one paragraph (Austen) or chapter
                                         (KJV) a line
Every text is one line (inner newlines become spaces). The selection depends only on the
text (SHA-256 ranks), so every run writes the same files.
"""

import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TM_TEXTS = "/usr/lib/R/site-library/tm/texts"
FORTUNES = "/usr/share/games/fortunes"
FORTUNE_FILES = ["wisdom", "literature", "people", "humorists", "platitudes", "science",
                 "education", "work", "law", "politics"]

# Words per passage of the paired-passage set, by length class. At ~1.3-1.4 WordPiece
# tokens per word (punctuation counts), "long" lands at roughly 300-500 tokens.
LENGTH_CLASSES = {"short": (60, 110), "medium": (120, 200), "long": (280, 380)}
CLASS_CYCLE = ["long", "long", "medium", "long", "short", "medium", "long", "medium"]

ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "col", "gen", "capt", "messrs", "inc",
                 "corp", "co", "ltd", "no", "vs", "jan", "feb", "mar", "apr", "jun", "jul",
                 "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "n.v", "s.a",
                 "e.g", "i.e", "rev", "sr", "jr", "lt", "sgt", "gov", "sen", "rep"}


def rank(*parts):
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def clean(text):
    text = text.replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def words(text):
    return len(text.split())


def split_sentences(text):
    """Sentences of `text`: a break after . ! ? (and closing quotes) before a capital or
    digit, except after common abbreviations and initials."""
    sentences = []
    start = 0
    for match in re.finditer(r"[.!?][\"'\u201d\u2019)]*\s+(?=[\"'\u201c\u2018(]*[A-Z0-9])", text):
        candidate = text[start:match.end()].strip()
        last = re.search(r"([A-Za-z.]+)[.]\W*$", candidate)
        if last and last.group(1).lower().rstrip(".") in ABBREVIATIONS:
            continue
        if re.search(r"\b[A-Z][.]\s*$", candidate):  # initials: "J. Smith"
            continue
        sentences.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# ---------------------------------------------------------------- sources


def reuters_articles():
    """[(id, topic, title, body)] from tm's texts: 50 acq, 20 crude (the folder is the
    label), then 10 articles of other topics (label "")."""
    articles = []

    def parse(node, name, topic):
        title = node.findtext("./TEXT/TITLE") or ""
        body = node.findtext("./TEXT/BODY") or ""
        body = re.sub(r"\s*Reuter\s*$", "", body.strip())
        body = body.replace("<", "").replace(">", "")
        title = title.replace("<", "").replace(">", "")
        if all(clean(body) != a[3] for a in articles):  # reuters-21578.xml repeats acq/1
            articles.append((name, topic, clean(title), clean(body)))

    for topic in ("acq", "crude"):
        for path in sorted(glob.glob(os.path.join(TM_TEXTS, topic, "*.xml"))):
            parse(ET.parse(path).getroot(), f"{topic}/{os.path.basename(path)}", topic)
    for node in ET.parse(os.path.join(TM_TEXTS, "reuters-21578.xml")).getroot():
        parse(node, f"reuters-21578.xml#{node.get('NEWID')}", "")
    return articles


def kjv_chapters():
    """{(book, chapter): [verse text]} in canonical order, from the `bible` program."""
    output = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True,
                            capture_output=True, text=True, encoding="utf-8").stdout
    chapters = {}
    for line in output.splitlines():
        match = re.match(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$", line)
        if match:
            key = (match.group(1), int(match.group(2)))
            chapters.setdefault(key, []).append(clean(match.group(4)))
    if len(chapters) != 1189:
        sys.exit(f"make-corpora: expected 1189 KJV chapters from `bible`, got {len(chapters)}")
    return chapters


def austen_chapters(raw_dir):
    """{(book, chapter index): [paragraph]} from janeaustenr through Rscript."""
    path = os.path.join(raw_dir, "austen.tsv")
    script = ("library(janeaustenr); b <- austen_books(); "
              f"con <- file('{path}', 'w', encoding = 'UTF-8'); "
              "writeLines(paste(as.character(b$book), b$text, sep = '\\t'), con); close(con)")
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    chapters = {}
    counters = {}
    current = None
    paragraph = []

    def flush():
        if current is not None and paragraph:
            text = clean(" ".join(paragraph).replace("_", ""))
            if text and not re.fullmatch(r"[A-Z0-9 .,:;'-]+", text):  # drop headings, THE END
                chapters[current].append(text)
        paragraph.clear()

    with open(path, encoding="utf-8") as handle:
        for line in handle:
            book, _, text = line.rstrip("\n").partition("\t")
            if re.match(r"^\s*(CHAPTER|Chapter)\s+([0-9]+|[IVXLC]+)\b", text):
                flush()
                counters[book] = counters.get(book, 0) + 1
                current = (book, counters[book])
                chapters[current] = []
            elif current is not None and current[0] != book:
                flush()
                current = None
            elif not text.strip():
                flush()
            elif current is not None:
                paragraph.append(text)
        flush()
    return chapters


def fortunes():
    """[(file, text)] of prose-like fortunes."""
    result = []
    for name in FORTUNE_FILES:
        path = os.path.join(FORTUNES, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            entries = handle.read().split("\n%\n")
        for entry in entries:
            if re.search(r"[\x00-\x08\x0b-\x1f\ufffd]", entry):  # overstrike, bad bytes
                continue
            if re.search(r"^\s*[A-Za-z ]{1,20}:\s", entry, re.M):  # dialogue scripts
                continue
            text = clean(entry)
            letters = sum(c.isalpha() or c == " " for c in text)
            if 4 <= words(text) <= 200 and letters >= 0.85 * len(text):
                result.append((name, text))
    return result


# ---------------------------------------------------------------- sentences.txt


def pick(candidates, count, seen):
    """The `count` candidates of lowest SHA-256 rank whose text is new; candidates are
    (source label, text)."""
    chosen = []
    for label, text in sorted(candidates, key=lambda c: rank(c[0], c[1])):
        if len(chosen) == count:
            break
        if text in seen:
            continue
        seen.add(text)
        chosen.append((label, text))
    if len(chosen) < count:
        sys.exit(f"make-corpora: only {len(chosen)} of {count} texts for {candidates[0][0]}")
    return chosen


def window_passages(units, low, high):
    """Consecutive runs of `units` (sentences or verses) of low..high words."""
    result = []
    i = 0
    while i < len(units):
        run = []
        count = 0
        j = i
        while j < len(units) and count < low:
            run.append(units[j])
            count += words(units[j])
            j += 1
        if low <= count <= high:
            result.append(" ".join(run))
        i = j
    return result


def make_sentences(reuters, kjv, austen, fortune_list):
    seen = set()
    out = []

    sent, long_ = [], []
    for name, _, title, body in reuters:
        for s in split_sentences(body):
            if 3 <= words(s) <= 60:
                sent.append((f"reuters:{name}:sentence", s))
        text = f"{title}. {body}" if title else body
        if 50 <= words(text) <= 200:
            long_.append((f"reuters:{name}:article", text))
        else:
            for p in window_passages(split_sentences(body), 50, 200)[:2]:
                long_.append((f"reuters:{name}:passage", p))
    out += pick(sent, 190, seen) + pick(long_, 60, seen)

    sent, long_ = [], []
    for (book, chapter), verses in kjv.items():
        for v_index, verse in enumerate(verses):
            sent.append((f"kjv:{book}{chapter}:{v_index + 1}", verse))
        for p in window_passages(verses, 50, 200):
            long_.append((f"kjv:{book}{chapter}:passage", p))
    out += pick(sent, 170, seen) + pick(long_, 80, seen)

    sent, long_ = [], []
    for (book, chapter), paragraphs in austen.items():
        for paragraph in paragraphs:
            for s in split_sentences(paragraph):
                if 3 <= words(s) <= 80:
                    sent.append((f"austen:{book}:{chapter}:sentence", s))
            if 50 <= words(paragraph) <= 200:
                long_.append((f"austen:{book}:{chapter}:paragraph", paragraph))
    out += pick(sent, 200, seen) + pick(long_, 100, seen)

    out += pick([(f"fortunes:{name}", text) for name, text in fortune_list], 200, seen)
    return out


# ---------------------------------------------------------------- pairs


def consecutive_pairs(units, length_class, max_pairs):
    """Up to `max_pairs` pairs of consecutive passages (runs of `units`) of the class's
    length, with one passage left out between two pairs."""
    low, high = LENGTH_CLASSES[length_class]
    passages = []
    i = 0
    while i < len(units):
        run, count, j = [], 0, i
        while j < len(units) and count < low:
            run.append(units[j])
            count += words(units[j])
            j += 1
        passages.append((" ".join(run), count))
        i = j
    pairs = []
    k = 0
    while k + 1 < len(passages) and len(pairs) < max_pairs:
        (a, na), (b, nb) = passages[k], passages[k + 1]
        if low <= na <= high * 1.2 and low <= nb <= high * 1.2:
            pairs.append((a, b))
            k += 3
        else:
            k += 1
    return pairs


def halves(units):
    """The two halves (in words) of `units`, split between two units."""
    total = sum(words(u) for u in units)
    count, best, best_gap = 0, 1, None
    for i in range(1, len(units)):
        count += words(units[i - 1])
        gap = abs(count - total / 2)
        if best_gap is None or gap < best_gap:
            best, best_gap = i, gap
    return " ".join(units[:best]), " ".join(units[best:])


def make_pairs(reuters, kjv, austen, austen_count, kjv_count):
    rows = []
    for name, _, _, body in reuters:
        sentences = split_sentences(body)
        if words(body) >= 90 and len(sentences) >= 4:
            a, b = halves(sentences)
            if words(a) >= 30 and words(b) >= 30:  # class by article length here
                cls = "long" if words(body) >= 400 else "medium" if words(body) >= 200 else "short"
                rows.append(("reuters", name, cls, a, b))

    candidates = []
    for (book, chapter), paragraphs in austen.items():
        sentences = [s for p in paragraphs for s in split_sentences(p)]
        doc = f"{book}, chapter {chapter}"
        cls = CLASS_CYCLE[int(rank("austen", doc)[:8], 16) % len(CLASS_CYCLE)]
        for a, b in consecutive_pairs(sentences, cls, 2):
            candidates.append(("austen", doc, cls, a, b))
    rows += sorted(candidates, key=lambda r: rank(r[1], r[3]))[:austen_count]

    candidates = []
    for (book, chapter), verses in kjv.items():
        doc = f"{book} {chapter}"
        cls = CLASS_CYCLE[int(rank("kjv", doc)[:8], 16) % len(CLASS_CYCLE)]
        for a, b in consecutive_pairs(verses, cls, 1):
            candidates.append(("kjv", doc, cls, a, b))
    rows += sorted(candidates, key=lambda r: rank(r[1], r[3]))[:kjv_count]
    return rows


# ---------------------------------------------------------------- main


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            assert "\n" not in line and "\r" not in line
            handle.write(line + "\n")


def write_books(books_dir, kjv, austen):
    """One file per book (6 Austen novels, 66 KJV books), one paragraph or chapter a line: the
    long texts of the fine-tuning recipe's continuation task (python/dfss/finetune/data.py)."""
    os.makedirs(books_dir, exist_ok=True)
    books = {}
    for (book, _), paragraphs in austen.items():
        books.setdefault("austen-" + re.sub(r"[^A-Za-z0-9]+", "-", book), []).extend(paragraphs)
    for (book, _), verses in kjv.items():
        books.setdefault("kjv-" + book, []).append(" ".join(verses))
    for name, lines in books.items():
        write_lines(os.path.join(books_dir, name + ".txt"), lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "corpora"))
    parser.add_argument("--austen-pairs", type=int, default=170)
    parser.add_argument("--kjv-pairs", type=int, default=130)
    args = parser.parse_args()
    raw_dir = os.path.join(args.out, "raw")
    os.makedirs(raw_dir, exist_ok=True)

    reuters = reuters_articles()
    kjv = kjv_chapters()
    austen = austen_chapters(raw_dir)
    fortune_list = fortunes()

    sentences = make_sentences(reuters, kjv, austen, fortune_list)
    write_lines(os.path.join(args.out, "sentences.txt"), [t for _, t in sentences])
    write_lines(os.path.join(args.out, "sentences_sources.txt"), [s for s, _ in sentences])

    pairs = make_pairs(reuters, kjv, austen, args.austen_pairs, args.kjv_pairs)
    write_lines(os.path.join(args.out, "pairs_queries.txt"), [r[3] for r in pairs])
    write_lines(os.path.join(args.out, "pairs_targets.txt"), [r[4] for r in pairs])
    write_lines(os.path.join(args.out, "pairs_sources.txt"),
                [f"{r[0]}\t{r[1]}\t{r[2]}" for r in pairs])

    write_books(os.path.join(args.out, "books"), kjv, austen)

    topic = [a for a in reuters if a[0].startswith(("acq/", "crude/"))]
    write_lines(os.path.join(args.out, "reuters_texts.txt"), [f"{a[2]}. {a[3]}" for a in topic])
    write_lines(os.path.join(args.out, "reuters_labels.txt"), [a[1] for a in topic])

    def stats(texts):
        n = sorted(words(t) for t in texts)
        return f"words min {n[0]} median {n[len(n) // 2]} max {n[-1]}"

    print(f"sources: {len(reuters)} Reuters articles, {len(kjv)} KJV chapters, "
          f"{len(austen)} Austen chapters, {len(fortune_list)} fortunes")
    by_source = {}
    for label, _ in sentences:
        by_source[label.split(":")[0]] = by_source.get(label.split(":")[0], 0) + 1
    print(f"sentences.txt: {len(sentences)} texts "
          f"({', '.join(f'{k} {v}' for k, v in by_source.items())}); {stats([t for _, t in sentences])}; "
          f"{sum(words(t) >= 50 for _, t in sentences)} of >= 50 words")
    by_source = {}
    for r in pairs:
        key = f"{r[0]}/{r[2]}"
        by_source[key] = by_source.get(key, 0) + 1
    print(f"pairs: {len(pairs)} ({', '.join(f'{k} {v}' for k, v in sorted(by_source.items()))}); "
          f"passages {stats([r[3] for r in pairs] + [r[4] for r in pairs])}")
    print(f"reuters topic set: {len(topic)} articles "
          f"({sum(a[1] == 'acq' for a in topic)} acq, {sum(a[1] == 'crude' for a in topic)} crude)")


if __name__ == "__main__":
    main()
