// libFuzzer target for the text inputs of the embedding commands: the first byte splits
// the input into a vocab.txt image and a text. The vocabulary parser must accept it or
// throw FormatError; the tokenizer (on the fuzzed vocabulary when accepted, else on a
// fixed one) must accept the text or throw InvalidArgument for invalid UTF-8, and an
// accepted text's ids must be in the vocabulary, start with [CLS], end with [SEP] and
// respect max_len. Crashes, hangs, over-reads and undefined behaviour are findings.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dfss/errors.h"
#include "dfss/tokenizer.h"

namespace {

using dfss::tokenizer::Vocab;
using dfss::tokenizer::WordPieceTokenizer;

const Vocab& fixed_vocab() {
  static const Vocab vocab = Vocab::parse(
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\nun\n##aff\n##able\na\n.\n,\n\xE4\xB8\xAD\n"
      "\xC3\xA9t\xC3\xA9\n##\xC3\xA9\nhello\n",
      "fixed");
  return vocab;
}

void check_ids(const WordPieceTokenizer& tokenizer, std::string_view text) {
  constexpr size_t kMaxLen = 48;
  std::vector<int32_t> ids;
  try {
    ids = tokenizer.encode(text, kMaxLen);
  } catch (const dfss::InvalidArgument&) {
    return;  // invalid UTF-8
  }
  const Vocab& vocab = tokenizer.vocab();
  if (ids.size() < 2 || ids.size() > kMaxLen) __builtin_trap();
  if (ids.front() != vocab.cls_id() || ids.back() != vocab.sep_id()) __builtin_trap();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab.size()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = std::min<size_t>(bytes.size(), data[0] * 4);
  const std::string_view vocab_text = bytes.substr(0, split), text = bytes.substr(split);

  std::optional<Vocab> fuzzed;
  try {
    fuzzed = Vocab::parse(vocab_text, "fuzz.vocab");
  } catch (const dfss::FormatError&) {
  }
  if (fuzzed) {
    for (int32_t id = 0; id < fuzzed->size(); ++id) {
      if (fuzzed->find(fuzzed->token(id)) != id) __builtin_trap();
    }
    check_ids(WordPieceTokenizer(*fuzzed), text);
  }
  check_ids(WordPieceTokenizer(fixed_vocab()), text);
  return 0;
}
