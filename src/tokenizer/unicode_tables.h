// Unicode data for the WordPiece tokenizer, defined in unicode_tables.cc, which
// scripts/gen-unicode-tables.py generates (the script explains the Unicode versions).
// Every table is sorted by code point and its ranges never overlap, for binary search.
#pragma once

#include <cstdint>
#include <span>

namespace dfss::tokenizer::detail {

// Code points first..last, inclusive.
struct CodeRange {
  char32_t first;
  char32_t last;
};

struct CombiningClassRange {
  char32_t first;
  char32_t last;
  uint8_t combining_class;
};

// `code` decomposes canonically (and fully) into kDecompositionChars[offset, offset + length).
struct Decomposition {
  char32_t code;
  uint16_t offset;
  uint8_t length;
};

// Code points first, first + stride, ... up to last lowercase to code + delta; those in
// between (stride 2) have no lowercase mapping.
struct LowercaseRun {
  char32_t first;
  char32_t last;
  int32_t delta;
  uint8_t stride;
};

// A code point whose lowercase is several code points (U+0130 -> "i\u0307").
struct LowercaseExpansion {
  char32_t code;
  char32_t chars[3];
  uint8_t length;
};

extern const std::span<const CodeRange> kControlRanges;
extern const std::span<const CodeRange> kNonspacingMarkRanges;
extern const std::span<const CodeRange> kPunctuationRanges;
extern const std::span<const CodeRange> kWhitespaceRanges;
extern const std::span<const CombiningClassRange> kCombiningClassRanges;
extern const std::span<const Decomposition> kDecompositions;
extern const std::span<const char32_t> kDecompositionChars;
extern const std::span<const LowercaseRun> kLowercaseRuns;
extern const std::span<const LowercaseExpansion> kLowercaseExpansions;

}  // namespace dfss::tokenizer::detail
