// A small random BERT checkpoint written to a temp dir (config.json, model.safetensors,
// vocab.txt), for tests of the encoder and the embed commands that must not depend on a
// downloaded model.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "safetensors_image.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace dfss::test {

struct TinyBertShape {
  int64_t hidden = 32, heads = 2, layers = 2, intermediate = 64, positions = 40;
};

class TinyBert {
 public:
  explicit TinyBert(TinyBertShape shape = {}, uint64_t seed = 7) : shape_(shape) {
    const std::vector<std::string> words = {
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on",   "mat", "a",
        "dog",   "ran",   "fast",  "##s",   ".",      ",",   "big", "red", "ball", "and", "house"};
    std::string vocab;
    for (const std::string& word : words) vocab += word + "\n";
    write_file(dir_.file("vocab.txt"), vocab);
    vocab_size_ = static_cast<int64_t>(words.size());

    config_ = {{"hidden_act", "gelu"},
               {"hidden_size", shape.hidden},
               {"intermediate_size", shape.intermediate},
               {"layer_norm_eps", 1e-12},
               {"max_position_embeddings", shape.positions},
               {"num_attention_heads", shape.heads},
               {"num_hidden_layers", shape.layers},
               {"type_vocab_size", 2},
               {"vocab_size", vocab_size_}};
    write_file(dir_.file("config.json"), config_.dump());

    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    const auto add = [&](const std::string& name, std::vector<int64_t> dims, float offset = 0) {
      int64_t n = 1;
      for (int64_t d : dims) n *= d;
      std::vector<float> values(static_cast<size_t>(n));
      for (float& v : values) v = offset + normal(rng);
      tensors_[name] = {std::move(dims), std::move(values)};
    };
    const int64_t h = shape.hidden, f = shape.intermediate;
    add("embeddings.word_embeddings.weight", {vocab_size_, h});
    add("embeddings.position_embeddings.weight", {shape.positions, h});
    add("embeddings.token_type_embeddings.weight", {2, h});
    add("embeddings.LayerNorm.weight", {h}, 1.0f);
    add("embeddings.LayerNorm.bias", {h});
    for (int64_t l = 0; l < shape.layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      for (const char* name : {"attention.self.query", "attention.self.key", "attention.self.value",
                               "attention.output.dense"}) {
        add(p + name + ".weight", {h, h});
        add(p + name + ".bias", {h});
      }
      add(p + "attention.output.LayerNorm.weight", {h}, 1.0f);
      add(p + "attention.output.LayerNorm.bias", {h});
      add(p + "intermediate.dense.weight", {f, h});
      add(p + "intermediate.dense.bias", {f});
      add(p + "output.dense.weight", {h, f});
      add(p + "output.dense.bias", {h});
      add(p + "output.LayerNorm.weight", {h}, 1.0f);
      add(p + "output.LayerNorm.bias", {h});
    }
    write_file(dir_.file("model.safetensors"), safetensors_image());
  }

  std::string dir() const { return dir_.path().string(); }
  const TinyBertShape& shape() const { return shape_; }
  int64_t vocab_size() const { return vocab_size_; }
  const std::vector<float>& tensor(const std::string& name) const {
    return tensors_.at(name).second;
  }

  // Rewrites config.json with `changes` merged in (the weights stay as they are).
  void change_config(const nlohmann::json& changes) {
    config_.update(changes);
    write_file(dir_.file("config.json"), config_.dump());
  }

  // Replaces tensor `name` (same size) and rewrites model.safetensors.
  void set_tensor(const std::string& name, const std::vector<float>& values) {
    std::vector<float>& tensor = tensors_.at(name).second;
    if (tensor.size() != values.size()) throw std::runtime_error("set_tensor: size of " + name);
    tensor = values;
    write_file(dir_.file("model.safetensors"), safetensors_image());
  }

  // Sets element `index` (flat, C order) of tensor `name` and rewrites model.safetensors.
  void set_weight(const std::string& name, size_t index, float value) {
    tensors_.at(name).second.at(index) = value;
    write_file(dir_.file("model.safetensors"), safetensors_image());
  }

 private:
  // F32 tensors in name order; header padded to 8 bytes so the data stays aligned.
  std::string safetensors_image() const {
    nlohmann::json header = nlohmann::json::object();
    std::string data;
    for (const auto& [name, tensor] : tensors_) {
      const size_t begin = data.size();
      data.append(reinterpret_cast<const char*>(tensor.second.data()), tensor.second.size() * 4);
      header[name] = {
          {"dtype", "F32"}, {"shape", tensor.first}, {"data_offsets", {begin, data.size()}}};
    }
    return test::safetensors_image(header, data);
  }

  TinyBertShape shape_;
  TempDir dir_;
  nlohmann::json config_;
  int64_t vocab_size_ = 0;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors_;
};

}  // namespace dfss::test
