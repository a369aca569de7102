#include "model/bert_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "dfss/errors.h"
#include "io/file_bytes.h"

namespace dfss::model {
namespace {

using json = nlohmann::json;

// Serializes `value`; invalid UTF-8 (a string cut inside a character) becomes U+FFFD
// instead of an exception.
std::string dump_lenient(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// "the string \"relu\"", "-1", "null": the offending value, short, for messages.
std::string describe(const json& value) {
  if (value.is_string()) {
    return "the string " + dump_lenient(json(value.get<std::string>().substr(0, 64)));
  }
  const std::string text = dump_lenient(value);
  return text.size() > 64 ? text.substr(0, 64) + "..." : text;
}

// "<file>: \"<key>\" "
std::string at(const std::string& file, const char* key) {
  return file + ": \"" + key + "\" ";
}

// A SAX pass that stops at the first key repeated within one object. nlohmann keeps the
// last copy silently, and other readers may keep the first, so such a file is ambiguous.
class DuplicateKeyFinder : public nlohmann::json_sax<json> {
 public:
  std::optional<std::string> duplicate;

  bool start_object(std::size_t) override {
    open_objects_.emplace_back();
    return true;
  }
  bool end_object() override {
    open_objects_.pop_back();
    return true;
  }
  bool key(string_t& key) override {
    if (open_objects_.back().insert(key).second) return true;
    duplicate = key;
    return false;  // stops the parse
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;  // json::parse, run first, has already reported malformed text
  }

 private:
  std::vector<std::unordered_set<std::string>> open_objects_;
};

void refuse_duplicate_keys(std::string_view json_text, const std::string& file) {
  DuplicateKeyFinder finder;
  json::sax_parse(json_text.begin(), json_text.end(), &finder);
  if (finder.duplicate) {
    throw FormatError(file + ": the key " + dump_lenient(json(*finder.duplicate)) +
                      " appears twice in one object; expected unique keys");
  }
}

const json& require(const json& root, const std::string& file, const char* key) {
  const auto it = root.find(key);
  if (it == root.end()) throw FormatError(at(file, key) + "is missing");
  return *it;
}

int64_t read_size(const json& root, const std::string& file, const char* key) {
  const json& value = require(root, file, key);
  // nlohmann parses every non-negative integer literal as unsigned; 384.0 is a float and
  // refused, since no writer produces one for a size.
  const bool in_range = value.is_number_unsigned() && value.get<uint64_t>() >= 1 &&
                        value.get<uint64_t>() <= static_cast<uint64_t>(kMaxBertDim);
  if (!in_range) {
    throw FormatError(at(file, key) + "is " + describe(value) + "; expected an integer in [1, " +
                      std::to_string(kMaxBertDim) + "]");
  }
  return value.get<int64_t>();
}

void require_string(const json& root, const std::string& file, const char* key,
                    const char* expected, bool optional) {
  const auto it = root.find(key);
  if (it == root.end()) {
    if (optional) return;
    throw FormatError(at(file, key) + "is missing; expected \"" + expected + "\"");
  }
  if (!it->is_string() || it->get<std::string>() != expected) {
    throw FormatError(at(file, key) + "is " + describe(*it) + "; expected \"" + expected +
                      "\" (the only one implemented)");
  }
}

}  // namespace

BertConfig parse_bert_config(std::string_view json_text, const std::string& name) {
  json root;
  try {
    root = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    throw FormatError(name + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) {
    throw FormatError(name + ": is " + describe(root) + "; expected a JSON object");
  }
  refuse_duplicate_keys(json_text, name);
  BertConfig config;
  config.vocab_size = read_size(root, name, "vocab_size");
  config.hidden_size = read_size(root, name, "hidden_size");
  config.num_hidden_layers = read_size(root, name, "num_hidden_layers");
  config.num_attention_heads = read_size(root, name, "num_attention_heads");
  config.intermediate_size = read_size(root, name, "intermediate_size");
  config.max_position_embeddings = read_size(root, name, "max_position_embeddings");
  config.type_vocab_size = read_size(root, name, "type_vocab_size");
  if (config.hidden_size % config.num_attention_heads != 0) {
    throw FormatError(at(name, "hidden_size") + std::to_string(config.hidden_size) +
                      " is not a multiple of \"num_attention_heads\" " +
                      std::to_string(config.num_attention_heads));
  }
  if (config.head_dim() > kMaxBertHeadDim) {
    throw FormatError(at(name, "num_attention_heads") + std::to_string(config.num_attention_heads) +
                      " gives heads of " + std::to_string(config.head_dim()) +
                      " dimensions (\"hidden_size\" " + std::to_string(config.hidden_size) +
                      " / heads); expected at most " + std::to_string(kMaxBertHeadDim) +
                      ", the largest head dimension dfss::attention supports");
  }

  const json& eps = require(root, name, "layer_norm_eps");
  if (!eps.is_number() || !std::isfinite(eps.get<double>()) || eps.get<double>() <= 0) {
    throw FormatError(at(name, "layer_norm_eps") + "is " + describe(eps) +
                      "; expected a positive finite number");
  }
  config.layer_norm_eps = eps.get<double>();

  // Other activations or relative position embeddings would load fine and then compute
  // something else than the checkpoint was trained for, so they are refused here.
  require_string(root, name, "hidden_act", "gelu", /*optional=*/false);
  require_string(root, name, "position_embedding_type", "absolute", /*optional=*/true);
  return config;
}

BertConfig load_bert_config(const std::string& path) {
  const std::vector<uint8_t> bytes = io::read_regular_file(path, "a BERT config.json");
  return parse_bert_config(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

}  // namespace dfss::model
