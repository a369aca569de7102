// Unit tests of the WordPiece tokenizer on a tiny hand-written vocabulary; they need no
// model files. tokenizer_reference_test.cc compares with Hugging Face on a real vocab.
#include "dfss/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace dfss::tokenizer {
namespace {

using Tokens = std::vector<std::string>;

// Ids are line numbers: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, un 5, ...
constexpr const char* kVocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nunaff\nwant\n##want\n##ed\nwa\n,\n"
    "runn\n##ing\n.\n!\ncafe\nnaive\nangstrom\n中\n国\na\n##a\nα\n##α\ni\nσ\nb\n";

WordPieceTokenizer make(NormalizerOptions options = {}) {
  return WordPieceTokenizer(Vocab::parse(kVocab, "tiny"), options);
}

// normalize() on UTF-8, for readable expectations.
std::string normalized(std::string_view text, NormalizerOptions options = {}) {
  std::u32string chars;
  EXPECT_FALSE(detail::decode_utf8(text, chars));
  std::string out;
  for (char32_t c : detail::normalize(chars, options)) detail::append_utf8(c, out);
  return out;
}

using test::message_of;

TEST(Tokenizer, GreedyLongestMatchFirst) {
  const WordPieceTokenizer tokenizer = make();
  // "unaff" is preferred to "un" + "##aff": the longest piece wins at every position.
  EXPECT_EQ(tokenizer.tokenize("unaffable"), (Tokens{"unaff", "##able"}));
  EXPECT_EQ(tokenizer.tokenize("unwanted running"),
            (Tokens{"un", "##want", "##ed", "runn", "##ing"}));
  EXPECT_EQ(tokenizer.tokenize("wanted"), (Tokens{"want", "##ed"}));
}

TEST(Tokenizer, WordWithAnUncoverablePartIsOneUnk) {
  const WordPieceTokenizer tokenizer = make();
  // "want" matches, then nothing covers "x": the pieces found are dropped.
  EXPECT_EQ(tokenizer.tokenize("wantx want"), (Tokens{"[UNK]", "want"}));
  EXPECT_EQ(tokenizer.tokenize("zzz"), (Tokens{"[UNK]"}));
}

TEST(Tokenizer, WordsOverOneHundredCharactersAreUnk) {
  const WordPieceTokenizer tokenizer = make();
  EXPECT_EQ(tokenizer.tokenize(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(tokenizer.tokenize(std::string(101, 'a')), (Tokens{"[UNK]"}));
  // Counted in characters, not bytes: 100 two-byte alphas are fine.
  std::string alphas;
  for (int i = 0; i < 100; ++i) alphas += "α";
  EXPECT_EQ(tokenizer.tokenize(alphas).size(), 100u);
  EXPECT_EQ(tokenizer.tokenize(alphas + "α"), (Tokens{"[UNK]"}));
}

TEST(Tokenizer, PunctuationIsSplitOff) {
  const WordPieceTokenizer tokenizer = make();
  EXPECT_EQ(tokenizer.tokenize("want,want!."), (Tokens{"want", ",", "want", "!", "."}));
  // Unicode punctuation (Po) splits too, and ASCII symbols count as punctuation.
  EXPECT_EQ(tokenizer.tokenize("want¿want$"), (Tokens{"want", "[UNK]", "want", "[UNK]"}));
  EXPECT_EQ(tokenizer.tokenize("a...b"), (Tokens{"a", ".", ".", ".", "b"}));
}

TEST(Tokenizer, CjkIdeographsAreWordsOfTheirOwn) {
  const WordPieceTokenizer tokenizer = make();
  EXPECT_EQ(tokenizer.tokenize("中国"), (Tokens{"中", "国"}));
  EXPECT_EQ(tokenizer.tokenize("a中a"), (Tokens{"a", "中", "a"}));
  EXPECT_EQ(normalized("x中y"), "x 中 y");
  // Hangul and kana are not padded; accent stripping's NFD splits Hangul syllables into
  // jamo, as HF does.
  EXPECT_EQ(normalized("가나かな"), "\u1100\u1161\u1102\u1161かな");
}

TEST(Tokenizer, AccentsAreStrippedAndTextLowercased) {
  const WordPieceTokenizer tokenizer = make();
  EXPECT_EQ(tokenizer.tokenize("Café NAÏVE Ångström"), (Tokens{"cafe", "naive", "angstrom"}));
  // Decomposed input and the Angstrom sign (U+212B) give the same.
  EXPECT_EQ(tokenizer.tokenize("CAFE\u0301 \u212Bngstro\u0308m"), (Tokens{"cafe", "angstrom"}));
  // U+0130 lowercases to "i" + U+0307 in Rust, but accents go first: "i".
  EXPECT_EQ(tokenizer.tokenize("\u0130"), (Tokens{"i"}));
  // Characters lowercase one by one: a final capital sigma is σ, never ς.
  EXPECT_EQ(tokenizer.tokenize("Σ"), (Tokens{"σ"}));
  EXPECT_EQ(normalized("ÀÉÎÕÜ ß Ǆ"), "aeiou ß ǆ");
  // Ligatures have no canonical decomposition and stay.
  EXPECT_EQ(normalized("ﬁ"), "ﬁ");
}

TEST(Tokenizer, ControlCharactersAreRemovedAndWhitespaceUnified) {
  const WordPieceTokenizer tokenizer = make();
  EXPECT_EQ(normalized(std::string("ca\0fe", 5)), "cafe");
  EXPECT_EQ(normalized("ca\x07"
                       "f\u200Be\uFFFD\u00AD\uE000"),
            "cafe");
  EXPECT_EQ(normalized("a\tb\nc\rd\u00A0e\u3000f\u2028g"), "a b c d e f g");
  // Vertical tab, form feed and U+0085 are controls (Cc) before whitespace: removed.
  EXPECT_EQ(normalized("a\x0B"
                       "b\x0C"
                       "c\u0085"
                       "d"),
            "abcd");
  EXPECT_EQ(tokenizer.tokenize(" \t cafe \r\n naive "), (Tokens{"cafe", "naive"}));
  EXPECT_EQ(tokenizer.tokenize(""), Tokens{});
}

TEST(Tokenizer, NormalizerOptionsLikeBertNormalizer) {
  NormalizerOptions cased;
  cased.lowercase = false;  // strip_accents follows lowercase when unset
  EXPECT_EQ(normalized("Café", cased), "Café");
  cased.strip_accents = true;
  EXPECT_EQ(normalized("Café", cased), "Cafe");
  NormalizerOptions raw;
  raw.clean_text = raw.handle_chinese_chars = raw.lowercase = false;
  EXPECT_EQ(normalized("a\x07中", raw), "a\x07中");
}

TEST(Tokenizer, SpecialTokensInTheTextAreMatched) {
  const WordPieceTokenizer tokenizer = make();
  EXPECT_EQ(tokenizer.tokenize("a [SEP]a[MASK]"), (Tokens{"a", "[SEP]", "a", "[MASK]"}));
  EXPECT_EQ(tokenizer.encode("[CLS]", kNoTruncation), (std::vector<int32_t>{2, 2, 3}));
  // Matching is case-sensitive and exact.
  EXPECT_EQ(tokenizer.tokenize("[sep]"), (Tokens{"[UNK]", "[UNK]", "[UNK]"}));
}

TEST(Tokenizer, EncodeAddsClsAndSepAndTruncates) {
  const WordPieceTokenizer tokenizer = make();
  // want 9, [CLS] 2, [SEP] 3.
  EXPECT_EQ(tokenizer.encode("want want want", kNoTruncation),
            (std::vector<int32_t>{2, 9, 9, 9, 3}));
  EXPECT_EQ(tokenizer.encode("want want want", 4), (std::vector<int32_t>{2, 9, 9, 3}));
  EXPECT_EQ(tokenizer.encode("want want want", 5), (std::vector<int32_t>{2, 9, 9, 9, 3}));
  EXPECT_EQ(tokenizer.encode("want want want", 2), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(tokenizer.encode("", 8), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(tokenizer.encode("want want want", 2, false), (std::vector<int32_t>{9, 9}));
  EXPECT_EQ(tokenizer.encode("want", 0, false), std::vector<int32_t>{});
  // Truncation may cut a word between its pieces, as HF does.
  EXPECT_EQ(tokenizer.encode("wanted", 3), (std::vector<int32_t>{2, 9, 3}));
  EXPECT_NE(message_of<InvalidArgument>([&] { tokenizer.encode("want", 1); }).find("max_len is 1"),
            std::string::npos);
}

TEST(Tokenizer, InvalidUtf8NamesTheByteOffset) {
  const WordPieceTokenizer tokenizer = make();
  const auto message = [&](std::string_view text) {
    return message_of<InvalidArgument>([&] { tokenizer.encode(text, kNoTruncation); });
  };
  EXPECT_NE(message("ab\xFF"
                    "cd")
                .find("text: invalid UTF-8 at byte offset 2"),
            std::string::npos);
  EXPECT_NE(message("caf\xC3").find("byte offset 3"), std::string::npos);           // truncated
  EXPECT_NE(message("a\xC0\x80").find("byte offset 1"), std::string::npos);         // overlong
  EXPECT_NE(message("\xE0\x80\xAF").find("byte offset 0"), std::string::npos);      // overlong
  EXPECT_NE(message("é\xED\xA0\x80").find("byte offset 2"), std::string::npos);     // surrogate
  EXPECT_NE(message("\xF4\x90\x80\x80").find("byte offset 0"), std::string::npos);  // > U+10FFFF
  EXPECT_NE(message("ok\x80").find("byte offset 2"), std::string::npos);  // stray continuation
  EXPECT_NE(message("\xE4\xB8"
                    "a")
                .find("byte offset 0"),
            std::string::npos);
  EXPECT_EQ(tokenizer.tokenize("\xF0\x9F\x98\x80"), (Tokens{"[UNK]"}));  // valid 4-byte
}

TEST(Tokenizer, BatchIsPaddedToTheLongest) {
  const WordPieceTokenizer tokenizer = make();
  const std::vector<std::string> texts = {"want", "want want want", ""};
  const BatchEncoding batch = tokenizer.encode_batch(texts, kNoTruncation);
  EXPECT_EQ(batch.batch_size, 3u);
  EXPECT_EQ(batch.seq_len, 5u);
  EXPECT_EQ(batch.ids, (std::vector<int32_t>{2, 9, 3, 0, 0, 2, 9, 9, 9, 3, 2, 3, 0, 0, 0}));
  EXPECT_EQ(batch.attention_mask,
            (std::vector<int32_t>{1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(tokenizer.encode_batch(texts, 4).seq_len, 4u);
  EXPECT_EQ(tokenizer.encode_batch({}, 4).ids.size(), 0u);
  const std::vector<std::string> bad = {"fine", "bad\xFE"};
  EXPECT_NE(message_of<InvalidArgument>([&] {
              tokenizer.encode_batch(bad, 8);
            }).find("texts[1]: invalid UTF-8 at byte offset 3"),
            std::string::npos);
}

TEST(Vocab, IdsAreLineNumbers) {
  const Vocab vocab = Vocab::parse("[PAD]\r\n[UNK]\n[CLS]  \n[SEP]\nhello", "v");
  EXPECT_EQ(vocab.size(), 5);
  EXPECT_EQ(vocab.find("hello"), 4);
  EXPECT_EQ(vocab.find("[CLS]"), 2);  // trailing whitespace and "\r" are not part of tokens
  EXPECT_EQ(vocab.find("nope"), std::nullopt);
  EXPECT_EQ(vocab.token(4), "hello");
  EXPECT_EQ(vocab.pad_id(), 0);
  EXPECT_EQ(vocab.unk_id(), 1);
  EXPECT_EQ(vocab.sep_id(), 3);
  EXPECT_NE(message_of<InvalidArgument>([&] { vocab.token(5); }).find("out of range"),
            std::string::npos);
}

TEST(Vocab, MalformedFilesNameFileAndLine) {
  const auto message = [](std::string_view text) {
    return message_of<FormatError>([&] { Vocab::parse(text, "vocab.txt"); });
  };
  EXPECT_NE(message("[PAD]\n[UNK]\n[CLS]\n[SEP]\na\nb\na\n")
                .find("vocab.txt:7: duplicate token \"a\", first on line 5"),
            std::string::npos);
  EXPECT_NE(message("[PAD]\n[UNK]\nbad\xFF\n").find("vocab.txt:3: invalid UTF-8 at byte offset 3"),
            std::string::npos);
  EXPECT_NE(message("[PAD]\n\n[UNK]\n").find("vocab.txt:2: empty token"), std::string::npos);
  EXPECT_NE(message("[PAD]\n[CLS]\n[SEP]\n").find("vocab.txt: required special token [UNK]"),
            std::string::npos);
  EXPECT_NE(message("").find("required special token"), std::string::npos);
}

TEST(Vocab, LoadsFilesAndReportsUnreadableOnes) {
  test::TempDir dir;
  const std::string path = dir.file("vocab.txt");
  std::ofstream(path) << kVocab;
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(path);
  EXPECT_EQ(tokenizer.vocab().size(), 30);
  EXPECT_NE(message_of<IoError>([&] { Vocab::load(dir.file("missing.txt")); }).find("missing.txt"),
            std::string::npos);
  std::ofstream(dir.file("bad.txt")) << "[PAD]\n[PAD]\n";
  EXPECT_NE(message_of<FormatError>([&] { Vocab::load(dir.file("bad.txt")); }).find("bad.txt:2:"),
            std::string::npos);
}

}  // namespace
}  // namespace dfss::tokenizer
