// libFuzzer target for the BERT config.json parser: any byte string must be accepted or
// rejected with a FormatError, and an accepted config must keep the documented bounds
// (every size in [1, kMaxBertDim], hidden a multiple of heads, eps positive and finite).
#include <cmath>
#include <cstdint>
#include <string_view>

#include "dfss/errors.h"
#include "model/bert_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using dfss::model::kMaxBertDim;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dfss::model::BertConfig c;
  try {
    c = dfss::model::parse_bert_config(text, "fuzz.json");
  } catch (const dfss::FormatError&) {
    return 0;
  }
  for (int64_t value : {c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
                        c.intermediate_size, c.max_position_embeddings, c.type_vocab_size}) {
    if (value < 1 || value > kMaxBertDim) __builtin_trap();
  }
  if (c.hidden_size % c.num_attention_heads != 0) __builtin_trap();
  if (!(c.layer_norm_eps > 0) || !std::isfinite(c.layer_norm_eps)) __builtin_trap();
  return 0;
}
