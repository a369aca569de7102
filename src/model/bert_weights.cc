#include "model/bert_weights.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "dfss/errors.h"
#include "model/finite_check.h"
#include "model/memory_guard.h"

namespace dfss::model {
namespace {

// Tensors of a BertModel checkpoint that sentence embeddings do not read: the pooler (the
// [CLS] head of next-sentence prediction) and the position-id buffer older transformers saved.
constexpr std::array<std::string_view, 3> kNotUsedForEmbeddings = {
    "pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids"};

// 'name' for messages, as the safetensors reader quotes names, but with control
// characters escaped JSON-style and bounded, since names in the header are untrusted.
std::string quote_tensor_name(std::string_view name) {
  constexpr size_t kMax = 200;
  const nlohmann::json text(std::string(name.substr(0, kMax)));
  const std::string escaped = text.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out = "'" + escaped.substr(1, escaped.size() - 2) + "'";
  if (name.size() > kMax) out += "... (" + std::to_string(name.size()) + " bytes)";
  return out;
}

// "[3, 17]": the C-order index of flat element `flat` of a tensor of `shape`.
std::string index_string(size_t flat, const std::vector<int64_t>& shape) {
  std::vector<size_t> index(shape.size());
  for (size_t axis = shape.size(); axis-- > 0;) {
    const auto size = static_cast<size_t>(shape[axis]);
    index[axis] = flat % size;
    flat /= size;
  }
  std::string out = "[";
  for (size_t axis = 0; axis < index.size(); ++axis) {
    if (axis > 0) out += ", ";
    out += std::to_string(index[axis]);
  }
  return out + "]";
}

std::string value_string(float value) {
  if (std::isnan(value)) return "NaN";
  return value > 0 ? "inf" : "-inf";
}

// Hands out each tensor as float32 of an exact shape. The checking pass only validates
// (present, shape, dtype) and records the names, so that a checkpoint that does not match
// its config is refused before anything is copied or scanned; the loading pass views or
// copies the data and refuses non-finite values.
class TensorSource {
 public:
  enum class Pass { check, load };

  TensorSource(BertWeights& out, std::string prefix, Pass pass)
      : out_(out), prefix_(std::move(prefix)), pass_(pass) {}

  std::span<const float> get(const std::string& name, std::vector<int64_t> shape) {
    const std::string full = prefix_ + name;
    const io::TensorInfo& info = out_.file.get(full, shape);  // precise missing/shape errors
    if (pass_ == Pass::check) {
      check_dtype(info);
      used_.insert(full);
      return {};
    }
    const std::span<const float> values = read(info, shape);
    if (const std::optional<size_t> bad = first_non_finite(values)) {
      throw FormatError(
          at(full) + "element " + index_string(*bad, shape) + " is " + value_string(values[*bad]) +
          "; expected finite weights (one NaN or infinity makes every embedding NaN)");
    }
    return values;
  }

  LinearWeights linear(const std::string& name, int64_t out_features, int64_t in_features) {
    return {get(name + ".weight", {out_features, in_features}),
            get(name + ".bias", {out_features})};
  }

  LayerNormWeights layer_norm(const std::string& name, int64_t hidden) {
    return {get(name + ".weight", {hidden}), get(name + ".bias", {hidden})};
  }

  // After the checking pass: every tensor of the file under the prefix must have been
  // asked for, or be one embeddings do not need; otherwise the config describes another
  // model than the file holds (e.g. fewer layers) and would compute wrong embeddings.
  void refuse_unused_tensors() const {
    for (const io::TensorInfo& tensor : out_.file.tensors()) {  // by name: the first is named
      if (used_.contains(tensor.name)) continue;
      // Outside the "bert." prefix of a task model lie its heads (classifier, ...).
      if (!std::string_view(tensor.name).starts_with(prefix_)) continue;
      const std::string_view rest = std::string_view(tensor.name).substr(prefix_.size());
      if (std::ranges::find(kNotUsedForEmbeddings, rest) != kNotUsedForEmbeddings.end()) continue;
      throw FormatError(out_.file.name() + ": tensor " + quote_tensor_name(tensor.name) +
                        " is not part of the model config.json describes (num_hidden_layers " +
                        std::to_string(out_.config.num_hidden_layers) +
                        "); expected config.json to describe every tensor of the checkpoint");
    }
  }

 private:
  std::string at(const std::string& full) const {
    return out_.file.name() + ": tensor '" + full + "': ";
  }

  void check_dtype(const io::TensorInfo& info) const {
    using io::SafetensorsDType;
    if (info.dtype != SafetensorsDType::f32 && info.dtype != SafetensorsDType::f16 &&
        info.dtype != SafetensorsDType::bf16) {
      throw FormatError(at(info.name) + "dtype is " + io::safetensors_dtype_name(info.dtype) +
                        "; expected F32, F16 or BF16 to read as float32");
    }
  }

  std::span<const float> read(const io::TensorInfo& info, const std::vector<int64_t>& shape) {
    const bool aligned = reinterpret_cast<uintptr_t>(info.bytes.data()) % alignof(float) == 0;
    if (info.dtype == io::SafetensorsDType::f32 && aligned) {
      return out_.file.view_f32(info.name, shape);
    }
    try {
      out_.copies.push_back(out_.file.read_f32(info.name, shape));
    } catch (const std::bad_alloc&) {
      throw OutOfMemory("out of memory while converting tensor '" + info.name + "' of " +
                        out_.file.name() + " to float32 (" +
                        megabytes(static_cast<size_t>(info.numel()) * sizeof(float)) + ")");
    }
    return out_.copies.back();
  }

  BertWeights& out_;
  std::string prefix_;
  Pass pass_;
  std::unordered_set<std::string> used_;  // names asked for in the checking pass
};

// Points `out`'s spans at the tensors of `out.config`'s model, as `source` hands them out.
void assemble(BertWeights& out, TensorSource& source) {
  const BertConfig& config = out.config;
  const int64_t hidden = config.hidden_size;
  out.word_embeddings =
      source.get("embeddings.word_embeddings.weight", {config.vocab_size, hidden});
  out.position_embeddings =
      source.get("embeddings.position_embeddings.weight", {config.max_position_embeddings, hidden});
  out.token_type_embeddings =
      source.get("embeddings.token_type_embeddings.weight", {config.type_vocab_size, hidden});
  out.embeddings_norm = source.layer_norm("embeddings.LayerNorm", hidden);

  // Not reserved up front: num_hidden_layers comes from config.json, and the vector grows
  // only as far as the file really has layers.
  out.layers.clear();
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
}

}  // namespace

BertWeights load_bert_weights(io::SafetensorsFile file, const BertConfig& config) {
  BertWeights out(config, std::move(file));
  // BertForSequenceClassification and friends store the encoder under "bert.".
  const bool prefixed = out.file.find("embeddings.word_embeddings.weight") == nullptr &&
                        out.file.find("bert.embeddings.word_embeddings.weight") != nullptr;
  const std::string prefix = prefixed ? "bert." : "";

  TensorSource check(out, prefix, TensorSource::Pass::check);
  assemble(out, check);
  check.refuse_unused_tensors();

  TensorSource load(out, prefix, TensorSource::Pass::load);
  assemble(out, load);
  return out;
}

BertWeights load_bert_model(const std::string& dir) {
  const std::filesystem::path root(dir);
  const BertConfig config = load_bert_config((root / "config.json").string());
  return load_bert_weights(io::SafetensorsFile::open((root / "model.safetensors").string()),
                           config);
}

}  // namespace dfss::model
