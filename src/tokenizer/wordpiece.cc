// Special-token matching, WordPiece, [CLS]/[SEP], truncation and batching.
#include <algorithm>
#include <utility>

#include "dfss/errors.h"
#include "dfss/tokenizer.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace dfss::tokenizer {
namespace {

// HF's BertWordPieceTokenizer registers these as special tokens when the vocabulary has
// them; [MASK] is optional.
constexpr const char* kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
constexpr std::string_view kContinuationPrefix = "##";

std::u32string to_utf32(std::string_view ascii) {
  return {ascii.begin(), ascii.end()};
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(Vocab vocab, NormalizerOptions options)
    : vocab_(std::move(vocab)), options_(options) {
  for (const char* token : kSpecialTokens) {
    if (const std::optional<int32_t> id = vocab_.find(token)) {
      special_tokens_.push_back(to_utf32(token));
      special_ids_.push_back(*id);
    }
  }
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path,
                                                       NormalizerOptions options) {
  return WordPieceTokenizer(Vocab::load(path), options);
}

void WordPieceTokenizer::append_word_ids(std::u32string_view word,
                                         std::vector<int32_t>& ids) const {
  if (word.size() > kMaxInputCharsPerWord) {
    ids.push_back(vocab_.unk_id());
    return;
  }
  // UTF-8 of the word with the byte offset of every code point (and of its end), so that
  // candidates are substrings rather than fresh conversions.
  std::string utf8;
  std::vector<size_t> offsets;
  offsets.reserve(word.size() + 1);
  for (char32_t c : word) {
    offsets.push_back(utf8.size());
    detail::append_utf8(c, utf8);
  }
  offsets.push_back(utf8.size());

  const size_t first_new = ids.size();
  std::string candidate;  // "##" + piece, for pieces after the first
  for (size_t start = 0; start < word.size();) {
    // Greedy longest match: the longest piece starting at `start` that is in the vocab.
    size_t end = word.size();
    std::optional<int32_t> id;
    for (; end > start; --end) {
      const std::string_view piece =
          std::string_view(utf8).substr(offsets[start], offsets[end] - offsets[start]);
      if (start == 0) {
        id = vocab_.find(piece);
      } else {
        candidate.assign(kContinuationPrefix);
        candidate += piece;
        id = vocab_.find(candidate);
      }
      if (id) break;
    }
    if (!id) {
      // One uncoverable position makes the whole word [UNK], pieces found so far included.
      ids.resize(first_new);
      ids.push_back(vocab_.unk_id());
      return;
    }
    ids.push_back(*id);
    start = end;
  }
}

void WordPieceTokenizer::append_ids(std::string_view text, const std::string& name,
                                    std::vector<int32_t>& ids) const {
  std::u32string chars;
  if (const auto error = detail::decode_utf8(text, chars)) {
    throw InvalidArgument(name + ": invalid UTF-8 at byte offset " + std::to_string(error->offset) +
                          ": " + error->reason);
  }
  const std::u32string_view all(chars);
  std::vector<std::u32string_view> words;
  // Normalizes, splits and looks up the text between two special tokens.
  const auto append_segment = [&](std::u32string_view segment) {
    if (segment.empty()) return;
    const std::u32string normalized = detail::normalize(segment, options_);
    words.clear();
    detail::pre_tokenize(normalized, words);
    for (std::u32string_view word : words) append_word_ids(word, ids);
  };
  // Special tokens are matched in the raw text, leftmost first, the longest at a position.
  size_t segment_start = 0;
  for (size_t i = 0; i < all.size();) {
    size_t best = special_tokens_.size();
    if (all[i] == '[') {
      for (size_t k = 0; k < special_tokens_.size(); ++k) {
        if (all.substr(i).starts_with(special_tokens_[k]) &&
            (best == special_tokens_.size() ||
             special_tokens_[k].size() > special_tokens_[best].size())) {
          best = k;
        }
      }
    }
    if (best == special_tokens_.size()) {
      ++i;
      continue;
    }
    append_segment(all.substr(segment_start, i - segment_start));
    ids.push_back(special_ids_[best]);
    i += special_tokens_[best].size();
    segment_start = i;
  }
  append_segment(all.substr(segment_start));
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<int32_t> ids;
  append_ids(text, "text", ids);
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) tokens.push_back(vocab_.token(id));
  return tokens;
}

std::vector<int32_t> WordPieceTokenizer::encode_as(std::string_view text, const std::string& name,
                                                   size_t max_len, bool add_special_tokens) const {
  if (add_special_tokens && max_len < 2) {
    throw InvalidArgument("max_len is " + std::to_string(max_len) +
                          "; expected at least 2 to hold [CLS] and [SEP]");
  }
  std::vector<int32_t> ids;
  if (add_special_tokens) ids.push_back(vocab_.cls_id());
  append_ids(text, name, ids);
  // Truncation keeps the start of the text and, with special tokens, the closing [SEP].
  const size_t closing = add_special_tokens ? 1 : 0;
  if (max_len != kNoTruncation && ids.size() + closing > max_len) ids.resize(max_len - closing);
  if (add_special_tokens) ids.push_back(vocab_.sep_id());
  return ids;
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, size_t max_len,
                                                bool add_special_tokens) const {
  return encode_as(text, "text", max_len, add_special_tokens);
}

BatchEncoding WordPieceTokenizer::encode_batch(std::span<const std::string> texts, size_t max_len,
                                               bool add_special_tokens) const {
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  BatchEncoding batch;
  for (size_t i = 0; i < texts.size(); ++i) {
    rows.push_back(
        encode_as(texts[i], "texts[" + std::to_string(i) + "]", max_len, add_special_tokens));
    batch.seq_len = std::max(batch.seq_len, rows.back().size());
  }
  batch.batch_size = rows.size();
  batch.ids.assign(batch.batch_size * batch.seq_len, vocab_.pad_id());
  batch.attention_mask.assign(batch.batch_size * batch.seq_len, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy(rows[i].begin(), rows[i].end(), batch.ids.begin() + i * batch.seq_len);
    std::fill_n(batch.attention_mask.begin() + i * batch.seq_len, rows[i].size(), 1);
  }
  return batch;
}

}  // namespace dfss::tokenizer
