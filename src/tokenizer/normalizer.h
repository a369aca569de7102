// HF's BertNormalizer and BertPreTokenizer, on code points.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dfss/tokenizer.h"

namespace dfss::tokenizer::detail {

// BertNormalizer: clean text, pad CJK ideographs, strip accents, lowercase, in that order.
std::u32string normalize(std::u32string_view text, const NormalizerOptions& options);

// BertPreTokenizer: appends to `words` the pieces of `text` between whitespace, with
// every punctuation character a piece of its own.
void pre_tokenize(std::u32string_view text, std::vector<std::u32string_view>& words);

}  // namespace dfss::tokenizer::detail
