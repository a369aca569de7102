#include "cli/npy_inputs.h"

#include <limits>

#include "dfss/errors.h"
#include "dfss/tensor.h"

namespace dfss::cli {
namespace {

// "shape [3, 4]" for float32, which is what was asked for, else "a bool array of shape ...".
std::string describe(const io::NpyArray& array) {
  const std::string shape = "shape " + io::shape_string(array.shape);
  if (array.dtype == io::NpyDType::f32) return shape;
  return std::string("a ") + io::npy_dtype_name(array.dtype) + " array of " + shape;
}

}  // namespace

io::NpyArray read_input(const std::string& flag, const std::string& path) {
  try {
    return io::read_npy(path);
  } catch (const FormatError& e) {
    throw FormatError(flag + " " + e.what());
  } catch (const IoError& e) {
    throw IoError(flag + " " + e.what());
  }
}

std::array<int64_t, 4> require_f32_4d(const io::NpyArray& array, const std::string& flag,
                                      const std::string& path, const char* layout) {
  if (array.dtype != io::NpyDType::f32 || array.shape.size() != 4) {
    throw InvalidArgument(flag + " " + path + ": expected a 4-D float32 array " + layout +
                          ", got " + describe(array));
  }
  return {array.shape[0], array.shape[1], array.shape[2], array.shape[3]};
}

std::vector<float> additive_mask(const io::NpyArray& array, const std::string& flag,
                                 const std::string& path, int64_t batch, int64_t keys) {
  const bool float_or_bool = array.dtype == io::NpyDType::f32 || array.dtype == io::NpyDType::bool_;
  if (!float_or_bool || array.shape != std::vector<int64_t>{batch, keys}) {
    throw InvalidArgument(
        flag + " " + path +
        ": expected a float32 (additive) or bool (true = attend) array [B, Lk] = " +
        io::shape_string({batch, keys}) + " (B from --q, Lk from --k), got " + describe(array));
  }
  if (array.dtype == io::NpyDType::f32) return array.f32;
  std::vector<float> mask(array.bool_.size());
  for (size_t i = 0; i < mask.size(); ++i) {
    mask[i] = array.bool_[i] ? 0.0f : -std::numeric_limits<float>::infinity();
  }
  return mask;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
  std::vector<uint16_t> rounded(values.size());
  for (size_t i = 0; i < values.size(); ++i) rounded[i] = float_to_bf16(values[i]);
  return rounded;
}

}  // namespace dfss::cli
