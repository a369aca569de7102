// libFuzzer target for dfss_block_sparse.safetensors (model/block_sparse_weights.h): any
// byte string is refused with a FormatError naming the file, or accepted, and then every
// layer it yields is a well-formed block-sparse matrix of the model's shape that equals the
// dense weight. The model is two small linear layers whose dense weights are zero, so that
// accepted inputs (all values zero) are reachable.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "io/safetensors.h"
#include "model/block_sparse_weights.h"

namespace {

constexpr char kName[] = "fuzz_block_sparse.safetensors";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<float> zeros(48 * 16, 0.0f);
  static const std::vector<dfss::model::DenseLinear> layers = {
      {"encoder.layer.0.intermediate.dense", 48, 16, {zeros.data(), 48 * 16}},
      {"encoder.layer.0.output.dense", 16, 48, {zeros.data(), 16 * 48}},
  };
  std::optional<dfss::io::SafetensorsFile> file;
  try {
    file.emplace(dfss::io::SafetensorsFile::parse({data, size}, kName));
    const auto sparse = dfss::model::read_block_sparse_layers(*file, layers);
    for (const auto& [name, matrix] : sparse) {
      const dfss::model::DenseLinear* layer = nullptr;
      for (const auto& candidate : layers)
        if (candidate.name == name) layer = &candidate;
      if (layer == nullptr || matrix.rows() != layer->out || matrix.cols() != layer->in)
        __builtin_trap();
      for (float value : matrix.to_dense())
        if (value != 0.0f) __builtin_trap();
    }
  } catch (const dfss::FormatError& e) {
    if (std::strncmp(e.what(), kName, sizeof kName - 1) != 0) __builtin_trap();
  }
  return 0;
}
