// The hyper-parameters of a BERT encoder, from the config.json that Hugging Face
// checkpoints ship next to their weights (e.g. all-MiniLM-L6-v2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dfss::model {

struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;  // width of the feed-forward layer
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;  // segment ids; 2 for BERT
  double layer_norm_eps = 0;

  // Width of one attention head (hidden_size is a multiple of num_attention_heads).
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// Upper bound of every size in a config: far above any real BERT, low enough that the
// products the loader and model form (e.g. vocab_size * hidden_size) cannot overflow.
inline constexpr int64_t kMaxBertDim = int64_t{1} << 24;

// dfss::attention's limit on the head dimension d (include/dfss/attention.h).
inline constexpr int64_t kMaxBertHeadDim = 256;

// Parses and validates config.json text; `name` (the file) starts every error message.
// Each of the seven sizes must be an integer in [1, kMaxBertDim], layer_norm_eps a
// positive finite number, hidden_size a multiple of num_attention_heads with heads of at
// most kMaxBertHeadDim dimensions, no key repeated within an object, and hidden_act
// "gelu" (the erf GELU this project implements); position_embedding_type, if given, must
// be "absolute". Other keys (dropout, architectures, ...) are ignored. Throws FormatError
// "<name>: \"<key>\" ..." naming the key at fault.
BertConfig parse_bert_config(std::string_view json_text, const std::string& name);

// parse_bert_config() of the file at `path`; throws IoError if it cannot be read.
BertConfig load_bert_config(const std::string& path);

}  // namespace dfss::model
