#include "model/bert_weights.h"

#include <cstdint>
#include <filesystem>
#include <utility>

namespace dfss::model {
namespace {

// Hands out each tensor as float32 of an exact shape, viewing or copying as needed.
class TensorSource {
 public:
  TensorSource(BertWeights& out, std::string prefix) : out_(out), prefix_(std::move(prefix)) {}

  std::span<const float> get(const std::string& name, std::vector<int64_t> shape) {
    const std::string full = prefix_ + name;
    const io::TensorInfo& info = out_.file.get(full, shape);  // precise missing/shape errors
    const bool aligned = reinterpret_cast<uintptr_t>(info.bytes.data()) % alignof(float) == 0;
    if (info.dtype == io::SafetensorsDType::f32 && aligned) return out_.file.view_f32(full, shape);
    // read_f32 widens F16/BF16 and refuses any other dtype with an error naming the tensor.
    out_.copies.push_back(out_.file.read_f32(full, shape));
    return out_.copies.back();
  }

  LinearWeights linear(const std::string& name, int64_t out_features, int64_t in_features) {
    return {get(name + ".weight", {out_features, in_features}),
            get(name + ".bias", {out_features})};
  }

  LayerNormWeights layer_norm(const std::string& name, int64_t hidden) {
    return {get(name + ".weight", {hidden}), get(name + ".bias", {hidden})};
  }

 private:
  BertWeights& out_;
  std::string prefix_;
};

}  // namespace

BertWeights load_bert_weights(io::SafetensorsFile file, const BertConfig& config) {
  BertWeights out(config, std::move(file));
  // BertForSequenceClassification and friends store the encoder under "bert.".
  const bool prefixed = out.file.find("embeddings.word_embeddings.weight") == nullptr &&
                        out.file.find("bert.embeddings.word_embeddings.weight") != nullptr;
  TensorSource source(out, prefixed ? "bert." : "");

  const int64_t hidden = config.hidden_size;
  out.word_embeddings =
      source.get("embeddings.word_embeddings.weight", {config.vocab_size, hidden});
  out.position_embeddings =
      source.get("embeddings.position_embeddings.weight", {config.max_position_embeddings, hidden});
  out.token_type_embeddings =
      source.get("embeddings.token_type_embeddings.weight", {config.type_vocab_size, hidden});
  out.embeddings_norm = source.layer_norm("embeddings.LayerNorm", hidden);

  out.layers.reserve(config.num_hidden_layers);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string layer = "encoder.layer." + std::to_string(i) + ".";
    BertLayerWeights& w = out.layers.emplace_back();
    w.query = source.linear(layer + "attention.self.query", hidden, hidden);
    w.key = source.linear(layer + "attention.self.key", hidden, hidden);
    w.value = source.linear(layer + "attention.self.value", hidden, hidden);
    w.attention_output = source.linear(layer + "attention.output.dense", hidden, hidden);
    w.attention_norm = source.layer_norm(layer + "attention.output.LayerNorm", hidden);
    w.intermediate = source.linear(layer + "intermediate.dense", config.intermediate_size, hidden);
    w.output = source.linear(layer + "output.dense", hidden, config.intermediate_size);
    w.output_norm = source.layer_norm(layer + "output.LayerNorm", hidden);
  }
  return out;
}

BertWeights load_bert_model(const std::string& dir) {
  const std::filesystem::path root(dir);
  const BertConfig config = load_bert_config((root / "config.json").string());
  return load_bert_weights(io::SafetensorsFile::open((root / "model.safetensors").string()),
                           config);
}

}  // namespace dfss::model
