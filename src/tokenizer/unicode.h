// Character properties and transforms of Hugging Face's BERT normalizer and
// pre-tokenizer, and strict UTF-8 conversion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dfss::tokenizer::detail {

// General category Cc, Cf or Co (Unicode 8.0, as HF's unicode_categories crate).
bool is_control(char32_t c);
// Unicode's White_Space property (Rust's char::is_whitespace).
bool is_whitespace(char32_t c);
// ASCII punctuation and symbols, or general category P* (Unicode 8.0).
bool is_punctuation(char32_t c);
// General category Mn (Unicode 8.0).
bool is_nonspacing_mark(char32_t c);
// The CJK ideograph blocks HF's BertNormalizer pads with spaces.
bool is_cjk_ideograph(char32_t c);
uint8_t combining_class(char32_t c);

// Appends the full canonical decomposition of `c` (itself if it has none), without the
// canonical reordering that NFD applies to the whole string afterwards.
void append_decomposition(char32_t c, std::u32string& out);
// Appends the lowercase of `c` (Rust's char::to_lowercase: no context, so no final sigma).
void append_lowercase(char32_t c, std::u32string& out);

// An invalid UTF-8 sequence: where it starts and what is wrong.
struct Utf8Error {
  size_t offset;
  std::string reason;
};

// Decodes strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF)
// into `out`; returns the first error instead if there is one.
std::optional<Utf8Error> decode_utf8(std::string_view text, std::u32string& out);
void append_utf8(char32_t c, std::string& out);

}  // namespace dfss::tokenizer::detail
