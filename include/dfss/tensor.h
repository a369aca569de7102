// Non-owning strided views of 4-D tensors, the currency of the public API.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace dfss {

enum class DType : uint8_t {
  f32,   // IEEE binary32
  bf16,  // bfloat16, held as uint16_t bit patterns (upper half of a binary32)
};

const char* dtype_name(DType dtype);
int64_t dtype_size(DType dtype);

// Number of elements of a 4-D shape: 0 when any dimension is 0 (whatever the others are, as
// in NumPy), else the product. Throws dfss::InvalidArgument ("shape ... too large") when the
// product does not fit in int64; dimensions must be non-negative.
int64_t shape_numel(const std::array<int64_t, 4>& shape);

// A view of a 4-D tensor: element (i0,i1,i2,i3) lives at
// data + (i0*stride[0] + i1*stride[1] + i2*stride[2] + i3*stride[3]) * dtype_size.
// Strides are in elements and must be non-negative.
template <typename Pointer>
struct BasicTensorView {
  Pointer data = nullptr;
  DType dtype = DType::f32;
  std::array<int64_t, 4> shape{0, 0, 0, 0};
  std::array<int64_t, 4> stride{0, 0, 0, 0};

  int64_t numel() const { return shape_numel(shape); }
};

using ConstTensorView = BasicTensorView<const void*>;
using TensorView = BasicTensorView<void*>;

// Row-major (C order) strides for a shape. Throws dfss::InvalidArgument ("shape ... too
// large") when a stride does not fit in int64, even for an empty shape such as
// [0, 2^63 - 1, 2^63 - 1, 64], whose strides still have to be representable.
std::array<int64_t, 4> contiguous_strides(const std::array<int64_t, 4>& shape);

inline ConstTensorView const_view(const float* data, std::array<int64_t, 4> shape) {
  return {data, DType::f32, shape, contiguous_strides(shape)};
}
inline ConstTensorView const_view(const uint16_t* bf16_data, std::array<int64_t, 4> shape) {
  return {bf16_data, DType::bf16, shape, contiguous_strides(shape)};
}
inline TensorView mutable_view(float* data, std::array<int64_t, 4> shape) {
  return {data, DType::f32, shape, contiguous_strides(shape)};
}
inline TensorView mutable_view(uint16_t* bf16_data, std::array<int64_t, 4> shape) {
  return {bf16_data, DType::bf16, shape, contiguous_strides(shape)};
}

std::string shape_string(const std::array<int64_t, 4>& shape);

// bfloat16 conversions. float_to_bf16 rounds to nearest even; NaN stays NaN (quiet).
uint16_t float_to_bf16(float value);
float bf16_to_float(uint16_t bits);

}  // namespace dfss
