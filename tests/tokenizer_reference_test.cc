// The tokenizer against Hugging Face `tokenizers` on all-MiniLM-L6-v2's real vocabulary:
// ids of tests/data/tokenizer/minilm_cases.jsonl (real English text and hard cases, ids
// from HF), and, when scripts/verify-tokenizer.py provides it, HF's normalization and
// pre-tokenization of every code point. The vocab is not in the repository (its licence
// is unclear): the tests skip without it; `verify-tokenizer.py --fetch` gets it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfss/tokenizer.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace dfss::tokenizer {
namespace {

const std::filesystem::path kRepo = std::filesystem::path(__FILE__).parent_path().parent_path();

// The real vocabulary, or nullopt when it has not been fetched.
std::optional<std::string> vocab_path() {
  const char* env = std::getenv("DFSS_TOKENIZER_VOCAB");
  const std::filesystem::path path =
      env != nullptr ? std::filesystem::path(env) : kRepo / "models/all-MiniLM-L6-v2/vocab.txt";
  if (!std::filesystem::exists(path)) return std::nullopt;
  return path.string();
}

struct Case {
  std::string text;
  size_t max_len = kNoTruncation;
  bool special = true;
  std::vector<int32_t> ids;
};

std::vector<Case> read_cases() {
  std::ifstream file(kRepo / "tests/data/tokenizer/minilm_cases.jsonl");
  EXPECT_TRUE(file.is_open());
  std::vector<Case> cases;
  std::string line;
  while (std::getline(file, line)) {
    const nlohmann::json json = nlohmann::json::parse(line);
    Case c;
    c.text = json.at("text").get<std::string>();
    if (json.contains("max_len")) c.max_len = json.at("max_len").get<size_t>();
    c.special = json.value("special", true);
    c.ids = json.at("ids").get<std::vector<int32_t>>();
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) {
    if (!out.empty()) out += ' ';
    out += std::to_string(id);
  }
  return out;
}

TEST(TokenizerReference, IdsMatchHuggingFace) {
  const std::optional<std::string> vocab = vocab_path();
  if (!vocab) GTEST_SKIP() << "no vocab.txt: run scripts/verify-tokenizer.py --fetch";
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(*vocab);
  const std::vector<Case> cases = read_cases();
  ASSERT_GE(cases.size(), 2000u);
  size_t matched = 0, reported = 0;
  for (const Case& c : cases) {
    const std::vector<int32_t> ids = tokenizer.encode(c.text, c.max_len, c.special);
    if (ids == c.ids) {
      ++matched;
    } else if (++reported <= 10) {
      ADD_FAILURE() << "text " << nlohmann::json(c.text).dump() << "\n  HF:   " << join(c.ids)
                    << "\n  dfss: " << join(ids);
    }
  }
  std::printf("match: %zu of %zu cases (%.2f%%)\n", matched, cases.size(),
              100.0 * matched / cases.size());
  EXPECT_EQ(matched, cases.size());
}

TEST(TokenizerReference, BatchRowsEqualSingleEncodings) {
  const std::optional<std::string> vocab = vocab_path();
  if (!vocab) GTEST_SKIP() << "no vocab.txt: run scripts/verify-tokenizer.py --fetch";
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(*vocab);
  std::vector<std::string> texts;
  for (const Case& c : read_cases()) {
    if (texts.size() < 64) texts.push_back(c.text);
  }
  const BatchEncoding batch = tokenizer.encode_batch(texts, 128);
  ASSERT_EQ(batch.batch_size, texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> row = tokenizer.encode(texts[i], 128);
    const size_t length = row.size();
    row.resize(batch.seq_len, tokenizer.vocab().pad_id());
    EXPECT_TRUE(std::equal(row.begin(), row.end(), batch.ids.begin() + i * batch.seq_len));
    for (size_t j = 0; j < batch.seq_len; ++j) {
      EXPECT_EQ(batch.attention_mask[i * batch.seq_len + j], j < length ? 1 : 0);
    }
  }
}

// "41.E9.62": code points in hex, as the verify script writes them.
std::string hexes(std::u32string_view text) {
  std::string out;
  char buffer[16];
  for (char32_t c : text) {
    std::snprintf(buffer, sizeof buffer, "%s%X", out.empty() ? "" : ".", static_cast<unsigned>(c));
    out += buffer;
  }
  return out;
}

TEST(TokenizerReference, EveryCodePointMatchesHuggingFace) {
  const char* path = std::getenv("DFSS_TOKENIZER_CODE_POINTS");
  if (path == nullptr) GTEST_SKIP() << "DFSS_TOKENIZER_CODE_POINTS unset: see verify-tokenizer.py";
  std::ifstream file(path);
  ASSERT_TRUE(file.is_open()) << path;
  size_t total = 0, matched = 0;
  std::string line;
  std::vector<std::u32string_view> words;
  while (std::getline(file, line)) {
    ++total;
    const size_t tab = line.find('\t');
    const auto code = static_cast<char32_t>(std::stoul(line.substr(0, tab), nullptr, 16));
    const std::u32string normalized = detail::normalize(std::u32string{U'A', code, U'b'}, {});
    words.clear();
    detail::pre_tokenize(normalized, words);
    std::string mine = line.substr(0, tab) + "\t" + hexes(normalized) + "\t";
    for (size_t i = 0; i < words.size(); ++i) {
      if (i > 0) mine += ' ';
      mine += hexes(words[i]);
    }
    if (mine == line) {
      ++matched;
    } else if (total - matched <= 10) {
      ADD_FAILURE() << "HF:   " << line << "\ndfss: " << mine;
    }
  }
  std::printf("match: %zu of %zu code points\n", matched, total);
  EXPECT_EQ(total, 0x110000u - 0x800u);  // every code point but the surrogates
  EXPECT_EQ(matched, total);
}

}  // namespace
}  // namespace dfss::tokenizer
