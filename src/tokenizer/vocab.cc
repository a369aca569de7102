// vocab.txt loading and validation.
#include <string>

#include "dfss/errors.h"
#include "dfss/tokenizer.h"
#include "io/file_bytes.h"
#include "tokenizer/unicode.h"

namespace dfss::tokenizer {
namespace {

// HF trims every trailing White_Space character of a line (Rust's str::trim_end).
std::string_view trim_end(std::string_view line) {
  std::u32string chars;
  // Decodes the last character each round; the caller has checked the line is UTF-8.
  while (!line.empty()) {
    size_t start = line.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(line[start]) & 0xC0) == 0x80) --start;
    chars.clear();
    if (detail::decode_utf8(line.substr(start), chars) || chars.size() != 1 ||
        !detail::is_whitespace(chars[0])) {
      break;
    }
    line.remove_suffix(line.size() - start);
  }
  return line;
}

}  // namespace

Vocab Vocab::load(const std::string& path) {
  const std::vector<uint8_t> bytes = io::read_regular_file(path, "a WordPiece vocab.txt");
  return parse({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, path);
}

Vocab Vocab::parse(std::string_view text, const std::string& name) {
  Vocab vocab;
  size_t line_start = 0;
  // Like Rust's lines(): "\n" ends a line, and a final line needs no "\n".
  while (line_start < text.size()) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    const std::string where = name + ":" + std::to_string(vocab.tokens_.size() + 1) + ": ";
    std::u32string chars;
    const std::string_view raw = text.substr(line_start, line_end - line_start);
    if (const auto error = detail::decode_utf8(raw, chars)) {
      throw FormatError(where + "invalid UTF-8 at byte offset " + std::to_string(error->offset) +
                        " of the line: " + error->reason);
    }
    const std::string_view token = trim_end(raw);
    if (token.empty()) throw FormatError(where + "empty token; expected one token per line");
    if (vocab.tokens_.size() >= static_cast<size_t>(INT32_MAX)) {
      throw FormatError(where + "more than 2^31 - 1 tokens");
    }
    const auto id = static_cast<int32_t>(vocab.tokens_.size());
    const auto [it, inserted] = vocab.ids_.emplace(std::string(token), id);
    if (!inserted) {
      throw FormatError(where + "duplicate token \"" + std::string(token) + "\", first on line " +
                        std::to_string(it->second + 1));
    }
    vocab.tokens_.emplace_back(token);
    line_start = line_end + 1;
  }
  const auto require = [&](const char* token) {
    const std::optional<int32_t> id = vocab.find(token);
    if (!id) {
      throw FormatError(name + ": required special token " + token + " is missing (" +
                        std::to_string(vocab.tokens_.size()) + " tokens read)");
    }
    return *id;
  };
  vocab.unk_id_ = require("[UNK]");
  vocab.cls_id_ = require("[CLS]");
  vocab.sep_id_ = require("[SEP]");
  vocab.pad_id_ = require("[PAD]");
  return vocab;
}

std::optional<int32_t> Vocab::find(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

const std::string& Vocab::token(int32_t id) const {
  if (id < 0 || id >= size()) {
    throw InvalidArgument("token id " + std::to_string(id) + " is out of range [0, " +
                          std::to_string(size()) + ")");
  }
  return tokens_[static_cast<size_t>(id)];
}

}  // namespace dfss::tokenizer
