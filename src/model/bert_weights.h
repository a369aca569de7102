// Every tensor of a BERT encoder (Hugging Face BertModel naming, as in all-MiniLM-L6-v2's
// model.safetensors), as float32, with shapes checked against a BertConfig.
//
// F32 tensors are zero-copy views into the file's bytes (read into memory at load, so the
// file may change afterwards); F16 and BF16 tensors (and F32 ones the file does not align)
// are widened into owned copies. Either way the spans stay valid as long as the
// BertWeights lives, moves included. Of the tensors a BertModel does not use for encoding,
// only pooler.dense.{weight,bias} and embeddings.position_ids are accepted: any other
// tensor the config does not account for is refused.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "model/bert_config.h"

namespace dfss::model {

// A PyTorch nn.Linear: y = x W^T + b, W [out_features, in_features] in C order.
struct LinearWeights {
  std::span<const float> weight;
  std::span<const float> bias;  // [out_features]
};

// gamma * (x - mean) / sqrt(var + eps) + beta over the last dimension.
struct LayerNormWeights {
  std::span<const float> weight;  // gamma [hidden]
  std::span<const float> bias;    // beta [hidden]
};

struct BertLayerWeights {
  LinearWeights query, key, value;  // [hidden, hidden]: all heads, head h in rows h*d..h*d+d
  LinearWeights attention_output;   // [hidden, hidden]
  LayerNormWeights attention_norm;  // after attention + residual
  LinearWeights intermediate;       // [intermediate, hidden], then GELU
  LinearWeights output;             // [hidden, intermediate]
  LayerNormWeights output_norm;     // after the feed-forward + residual
};

struct BertWeights {
  // The tensors are filled in by load_bert_weights(); SafetensorsFile has no empty state,
  // so the file is given up front.
  BertWeights(const BertConfig& config_in, io::SafetensorsFile file_in)
      : config(config_in), file(std::move(file_in)) {}

  BertConfig config;
  std::span<const float> word_embeddings;        // [vocab_size, hidden]
  std::span<const float> position_embeddings;    // [max_position_embeddings, hidden]
  std::span<const float> token_type_embeddings;  // [type_vocab_size, hidden]
  LayerNormWeights embeddings_norm;
  std::vector<BertLayerWeights> layers;  // num_hidden_layers

  // What the spans point into. std::vector's move keeps its heap buffers, and a moved
  // SafetensorsFile keeps its bytes, so moving a BertWeights keeps the spans valid.
  io::SafetensorsFile file;
  std::vector<std::vector<float>> copies;
};

// Takes every tensor of `config`'s model from `file`. Names are those of BertModel
// ("embeddings.word_embeddings.weight", "encoder.layer.3.attention.self.query.bias", ...);
// a checkpoint of a task model that prefixes them all with "bert." is accepted too (its
// tensors outside "bert.", the task's head, are ignored). Everything is validated before
// anything is copied: throws FormatError naming the file and tensor if one is missing, has
// another shape than the config implies, is not F32, F16 or BF16, or is in the file but not
// in the config's model (e.g. config.json has fewer layers than the file). Then, while
// loading, throws FormatError naming the tensor and the index of its first NaN or infinite
// value, and OutOfMemory if a widened copy cannot be allocated.
BertWeights load_bert_weights(io::SafetensorsFile file, const BertConfig& config);

// load_bert_config(dir/config.json), then load_bert_weights(dir/model.safetensors).
BertWeights load_bert_model(const std::string& dir);

}  // namespace dfss::model
