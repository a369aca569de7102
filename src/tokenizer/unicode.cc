#include "tokenizer/unicode.h"

#include <algorithm>
#include <cstdio>
#include <span>

#include "tokenizer/unicode_tables.h"

namespace dfss::tokenizer::detail {
namespace {

// The entry of `table` whose range may hold `c`: the last one starting at or before it.
template <typename Entry>
const Entry* find_entry(std::span<const Entry> table, char32_t c) {
  auto it = std::upper_bound(table.begin(), table.end(), c,
                             [](char32_t code, const Entry& entry) { return code < entry.first; });
  return it == table.begin() ? nullptr : &*(it - 1);
}

bool in_ranges(std::span<const CodeRange> table, char32_t c) {
  const CodeRange* range = find_entry(table, c);
  return range != nullptr && c <= range->last;
}

// Hangul syllables decompose algorithmically (Unicode chapter 3.12) and are not in the
// decomposition table.
constexpr char32_t kHangulFirst = 0xAC00, kHangulCount = 11172;
constexpr char32_t kLeadFirst = 0x1100, kVowelFirst = 0x1161, kTrailFirst = 0x11A7;
constexpr char32_t kVowelCount = 21, kTrailCount = 28;

std::string hex_byte(unsigned char byte) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02X", byte);
  return text;
}

}  // namespace

// ASCII, the bulk of most text, is answered without a table search.
bool is_control(char32_t c) {
  return c < 0x80 ? c < 0x20 || c == 0x7F : in_ranges(kControlRanges, c);
}
bool is_whitespace(char32_t c) {
  return c < 0x80 ? c == ' ' || (c >= '\t' && c <= '\r') : in_ranges(kWhitespaceRanges, c);
}
bool is_punctuation(char32_t c) {
  if (c < 0x80) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    return c > ' ' && c < 0x7F && !alnum;
  }
  return in_ranges(kPunctuationRanges, c);
}
bool is_nonspacing_mark(char32_t c) {
  return c >= 0x300 && in_ranges(kNonspacingMarkRanges, c);
}

bool is_cjk_ideograph(char32_t c) {
  // HF's list: the CJK Unified Ideographs block and Extensions A to E, and the two CJK
  // Compatibility Ideographs blocks. 0x2B820..0x2B91F (the start of Extension E) is
  // missing from it, and it is kept so.
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

uint8_t combining_class(char32_t c) {
  if (c < 0x300) return 0;  // fast path: nothing below U+0300 combines
  const CombiningClassRange* range = find_entry(kCombiningClassRanges, c);
  return range != nullptr && c <= range->last ? range->combining_class : 0;
}

void append_decomposition(char32_t c, std::u32string& out) {
  if (c < 0xC0) {  // fast path: nothing below U+00C0 decomposes
    out += c;
    return;
  }
  if (c >= kHangulFirst && c < kHangulFirst + kHangulCount) {
    const char32_t index = c - kHangulFirst;
    out += kLeadFirst + index / (kVowelCount * kTrailCount);
    out += kVowelFirst + index % (kVowelCount * kTrailCount) / kTrailCount;
    if (index % kTrailCount != 0) out += kTrailFirst + index % kTrailCount;
    return;
  }
  auto it = std::lower_bound(kDecompositions.begin(), kDecompositions.end(), c,
                             [](const Decomposition& d, char32_t code) { return d.code < code; });
  if (it == kDecompositions.end() || it->code != c) {
    out += c;
    return;
  }
  const auto chars = kDecompositionChars.subspan(it->offset, it->length);
  out.append(chars.begin(), chars.end());
}

void append_lowercase(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out += (c >= 'A' && c <= 'Z') ? c + 32 : c;
    return;
  }
  auto expansion =
      std::lower_bound(kLowercaseExpansions.begin(), kLowercaseExpansions.end(), c,
                       [](const LowercaseExpansion& e, char32_t code) { return e.code < code; });
  if (expansion != kLowercaseExpansions.end() && expansion->code == c) {
    out.append(expansion->chars, expansion->length);
    return;
  }
  const LowercaseRun* run = find_entry(kLowercaseRuns, c);
  if (run != nullptr && c <= run->last && (c - run->first) % run->stride == 0) {
    out += static_cast<char32_t>(static_cast<int32_t>(c) + run->delta);
  } else {
    out += c;
  }
}

std::optional<Utf8Error> decode_utf8(std::string_view text, std::u32string& out) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  out.reserve(out.size() + size);
  size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      out += lead;
      ++i;
      continue;
    }
    // Length and the allowed range of the second byte, which rules out overlong forms,
    // surrogates and code points above U+10FFFF (RFC 3629, table 3-7 of Unicode).
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return Utf8Error{i, "byte " + hex_byte(lead) + " cannot start a character"};
    }
    char32_t c = lead & (0xFF >> (length + 1));
    for (size_t k = 1; k < length; ++k) {
      if (i + k >= size) {
        return Utf8Error{i, "the text ends inside a " + std::to_string(length) + "-byte sequence"};
      }
      const unsigned char next = bytes[i + k];
      if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xBF)) {
        return Utf8Error{i, "lead byte " + hex_byte(lead) + " is followed by invalid byte " +
                                hex_byte(next) + " (overlong, surrogate, beyond U+10FFFF or " +
                                "not a continuation)"};
      }
      c = (c << 6) | (next & 0x3F);
    }
    out += c;
    i += length;
  }
  return std::nullopt;
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace dfss::tokenizer::detail
