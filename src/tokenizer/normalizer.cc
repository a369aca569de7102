#include "tokenizer/normalizer.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace dfss::tokenizer::detail {
namespace {

// Step 1: drop NUL, U+FFFD and control characters (tab, LF and CR excepted: they count
// as whitespace), then turn every whitespace character into ' '; step 2: CJK padding.
std::u32string clean_and_pad(std::u32string_view text, const NormalizerOptions& options) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (options.clean_text) {
      const bool tab_or_newline = c == '\t' || c == '\n' || c == '\r';
      if (c == 0 || c == 0xFFFD || (!tab_or_newline && is_control(c))) continue;
      if (tab_or_newline || is_whitespace(c)) c = ' ';
    }
    if (options.handle_chinese_chars && is_cjk_ideograph(c)) {
      out += ' ';
      out += c;
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// NFD: full canonical decomposition, then canonical ordering (a stable sort by combining
// class of every run of characters whose class is not 0); then nonspacing marks dropped.
std::u32string strip_accents(std::u32string_view text) {
  std::u32string decomposed;
  decomposed.reserve(text.size());
  for (char32_t c : text) append_decomposition(c, decomposed);
  for (auto it = decomposed.begin(); it != decomposed.end();) {
    if (combining_class(*it) == 0) {
      ++it;
      continue;
    }
    auto run_end =
        std::find_if(it, decomposed.end(), [](char32_t c) { return combining_class(c) == 0; });
    std::stable_sort(it, run_end, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    it = run_end;
  }
  std::erase_if(decomposed, is_nonspacing_mark);
  return decomposed;
}

}  // namespace

std::u32string normalize(std::u32string_view text, const NormalizerOptions& options) {
  std::u32string out = clean_and_pad(text, options);
  if (options.strip_accents.value_or(options.lowercase)) out = strip_accents(out);
  if (options.lowercase) {
    std::u32string lower;
    lower.reserve(out.size());
    for (char32_t c : out) append_lowercase(c, lower);
    out = std::move(lower);
  }
  return out;
}

void pre_tokenize(std::u32string_view text, std::vector<std::u32string_view>& words) {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool space = is_whitespace(text[i]);
    if (!space && !is_punctuation(text[i])) continue;
    if (i > start) words.push_back(text.substr(start, i - start));
    if (!space) words.push_back(text.substr(i, 1));
    start = i + 1;
  }
  if (text.size() > start) words.push_back(text.substr(start));
}

}  // namespace dfss::tokenizer::detail
