#include "model/block_sparse_weights.h"

#include <cmath>
#include <set>
#include <utility>

#include "dfss/errors.h"

namespace dfss::model {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

[[noreturn]] void fail_in(const std::string& file, const std::string& what) {
  throw FormatError(file + ": " + what);
}

}  // namespace

std::map<std::string, BlockSparseMatrix> read_block_sparse_layers(
    const io::SafetensorsFile& file, std::span<const DenseLinear> layers) {
  const std::string& name = file.name();
  auto fail = [&](const std::string& what) { fail_in(name, what); };
  const auto& metadata = file.metadata();
  const auto format = metadata.find("format");
  if (format == metadata.end() || format->second != kBlockSparseFormat)
    fail(std::string("expected __metadata__ \"format\": \"") + kBlockSparseFormat + "\"");

  std::map<std::string, const DenseLinear*> by_name;
  for (const DenseLinear& layer : layers) by_name[layer.name] = &layer;
  // Every tensor and metadata entry must belong to a layer the model has.
  std::set<std::string> named;
  for (const auto& [key, value] : metadata) {
    if (key == "format") continue;
    if (!by_name.count(key))
      fail("__metadata__ \"" + key.substr(0, 200) + "\": not a linear layer of this model");
    named.insert(key);
  }
  for (const io::TensorInfo& tensor : file.tensors()) {
    std::string layer;
    if (ends_with(tensor.name, ".columns")) layer = tensor.name.substr(0, tensor.name.size() - 8);
    if (ends_with(tensor.name, ".values")) layer = tensor.name.substr(0, tensor.name.size() - 7);
    if (layer.empty() || !named.count(layer))
      fail("tensor '" + tensor.name.substr(0, 200) +
           "': expected <layer>.columns or <layer>.values of a layer named in __metadata__");
  }

  std::map<std::string, BlockSparseMatrix> out;
  for (const std::string& layer_name : named) {
    const DenseLinear& layer = *by_name.at(layer_name);
    const std::string where = "layer '" + layer_name + "'";
    BlockSparsePattern pattern;
    try {
      pattern = parse_block_sparse_pattern(metadata.find(layer_name)->second, where + " pattern");
    } catch (const InvalidArgument& e) {
      fail(e.what());
    }
    if (layer.in % pattern.m != 0)
      fail(where + ": pattern " + block_sparse_pattern_name(pattern) + " needs in_features (" +
           std::to_string(layer.in) + ") to be a multiple of M");
    const int64_t v = pattern.block_rows, blocks = (layer.out + v - 1) / v;
    const int64_t kept = layer.in / pattern.m * pattern.n;
    const io::TensorInfo& columns_info = file.get(layer_name + ".columns", {blocks, kept});
    if (columns_info.dtype != io::SafetensorsDType::u8)
      fail("tensor '" + layer_name + ".columns': expected dtype U8, got " +
           io::safetensors_dtype_name(columns_info.dtype));
    std::vector<float> values = file.read_f32(layer_name + ".values", {blocks, kept, v});
    for (size_t i = 0; i < values.size(); ++i)
      if (!std::isfinite(values[i]))
        fail("tensor '" + layer_name + ".values': element " + std::to_string(i) + " is not finite");
    std::vector<int32_t> columns(static_cast<size_t>(blocks * kept));
    for (int64_t i = 0; i < blocks * kept; ++i) {
      const int64_t group = (i % kept) / pattern.n;
      columns[i] = static_cast<int32_t>(group * pattern.m + columns_info.bytes[i]);
    }
    BlockSparseMatrix matrix = [&] {
      try {
        return BlockSparseMatrix::from_compressed(layer.out, layer.in, pattern, std::move(columns),
                                                  std::move(values));
      } catch (const InvalidArgument& e) {
        fail_in(name, where + ": " + e.what());
      }
    }();
    // The dense checkpoint must be the same matrix: otherwise dfss and every other reader
    // of the folder would compute different models.
    // (By value: a pruned weight written as -0 is a zero too.)
    const std::vector<float> dense = matrix.to_dense();
    size_t first = 0;
    while (first < dense.size() && layer.weight[first] == dense[first]) ++first;
    if (first < dense.size()) {
      fail(where + " disagrees with its dense weight in model.safetensors at [" +
           std::to_string(first / layer.in) + ", " + std::to_string(first % layer.in) +
           "] (the dense checkpoint must hold the pruned matrix, zeros where pruned)");
    }
    out.emplace(layer_name, std::move(matrix));
  }
  return out;
}

}  // namespace dfss::model
