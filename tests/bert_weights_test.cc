// BERT config.json validation and weight loading: error messages on small hand-written
// configs, a tiny synthetic checkpoint built here, and the real all-MiniLM-L6-v2 when
// scripts/fetch-model.sh has put it in models/ (skipped otherwise).
#include "model/bert_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dfss/errors.h"
#include "model/bert_config.h"
#include "safetensors_image.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace dfss::model {
namespace {

using test::message_of;
using test::starts_with;
using test::TempDir;
using test::write_file;

const std::filesystem::path kRepo = std::filesystem::path(__FILE__).parent_path().parent_path();

// A valid config of a tiny model: 1 layer, hidden 8, 2 heads.
nlohmann::json tiny_config() {
  return {{"architectures", {"BertModel"}},
          {"hidden_act", "gelu"},
          {"hidden_size", 8},
          {"intermediate_size", 16},
          {"layer_norm_eps", 1e-12},
          {"max_position_embeddings", 6},
          {"num_attention_heads", 2},
          {"num_hidden_layers", 1},
          {"type_vocab_size", 2},
          {"vocab_size", 10},
          {"position_embedding_type", "absolute"}};
}

// The FormatError message of loading `text` written as config.json to a temp dir, with
// the path replaced by "config.json" so that tests can compare whole messages.
std::string config_error(const std::string& text) {
  TempDir dir;
  const std::string path = dir.file("config.json");
  write_file(path, text);
  std::string message = message_of<FormatError>([&] { load_bert_config(path); });
  if (message.rfind(path, 0) == 0) message.replace(0, path.size(), "config.json");
  return message;
}

std::string config_error_with(const std::string& key, const nlohmann::json& value) {
  nlohmann::json config = tiny_config();
  config[key] = value;
  return config_error(config.dump());
}

std::string config_error_without(const std::string& key) {
  nlohmann::json config = tiny_config();
  config.erase(key);
  return config_error(config.dump());
}

TEST(BertConfig, ParsesEveryField) {
  const BertConfig config = parse_bert_config(tiny_config().dump(), "config.json");
  EXPECT_EQ(config.vocab_size, 10);
  EXPECT_EQ(config.hidden_size, 8);
  EXPECT_EQ(config.num_hidden_layers, 1);
  EXPECT_EQ(config.num_attention_heads, 2);
  EXPECT_EQ(config.intermediate_size, 16);
  EXPECT_EQ(config.max_position_embeddings, 6);
  EXPECT_EQ(config.type_vocab_size, 2);
  EXPECT_EQ(config.layer_norm_eps, 1e-12);
  EXPECT_EQ(config.head_dim(), 4);
}

TEST(BertConfig, PositionEmbeddingTypeIsOptional) {
  nlohmann::json config = tiny_config();
  config.erase("position_embedding_type");
  EXPECT_EQ(parse_bert_config(config.dump(), "c").hidden_size, 8);
}

TEST(BertConfig, MissingKeysAreNamed) {
  for (const char* key :
       {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
        "intermediate_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps"}) {
    EXPECT_EQ(config_error_without(key), std::string("config.json: \"") + key + "\" is missing");
  }
  EXPECT_EQ(config_error_without("hidden_act"),
            "config.json: \"hidden_act\" is missing; expected \"gelu\"");
}

TEST(BertConfig, SizesMustBePositiveIntegers) {
  const std::string expected = "; expected an integer in [1, 16777216]";
  EXPECT_EQ(config_error_with("hidden_size", 0), "config.json: \"hidden_size\" is 0" + expected);
  EXPECT_EQ(config_error_with("num_hidden_layers", -1),
            "config.json: \"num_hidden_layers\" is -1" + expected);
  EXPECT_EQ(config_error_with("vocab_size", 30522.0),
            "config.json: \"vocab_size\" is 30522.0" + expected);
  EXPECT_EQ(config_error_with("intermediate_size", "1536"),
            "config.json: \"intermediate_size\" is the string \"1536\"" + expected);
  EXPECT_EQ(config_error_with("type_vocab_size", true),
            "config.json: \"type_vocab_size\" is true" + expected);
  EXPECT_EQ(config_error_with("max_position_embeddings", 16777217),
            "config.json: \"max_position_embeddings\" is 16777217" + expected);
  EXPECT_EQ(config_error_with("num_attention_heads", nullptr),
            "config.json: \"num_attention_heads\" is null" + expected);
}

TEST(BertConfig, HiddenSizeMustSplitIntoHeads) {
  EXPECT_EQ(config_error_with("num_attention_heads", 3),
            "config.json: \"hidden_size\" 8 is not a multiple of \"num_attention_heads\" 3");
}

TEST(BertConfig, HeadsWiderThanTheAttentionSupportsAreAConfigError) {
  // hidden 384 in one head would be a head dimension of 384; dfss::attention takes d <= 256,
  // and the error must name config.json and the field, not surface later in attention.
  nlohmann::json config = tiny_config();
  config["hidden_size"] = 384;
  config["num_attention_heads"] = 1;
  EXPECT_EQ(config_error(config.dump()),
            "config.json: \"num_attention_heads\" 1 gives heads of 384 dimensions "
            "(\"hidden_size\" 384 / heads); expected at most 256, the largest head dimension "
            "dfss::attention supports");
  config["hidden_size"] = 256;  // the largest head accepted
  EXPECT_EQ(parse_bert_config(config.dump(), "c").head_dim(), 256);
}

TEST(BertConfig, DuplicateKeysAreRefused) {
  // nlohmann keeps the last copy and other readers the first: the file is ambiguous.
  std::string text = tiny_config().dump();
  text.insert(1, "\"hidden_size\": 16, ");
  EXPECT_EQ(config_error(text),
            "config.json: the key \"hidden_size\" appears twice in one object; expected unique "
            "keys");
  // In nested objects too, while the same key in two different objects is fine.
  nlohmann::json nested = tiny_config();
  nested["id2label"] = {{"0", "a"}};
  nested["label2id"] = {{"a", 0}};
  text = nested.dump();
  EXPECT_EQ(parse_bert_config(text, "c").hidden_size, 8);
  text.insert(text.find("{\"0\"") + 1, "\"0\": \"b\", ");
  EXPECT_EQ(config_error(text),
            "config.json: the key \"0\" appears twice in one object; expected unique keys");
}

TEST(BertConfig, LayerNormEpsMustBePositiveAndFinite) {
  const std::string expected = "; expected a positive finite number";
  EXPECT_EQ(config_error_with("layer_norm_eps", 0),
            "config.json: \"layer_norm_eps\" is 0" + expected);
  EXPECT_EQ(config_error_with("layer_norm_eps", -1e-5),
            "config.json: \"layer_norm_eps\" is -1e-05" + expected);
  EXPECT_EQ(config_error_with("layer_norm_eps", "1e-12"),
            "config.json: \"layer_norm_eps\" is the string \"1e-12\"" + expected);
}

TEST(BertConfig, OnlyGeluAndAbsolutePositionsAreAccepted) {
  EXPECT_EQ(config_error_with("hidden_act", "relu"),
            "config.json: \"hidden_act\" is the string \"relu\"; expected \"gelu\" (the only one "
            "implemented)");
  EXPECT_EQ(config_error_with("hidden_act", "gelu_new"),
            "config.json: \"hidden_act\" is the string \"gelu_new\"; expected \"gelu\" (the only "
            "one implemented)");
  EXPECT_EQ(config_error_with("position_embedding_type", "relative_key"),
            "config.json: \"position_embedding_type\" is the string \"relative_key\"; expected "
            "\"absolute\" (the only one implemented)");
}

TEST(BertConfig, LongStringsAreCutWithoutBreakingTheMessage) {
  // "x" and 40 two-byte characters: the 64-byte cut falls inside the 32nd (a fuzzer
  // finding: serializing the cut string threw instead of reporting the error).
  std::string value = "x";
  for (int i = 0; i < 40; ++i) value += "\u00e9";  // é, 2 bytes in UTF-8
  const std::string message = config_error_with("hidden_act", value);
  EXPECT_TRUE(starts_with(message, "config.json: \"hidden_act\" is the string \"x\u00e9"))
      << message;
  EXPECT_NE(message.find("\ufffd\"; expected \"gelu\""), std::string::npos) << message;
}

TEST(BertConfig, MalformedFiles) {
  EXPECT_EQ(config_error("[1, 2]"), "config.json: is [1,2]; expected a JSON object");
  EXPECT_EQ(config_error("{\"hidden_size\": 8,").rfind("config.json: not valid JSON: ", 0), 0u);
  EXPECT_EQ(config_error("").rfind("config.json: not valid JSON: ", 0), 0u);
  TempDir dir;
  const std::string missing = dir.file("absent.json");
  EXPECT_NE(message_of<IoError>([&] { load_bert_config(missing); }).find(missing),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------
// A synthetic checkpoint

struct FakeTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16" or "I32"
  std::vector<int64_t> shape;
  // Element `poke_index` gets `poke_value` instead of its fake value (none if negative).
  int64_t poke_index = -1;
  float poke_value = 0;
};

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Element i of the tensor at position t of the list: distinct per tensor, so a test can
// tell which tensor a span views. Exact in bfloat16 too (t < 128).
float fake_value(size_t t, int64_t i) {
  return static_cast<float>(t) + (i == 0 ? 0.5f : 0.0f);
}

// A .safetensors image of `tensors`, data in list order. The header is padded to a
// multiple of 8 bytes, as the official writer does, so F32 data stays 4-byte aligned
// (every tensor here has a byte size that is a multiple of 4).
std::string safetensors_image(const std::vector<FakeTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const FakeTensor& tensor = tensors[t];
    const size_t begin = data.size();
    for (int64_t i = 0; i < numel(tensor.shape); ++i) {
      const float value = i == tensor.poke_index ? tensor.poke_value : fake_value(t, i);
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      if (tensor.dtype == "BF16") {  // the top half of the float: exact for these values
        data.push_back(static_cast<char>((bits >> 16) & 0xFF));
        data.push_back(static_cast<char>(bits >> 24));
      } else {
        data.append(reinterpret_cast<const char*>(&bits), 4);
      }
    }
    header[tensor.name] = {
        {"dtype", tensor.dtype}, {"shape", tensor.shape}, {"data_offsets", {begin, data.size()}}};
  }
  return test::safetensors_image(header, data);
}

// Every tensor of tiny_config()'s model, as BertModel names them, all F32 but the
// embeddings' LayerNorm bias (BF16, to exercise the widening copy), plus a pooler that
// the loader must ignore. With `layers` > 1, the tensors of a deeper model.
std::vector<FakeTensor> tiny_tensors(const std::string& prefix = "", int layers = 1) {
  std::vector<FakeTensor> out = {
      {"embeddings.word_embeddings.weight", "F32", {10, 8}},
      {"embeddings.position_embeddings.weight", "F32", {6, 8}},
      {"embeddings.token_type_embeddings.weight", "F32", {2, 8}},
      {"embeddings.LayerNorm.weight", "F32", {8}},
      {"embeddings.LayerNorm.bias", "BF16", {8}},
  };
  for (int layer = 0; layer < layers; ++layer) {
    const std::string l = "encoder.layer." + std::to_string(layer) + ".";
    for (const char* name : {"attention.self.query", "attention.self.key", "attention.self.value",
                             "attention.output.dense"}) {
      out.push_back({l + name + ".weight", "F32", {8, 8}});
      out.push_back({l + name + ".bias", "F32", {8}});
    }
    out.push_back({l + "attention.output.LayerNorm.weight", "F32", {8}});
    out.push_back({l + "attention.output.LayerNorm.bias", "F32", {8}});
    out.push_back({l + "intermediate.dense.weight", "F32", {16, 8}});
    out.push_back({l + "intermediate.dense.bias", "F32", {16}});
    out.push_back({l + "output.dense.weight", "F32", {8, 16}});
    out.push_back({l + "output.dense.bias", "F32", {8}});
    out.push_back({l + "output.LayerNorm.weight", "F32", {8}});
    out.push_back({l + "output.LayerNorm.bias", "F32", {8}});
  }
  out.push_back({"pooler.dense.weight", "F32", {8, 8}});
  for (FakeTensor& tensor : out) tensor.name = prefix + tensor.name;
  return out;
}

// Position of `name` in tiny_tensors(), i.e. the integer part of its fake values.
float index_of(const std::string& name) {
  const std::vector<FakeTensor> tensors = tiny_tensors();
  for (size_t t = 0; t < tensors.size(); ++t) {
    if (tensors[t].name == name) return static_cast<float>(t);
  }
  ADD_FAILURE() << name << " is not a tiny tensor";
  return -1;
}

// `span` has `size` elements and views the fake data of tensor `name`.
void expect_tensor(std::span<const float> span, const std::string& name, int64_t size) {
  ASSERT_EQ(static_cast<int64_t>(span.size()), size) << name;
  EXPECT_EQ(span[0], index_of(name) + 0.5f) << name;
  EXPECT_EQ(span[size - 1], index_of(name)) << name;
}

// Checks every tensor of a model loaded from tiny_tensors().
void expect_tiny_model(const BertWeights& w) {
  EXPECT_EQ(w.config.hidden_size, 8);
  expect_tensor(w.word_embeddings, "embeddings.word_embeddings.weight", 80);
  expect_tensor(w.position_embeddings, "embeddings.position_embeddings.weight", 48);
  expect_tensor(w.token_type_embeddings, "embeddings.token_type_embeddings.weight", 16);
  expect_tensor(w.embeddings_norm.weight, "embeddings.LayerNorm.weight", 8);
  expect_tensor(w.embeddings_norm.bias, "embeddings.LayerNorm.bias", 8);
  ASSERT_EQ(w.layers.size(), 1u);
  const BertLayerWeights& layer = w.layers[0];
  const std::string l = "encoder.layer.0.";
  const std::pair<const LinearWeights*, const char*> linears[] = {
      {&layer.query, "attention.self.query"},
      {&layer.key, "attention.self.key"},
      {&layer.value, "attention.self.value"},
      {&layer.attention_output, "attention.output.dense"}};
  for (const auto& [linear, name] : linears) {
    expect_tensor(linear->weight, l + name + ".weight", 64);
    expect_tensor(linear->bias, l + name + ".bias", 8);
  }
  expect_tensor(layer.attention_norm.weight, l + "attention.output.LayerNorm.weight", 8);
  expect_tensor(layer.attention_norm.bias, l + "attention.output.LayerNorm.bias", 8);
  expect_tensor(layer.intermediate.weight, l + "intermediate.dense.weight", 128);
  expect_tensor(layer.intermediate.bias, l + "intermediate.dense.bias", 16);
  expect_tensor(layer.output.weight, l + "output.dense.weight", 128);
  expect_tensor(layer.output.bias, l + "output.dense.bias", 8);
  expect_tensor(layer.output_norm.weight, l + "output.LayerNorm.weight", 8);
  expect_tensor(layer.output_norm.bias, l + "output.LayerNorm.bias", 8);
}

// A temp dir holding config.json (tiny_config() with `changes`) and model.safetensors.
class TinyModel {
 public:
  explicit TinyModel(const std::vector<FakeTensor>& tensors,
                     const nlohmann::json& changes = nlohmann::json::object()) {
    nlohmann::json config = tiny_config();
    config.update(changes);
    write_file(dir_.file("config.json"), config.dump());
    write_file(weights_path(), safetensors_image(tensors));
  }
  std::string dir() const { return dir_.path().string(); }
  std::string weights_path() const { return dir_.file("model.safetensors"); }
  // load_bert_model()'s FormatError message.
  std::string error() const {
    return message_of<FormatError>([&] { load_bert_model(dir()); });
  }

 private:
  TempDir dir_;
};

TEST(BertWeights, LoadsATinyModel) {
  const TinyModel model(tiny_tensors());
  const BertWeights weights = load_bert_model(model.dir());
  expect_tiny_model(weights);
  EXPECT_EQ(weights.copies.size(), 1u);  // only the BF16 tensor is copied
}

TEST(BertWeights, MovingKeepsTheViewsValid) {
  const TinyModel model(tiny_tensors());
  BertWeights first = load_bert_model(model.dir());
  const BertWeights second = std::move(first);
  expect_tiny_model(second);
}

TEST(BertWeights, AcceptsTheBertPrefixOfTaskModels) {
  const TinyModel model(tiny_tensors("bert."));
  expect_tiny_model(load_bert_model(model.dir()));
}

TEST(BertWeights, WrongShapeNamesTheTensor) {
  std::vector<FakeTensor> tensors = tiny_tensors();
  for (FakeTensor& tensor : tensors) {
    if (tensor.name == "encoder.layer.0.intermediate.dense.weight") tensor.shape = {16, 9};
  }
  const TinyModel model(tensors);
  EXPECT_EQ(model.error(), model.weights_path() +
                               ": tensor 'encoder.layer.0.intermediate.dense.weight': expected "
                               "shape [16, 8], got [16, 9]");
}

TEST(BertWeights, ConfigThatDisagreesWithTheFileNamesTheTensor) {
  const TinyModel wider(tiny_tensors(), {{"vocab_size", 11}});
  EXPECT_EQ(wider.error(), wider.weights_path() +
                               ": tensor 'embeddings.word_embeddings.weight': expected shape "
                               "[11, 8], got [10, 8]");
  const TinyModel deeper(tiny_tensors(), {{"num_hidden_layers", 2}});
  EXPECT_EQ(deeper.error().rfind(deeper.weights_path() +
                                     ": tensor 'encoder.layer.1.attention.self.query.weight': "
                                     "not found",
                                 0),
            0u)
      << deeper.error();
}

TEST(BertWeights, MissingTensorIsNamed) {
  std::vector<FakeTensor> tensors = tiny_tensors();
  std::erase_if(tensors, [](const FakeTensor& tensor) {
    return tensor.name == "encoder.layer.0.attention.self.value.bias";
  });
  const TinyModel model(tensors);
  EXPECT_EQ(model.error().rfind(model.weights_path() +
                                    ": tensor 'encoder.layer.0.attention.self.value.bias': "
                                    "not found",
                                0),
            0u)
      << model.error();
}

TEST(BertWeights, IntegerTensorIsRefusedByName) {
  std::vector<FakeTensor> tensors = tiny_tensors();
  tensors[1].dtype = "I32";  // embeddings.position_embeddings.weight
  const TinyModel model(tensors);
  const std::string message = model.error();
  EXPECT_EQ(message.rfind(model.weights_path() +
                              ": tensor 'embeddings.position_embeddings.weight': dtype is I32",
                          0),
            0u)
      << message;
}

FakeTensor& find_tensor(std::vector<FakeTensor>& tensors, const std::string& name) {
  for (FakeTensor& tensor : tensors) {
    if (tensor.name == name) return tensor;
  }
  ADD_FAILURE() << name << " is not a tiny tensor";
  return tensors.front();
}

TEST(BertWeights, FewerLayersInTheConfigThanInTheFileAreRefused) {
  // A 2-layer file read as 1 layer would run and give wrong embeddings.
  const TinyModel model(tiny_tensors("", 2));
  EXPECT_EQ(model.error(), model.weights_path() +
                               ": tensor 'encoder.layer.1.attention.output.LayerNorm.bias' is "
                               "not part of the model config.json describes (num_hidden_layers "
                               "1); expected config.json to describe every tensor of the "
                               "checkpoint");
  const TinyModel both(tiny_tensors("", 2), {{"num_hidden_layers", 2}});
  EXPECT_EQ(load_bert_model(both.dir()).layers.size(), 2u);
}

TEST(BertWeights, UnknownTensorsAreRefusedByName) {
  std::vector<FakeTensor> tensors = tiny_tensors();
  tensors.push_back({"embeddings.word_embeddings.weight.extra\n", "F32", {2}});
  const TinyModel model(tensors);
  EXPECT_EQ(model.error(),
            model.weights_path() +
                ": tensor 'embeddings.word_embeddings.weight.extra\\n' is not part of the "
                "model config.json describes (num_hidden_layers 1); expected config.json to "
                "describe every tensor of the checkpoint");
  // Under the "bert." prefix likewise, while a task model's head outside it is ignored.
  std::vector<FakeTensor> task = tiny_tensors("bert.");
  task.push_back({"classifier.weight", "F32", {2, 8}});
  expect_tiny_model(load_bert_model(TinyModel(task).dir()));
  task.push_back({"bert.encoder.layer.1.output.dense.bias", "F32", {8}});
  const TinyModel deeper_task(task);
  EXPECT_NE(deeper_task.error().find("tensor 'bert.encoder.layer.1.output.dense.bias' is not "
                                     "part of the model"),
            std::string::npos)
      << deeper_task.error();
}

TEST(BertWeights, PoolerAndPositionIdsAreAccepted) {
  std::vector<FakeTensor> tensors = tiny_tensors();
  tensors.push_back({"pooler.dense.bias", "F32", {8}});
  tensors.push_back({"embeddings.position_ids", "I32", {1, 6}});
  expect_tiny_model(load_bert_model(TinyModel(tensors).dir()));
}

TEST(BertWeights, AHugeLayerCountFailsOnTheFirstMissingLayer) {
  // The layer vector grows with the file, not with the config: 2^24 layers in config.json
  // fail at layer 1 without reserving memory for 2^24 layers first.
  const TinyModel model(tiny_tensors(), {{"num_hidden_layers", 1 << 24}});
  EXPECT_EQ(model.error().rfind(model.weights_path() +
                                    ": tensor 'encoder.layer.1.attention.self.query.weight': "
                                    "not found",
                                0),
            0u)
      << model.error();
}

TEST(BertWeights, NonFiniteWeightsAreRefusedWithTheirIndex) {
  struct Case {
    std::string tensor;
    int64_t index;
    float value;
    std::string expected;
  };
  const float inf = std::numeric_limits<float>::infinity();
  const Case cases[] = {
      {"encoder.layer.0.intermediate.dense.weight", 3 * 8 + 5, std::nanf(""), "[3, 5] is NaN"},
      {"embeddings.word_embeddings.weight", 79, inf, "[9, 7] is inf"},
      {"encoder.layer.0.output.LayerNorm.bias", 0, -inf, "[0] is -inf"},
      // BF16, widened into a copy: checked after widening.
      {"embeddings.LayerNorm.bias", 2, inf, "[2] is inf"},
  };
  for (const Case& c : cases) {
    std::vector<FakeTensor> tensors = tiny_tensors();
    FakeTensor& tensor = find_tensor(tensors, c.tensor);
    tensor.poke_index = c.index;
    tensor.poke_value = c.value;
    const TinyModel model(tensors);
    EXPECT_EQ(model.error(), model.weights_path() + ": tensor '" + c.tensor + "': element " +
                                 c.expected +
                                 "; expected finite weights (one NaN or infinity makes every "
                                 "embedding NaN)");
  }
  // The largest finite float is a weight like any other.
  std::vector<FakeTensor> tensors = tiny_tensors();
  find_tensor(tensors, "embeddings.word_embeddings.weight").poke_index = 1;
  find_tensor(tensors, "embeddings.word_embeddings.weight").poke_value =
      std::numeric_limits<float>::max();
  EXPECT_EQ(load_bert_model(TinyModel(tensors).dir()).word_embeddings[1],
            std::numeric_limits<float>::max());
}

// ---------------------------------------------------------------------------------------
// The real model

TEST(BertWeights, LoadsAllMiniLmL6V2) {
  const std::filesystem::path dir = kRepo / "models/all-MiniLM-L6-v2";
  if (!std::filesystem::exists(dir / "model.safetensors") ||
      !std::filesystem::exists(dir / "config.json")) {
    GTEST_SKIP() << "no " << dir.string() << ": run scripts/fetch-model.sh";
  }
  const BertWeights w = load_bert_model(dir.string());
  EXPECT_EQ(w.config.vocab_size, 30522);
  EXPECT_EQ(w.config.hidden_size, 384);
  EXPECT_EQ(w.config.num_hidden_layers, 6);
  EXPECT_EQ(w.config.num_attention_heads, 12);
  EXPECT_EQ(w.config.head_dim(), 32);
  EXPECT_EQ(w.config.intermediate_size, 1536);
  EXPECT_EQ(w.config.max_position_embeddings, 512);
  EXPECT_EQ(w.config.type_vocab_size, 2);
  EXPECT_EQ(w.config.layer_norm_eps, 1e-12);
  EXPECT_TRUE(w.copies.empty());  // all F32 and aligned: nothing copied

  EXPECT_EQ(w.word_embeddings.size(), 30522u * 384);
  EXPECT_EQ(w.position_embeddings.size(), 512u * 384);
  EXPECT_EQ(w.token_type_embeddings.size(), 2u * 384);
  EXPECT_EQ(w.embeddings_norm.weight.size(), 384u);
  EXPECT_EQ(w.embeddings_norm.bias.size(), 384u);
  ASSERT_EQ(w.layers.size(), 6u);
  for (const BertLayerWeights& layer : w.layers) {
    for (const LinearWeights* linear :
         {&layer.query, &layer.key, &layer.value, &layer.attention_output}) {
      EXPECT_EQ(linear->weight.size(), 384u * 384);
      EXPECT_EQ(linear->bias.size(), 384u);
    }
    EXPECT_EQ(layer.intermediate.weight.size(), 1536u * 384);
    EXPECT_EQ(layer.intermediate.bias.size(), 1536u);
    EXPECT_EQ(layer.output.weight.size(), 384u * 1536);
    EXPECT_EQ(layer.output.bias.size(), 384u);
    for (const LayerNormWeights* norm : {&layer.attention_norm, &layer.output_norm}) {
      EXPECT_EQ(norm->weight.size(), 384u);
      EXPECT_EQ(norm->bias.size(), 384u);
    }
  }
  // Values read from the file with Python's struct module (fetch-model.sh pins its sha256).
  EXPECT_EQ(w.embeddings_norm.weight[0], 0.5989283323287964f);
  EXPECT_EQ(w.word_embeddings[101 * 384], -0.01761939749121666f);  // [CLS], dimension 0
  EXPECT_EQ(w.layers[5].output_norm.bias[383], 0.06612399220466614f);
  EXPECT_EQ(w.layers[0].query.weight[1], 0.043580375611782074f);  // row 0, column 1
}

}  // namespace
}  // namespace dfss::model
