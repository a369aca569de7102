#include "dfss/tensor.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "dfss/errors.h"

namespace dfss {

const char* dtype_name(DType dtype) {
  return dtype == DType::f32 ? "f32" : "bf16";
}

int64_t dtype_size(DType dtype) {
  return dtype == DType::f32 ? 4 : 2;
}

int64_t shape_numel(const std::array<int64_t, 4>& shape) {
  for (int64_t dim : shape) {
    if (dim == 0) return 0;
  }
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(count, dim, &count)) {
      throw InvalidArgument("shape " + shape_string(shape) +
                            " too large: expected at most 2^63 - 1 elements");
    }
  }
  return count;
}

std::array<int64_t, 4> contiguous_strides(const std::array<int64_t, 4>& shape) {
  std::array<int64_t, 4> stride{};
  int64_t running = 1;
  for (int axis = 3; axis >= 0; --axis) {
    stride[axis] = running;
    // The stride of axis 0 needs no further product.
    if (axis > 0 && __builtin_mul_overflow(running, shape[axis], &running)) {
      throw InvalidArgument("shape " + shape_string(shape) +
                            " too large: expected row-major strides that fit in 64 bits");
    }
  }
  return stride;
}

std::string shape_string(const std::array<int64_t, 4>& shape) {
  std::ostringstream text;
  text << '[' << shape[0] << ", " << shape[1] << ", " << shape[2] << ", " << shape[3] << ']';
  return text.str();
}

uint16_t float_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x0040);  // keep it quiet
  const uint32_t rounding_bias = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

float bf16_to_float(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

}  // namespace dfss
