// WordPiece tokenization for BERT models, identical to Hugging Face `tokenizers` with
// BertNormalizer + BertPreTokenizer + WordPiece + "[CLS] $A [SEP]" (the tokenizer.json of
// e.g. all-MiniLM-L6-v2), and so to transformers' BertTokenizerFast.
//
// Pipeline, as HF runs it:
//  1. Special tokens ([PAD] [UNK] [CLS] [SEP] [MASK], those in the vocabulary) written in
//     the text are matched first, on the raw text, and become their own ids.
//  2. Each remaining piece is normalized: NUL, U+FFFD and control characters removed,
//     whitespace turned into ' ', spaces put around CJK ideographs, accents stripped (NFD,
//     then nonspacing marks dropped), lowercased.
//  3. It is split on whitespace, and every punctuation character becomes its own word.
//  4. Each word becomes the longest vocabulary tokens, left to right, later ones written
//     with a "##" prefix; a word that cannot be covered so, or is longer than 100
//     characters, becomes the single token [UNK].
// Unicode versions follow HF's (see scripts/gen-unicode-tables.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dfss::tokenizer {

// A WordPiece vocabulary (vocab.txt): one token per line, id = zero-based line number.
class Vocab {
 public:
  // Reads and validates the file at `path`: UTF-8, no empty or duplicate token, and
  // [UNK] [CLS] [SEP] [PAD] present. Trailing whitespace of a line is ignored, as HF
  // does ("\r" of CRLF files included). Throws IoError if the file cannot be read and
  // FormatError "<path>:<line>: ..." if it is malformed.
  static Vocab load(const std::string& path);
  // The same from file contents; `name` starts every error message.
  static Vocab parse(std::string_view text, const std::string& name);

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  // Id of `token`, if it is in the vocabulary.
  std::optional<int32_t> find(std::string_view token) const;
  // Text of `id`; throws InvalidArgument if it is not in [0, size()).
  const std::string& token(int32_t id) const;

  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t pad_id() const { return pad_id_; }

 private:
  // Lets find() look a std::string_view up without building a std::string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
  int32_t unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, pad_id_ = 0;
};

// HF BertNormalizer's switches. The defaults are those of uncased models; cased ones
// (bert-base-cased) set lowercase = false.
struct NormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool lowercase = true;
  // Unset: strip accents exactly when lowercasing, as HF does.
  std::optional<bool> strip_accents;
};

// encode()'s max_len for "never truncate".
inline constexpr size_t kNoTruncation = std::numeric_limits<size_t>::max();
// Words longer than this many code points (after normalization) become [UNK].
inline constexpr size_t kMaxInputCharsPerWord = 100;

// Several texts padded to the longest, ready for a BERT model.
struct BatchEncoding {
  size_t batch_size = 0;
  size_t seq_len = 0;                   // tokens in the longest text
  std::vector<int32_t> ids;             // [batch_size, seq_len], C order, [PAD]-padded
  std::vector<int32_t> attention_mask;  // [batch_size, seq_len]: 1 for tokens, 0 for padding
};

class WordPieceTokenizer {
 public:
  explicit WordPieceTokenizer(Vocab vocab, NormalizerOptions options = {});
  // Vocab::load(path), then the above.
  static WordPieceTokenizer from_vocab_file(const std::string& path,
                                            NormalizerOptions options = {});

  const Vocab& vocab() const { return vocab_; }

  // The token texts of `text`, without [CLS] and [SEP]. Throws InvalidArgument naming the
  // byte offset if `text` is not valid UTF-8.
  std::vector<std::string> tokenize(std::string_view text) const;

  // Token ids: [CLS] tokens [SEP] (or the tokens alone). With more than `max_len` ids the
  // tokens are cut at the end so that the result, [SEP] included, has exactly `max_len`.
  // Throws InvalidArgument for invalid UTF-8 (naming the byte offset) and for a max_len
  // below 2 with special tokens (HF would silently not truncate).
  std::vector<int32_t> encode(std::string_view text, size_t max_len,
                              bool add_special_tokens = true) const;

  // encode() of every text, right-padded with [PAD] to the longest. An error names the
  // index of the text at fault.
  BatchEncoding encode_batch(std::span<const std::string> texts, size_t max_len,
                             bool add_special_tokens = true) const;

 private:
  // encode(), with `name` starting error messages.
  std::vector<int32_t> encode_as(std::string_view text, const std::string& name, size_t max_len,
                                 bool add_special_tokens) const;
  // Appends the ids of `text` (no [CLS]/[SEP]); `name` starts error messages.
  void append_ids(std::string_view text, const std::string& name, std::vector<int32_t>& ids) const;
  // Appends the ids of one word (code points) to `ids`.
  void append_word_ids(std::u32string_view word, std::vector<int32_t>& ids) const;

  Vocab vocab_;
  NormalizerOptions options_;
  std::vector<std::u32string> special_tokens_;  // texts matched in the raw input
  std::vector<int32_t> special_ids_;
};

}  // namespace dfss::tokenizer
