#!/usr/bin/env python3
"""Writes src/tokenizer/unicode_tables.cc, the Unicode data of dfss's WordPiece tokenizer.

The tokenizer must match Hugging Face `tokenizers` (the version pinned in
scripts/requirements-tokenizer.txt) exactly, and that library mixes Unicode versions:

  control (Cc, Cf, Co), nonspacing marks (Mn), punctuation (P*)
        crate unicode_categories: Unicode 8.0
  canonical decomposition (NFD) and combining classes
        crate unicode-normalization-alignments: Unicode 8.0 gives the same result for
        every code point (scripts/verify-tokenizer.py checks all of them)
  lowercase (char::to_lowercase), whitespace (char::is_whitespace)
        Rust's standard library: Unicode 17.0 in tokenizers 0.23.3

Python 3.11's own `unicodedata` is Unicode 14.0 and matches neither, so the data is read
from the `unicodedata` module's generated tables as shipped by its PyPI backport
`unicodedata2` at the two versions needed (8.0.0 and 17.0.1 sdists, fetched with
`pip download`; nothing is built or imported from them). The parser is checked against
the installed unicodedata2 17.0 module and Python's own unicodedata before anything is
written.

Usage (from the repository root, inside .venv-tok, see scripts/verify-tokenizer.py):
    python scripts/gen-unicode-tables.py [--cache DIR] [--out src/tokenizer/unicode_tables.cc]
"""

import argparse
import os
import re
import subprocess
import sys
import tarfile
import unicodedata

UCD_OLD = "8.0.0"  # unicode_categories
UCD_NEW = "17.0.1"  # Rust std (unicodedata2 17.0.1 carries Unicode 17.0.0)
MAX_CODE = 0x110000
EXTENDED_CASE_MASK = 0x4000  # flag of a type record whose lowercase is a list

# Unicode's White_Space property (PropList.txt); unchanged since Unicode 6.3, when
# U+180E left it. Python's str.isspace differs only by also accepting U+001C..U+001F.
WHITE_SPACE = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
               0x2028, 0x2029, 0x202F, 0x205F, 0x3000]


def fetch_headers(version, cache):
    """Returns {file name: text} of the data headers in unicodedata2==version's sdist."""
    folder = os.path.join(cache, "unicodedata2-" + version)
    archive = os.path.join(folder, "unicodedata2-%s.tar.gz" % version)
    if not os.path.exists(archive):
        os.makedirs(folder, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-d", folder, "unicodedata2==" + version], check=True)
    headers = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            if name in ("unicodedata_db.h", "unicodetype_db.h"):
                headers[name] = tar.extractfile(member).read().decode("utf-8")
    return headers


def c_tables(text):
    """Parses the `#define NAME N` constants and `name[] = {...};` arrays of a header."""
    defines = {m[1]: int(m[2]) for m in re.finditer(r"#define (\w+) (\d+)\b", text)}
    arrays = {}
    for m in re.finditer(r"(\w+)\[\] = \{(.*?)\n\};", text, re.S):
        body = m[2]
        if '"' in body:
            arrays[m[1]] = re.findall(r'"([^"]*)"', body)
        elif "{" in body:
            arrays[m[1]] = [tuple(int(x) for x in re.findall(r"-?\d+", record))
                            for record in re.findall(r"\{([^{}]*)\}", body)]
        else:
            arrays[m[1]] = [int(x) for x in re.findall(r"-?\d+", body)]
    return defines, arrays


def two_level(index1, index2, shift, code):
    """CPython's two-stage lookup table: index of `code`'s record."""
    block = index1[code >> shift]
    return index2[(block << shift) + (code & ((1 << shift) - 1))]


class Ucd:
    """Category, combining class and decomposition from a unicodedata_db.h."""

    def __init__(self, text):
        d, a = c_tables(text)
        self.version = re.search(r'UNIDATA_VERSION "([^"]+)"', text)[1]
        records, names = a["_PyUnicode_Database_Records"], a["_PyUnicode_CategoryNames"]
        self.category, self.combining, self.decomposition = [], [], []
        for code in range(MAX_CODE):
            record = records[two_level(a["index1"], a["index2"], d["SHIFT"], code)]
            self.category.append(names[record[0]])
            self.combining.append(record[1])
            i = two_level(a["decomp_index1"], a["decomp_index2"], d["DECOMP_SHIFT"], code)
            head = a["decomp_data"][i]
            # head = prefix index | count << 8; prefix 0 ("") marks a canonical mapping.
            chars = a["decomp_data"][i + 1:i + 1 + (head >> 8)]
            prefix = a["decomp_prefix"][head & 255]
            self.decomposition.append((prefix, chars) if i else None)

    def canonical(self, code):
        """Full (recursive) canonical decomposition of `code`, or None."""
        entry = self.decomposition[code]
        if entry is None or entry[0]:
            return None
        out = []
        for c in entry[1]:
            out.extend(self.canonical(c) or [c])
        return out


def lowercase_table(text):
    """{code: [lowercase code points]} for every code point whose lowercase differs."""
    d, a = c_tables(text)
    records, extended = a["_PyUnicode_TypeRecords"], a["_PyUnicode_ExtendedCase"]
    mapping = {}
    for code in range(MAX_CODE):
        lower, flags = records[two_level(a["index1"], a["index2"], d["SHIFT"], code)][1::4]
        if flags & EXTENDED_CASE_MASK:
            out = extended[lower & 0xFFFF:(lower & 0xFFFF) + (lower >> 24)]
        else:
            out = [code + lower]
        if out != [code]:
            mapping[code] = out
    return mapping


def check_parser(new, lower):
    """The parsed tables must agree with the modules they were generated for."""
    import unicodedata2  # the installed 17.0 module, same data as the sdist
    assert unicodedata2.unidata_version == new.version, unicodedata2.unidata_version
    for code in range(MAX_CODE):
        c = chr(code)
        assert new.category[code] == unicodedata2.category(c), hex(code)
        assert new.combining[code] == unicodedata2.combining(c), hex(code)
        entry = new.decomposition[code]
        text = "" if entry is None else " ".join(
            [entry[0]] * bool(entry[0]) + ["%04X" % x for x in entry[1]])
        assert text == unicodedata2.decomposition(c), hex(code)
        # Case mappings of assigned characters are stable across versions.
        if unicodedata.category(c) not in ("Cn", "Cs"):
            assert "".join(map(chr, lower.get(code, [code]))) == c.lower(), hex(code)
    spaces = [x for x in range(MAX_CODE) if chr(x).isspace() and not 0x1C <= x <= 0x1F]
    assert spaces == WHITE_SPACE


def ranges(codes):
    """Sorted code points -> [(first, last)] of maximal runs."""
    out = []
    for code in sorted(codes):
        if out and out[-1][1] + 1 == code:
            out[-1][1] = code
        else:
            out.append([code, code])
    return out


def lowercase_runs(mapping):
    """Single code point mappings as runs (first, last, delta, stride): code points first,
    first + stride, ..., last each map to code + delta, and codes in between (stride 2)
    have no mapping, which is how most alphabets interleave upper and lower case."""
    singles = sorted((c, out[0] - c) for c, out in mapping.items() if len(out) == 1)
    runs = []
    for code, delta in singles:
        if runs:
            first, last, run_delta, stride = runs[-1]
            if run_delta == delta and code - last == stride:
                runs[-1][1] = code
                continue
            # A run of one may still pick its stride; only if nothing lies between.
            if run_delta == delta and first == last and code - last == 2 and \
                    code - 1 not in mapping:
                runs[-1][1:] = [code, delta, 2]
                continue
        runs.append([code, code, delta, 1])
    return runs


def format_rows(rows, width=100):
    """Table rows, as many to a line as fit in `width` columns."""
    lines = []
    for row in rows:
        if lines and len(lines[-1]) + 1 + len(row) <= width:
            lines[-1] += " " + row
        else:
            lines.append("    " + row)
    return "\n".join(lines)


def range_table(name, comment, pairs):
    rows = ["{0x%X, 0x%X}," % (a, b) for a, b in pairs]
    return ("// %s\nconstexpr CodeRange k%sData[] = {\n%s\n};\n"
            "constinit const std::span<const CodeRange> k%s(k%sData);\n"
            % (comment, name, format_rows(rows), name, name))


def generate(old, new, lower):
    cats = old.category
    control = [c for c in range(MAX_CODE) if cats[c] in ("Cc", "Cf", "Co")]
    mark = [c for c in range(MAX_CODE) if cats[c] == "Mn"]
    ascii_punct = [c for c in range(33, 127) if not chr(c).isalnum()]
    punct = sorted(set(ascii_punct) | {c for c in range(MAX_CODE) if cats[c][0] == "P"})
    ccc = []
    for code in range(MAX_CODE):
        value = old.combining[code]
        if value and ccc and ccc[-1][1] + 1 == code and ccc[-1][2] == value:
            ccc[-1][1] = code
        elif value:
            ccc.append([code, code, value])
    decomp_rows, data = [], []
    for code in range(MAX_CODE):
        chars = old.canonical(code)
        if chars:
            decomp_rows.append("{0x%X, %d, %d}," % (code, len(data), len(chars)))
            data.extend(chars)
    assert len(data) < 1 << 16 and max(len(v) for v in lower.values()) <= 3
    runs = lowercase_runs(lower)
    expansions = ["{0x%X, {%s}, %d}," % (c, ", ".join("0x%X" % x for x in out), len(out))
                  for c, out in sorted(lower.items()) if len(out) > 1]
    parts = [
        "// Generated by scripts/gen-unicode-tables.py; do not edit.\n"
        "// Categories, combining classes and decompositions: Unicode %s; lowercase: Unicode "
        "%s;\n// whitespace: the White_Space property. See the script for why.\n"
        % (old.version, new.version),
        '#include "tokenizer/unicode_tables.h"\n',
        "namespace dfss::tokenizer::detail {\n",
        "// clang-format off",
        range_table("ControlRanges", "General categories Cc, Cf and Co.", ranges(control)),
        range_table("NonspacingMarkRanges", "General category Mn.", ranges(mark)),
        range_table("PunctuationRanges", "ASCII punctuation and symbols, and categories P*.",
                    ranges(punct)),
        range_table("WhitespaceRanges", "The White_Space property.", ranges(WHITE_SPACE)),
        "// Canonical combining classes other than 0.\n"
        "constexpr CombiningClassRange kCombiningClassData[] = {\n%s\n};\n"
        "constinit const std::span<const CombiningClassRange> kCombiningClassRanges("
        "kCombiningClassData);\n"
        % format_rows(["{0x%X, 0x%X, %d}," % tuple(r) for r in ccc]),
        "// Full canonical decompositions (Hangul syllables excepted: they are algorithmic),\n"
        "// as {code, offset, length} into kDecompositionChars.\n"
        "constexpr Decomposition kDecompositionData[] = {\n%s\n};\n"
        "constinit const std::span<const Decomposition> kDecompositions(kDecompositionData);\n"
        % format_rows(decomp_rows),
        "constexpr char32_t kDecompositionCharData[] = {\n%s\n};\n"
        "constinit const std::span<const char32_t> kDecompositionChars("
        "kDecompositionCharData);\n" % format_rows(["0x%X," % c for c in data]),
        "// Lowercase mappings to one code point.\n"
        "constexpr LowercaseRun kLowercaseRunData[] = {\n%s\n};\n"
        "constinit const std::span<const LowercaseRun> kLowercaseRuns(kLowercaseRunData);\n"
        % format_rows(["{0x%X, 0x%X, %d, %d}," % tuple(r) for r in runs]),
        "// Lowercase mappings to several code points.\n"
        "constexpr LowercaseExpansion kLowercaseExpansionData[] = {\n%s\n};\n"
        "constinit const std::span<const LowercaseExpansion> kLowercaseExpansions("
        "kLowercaseExpansionData);\n" % format_rows(expansions),
        "// clang-format on\n",
        "}  // namespace dfss::tokenizer::detail\n",
    ]
    return "\n".join(parts)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=os.path.join(root, ".venv-tok", "ucd"),
                        help="where the unicodedata2 sdists are downloaded")
    parser.add_argument("--out", default=os.path.join(root, "src/tokenizer/unicode_tables.cc"))
    args = parser.parse_args()
    old = Ucd(fetch_headers(UCD_OLD, args.cache)["unicodedata_db.h"])
    new_headers = fetch_headers(UCD_NEW, args.cache)
    new = Ucd(new_headers["unicodedata_db.h"])
    lower = lowercase_table(new_headers["unicodetype_db.h"])
    check_parser(new, lower)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(generate(old, new, lower))
    print("wrote %s (Unicode %s categories, %s lowercase; Python's own is %s)"
          % (args.out, old.version, new.version, unicodedata.unidata_version))


if __name__ == "__main__":
    main()
