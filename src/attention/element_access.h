// Element reads and writes of strided f32/bf16 views, for the plain-loop references.
#pragma once

#include <cstdint>

#include "dfss/tensor.h"

namespace dfss::detail {

// Element `offset` of a view, widened to float (exact for both dtypes).
inline float load_element(const ConstTensorView& t, int64_t offset) {
  if (t.dtype == DType::f32) return static_cast<const float*>(t.data)[offset];
  return bf16_to_float(static_cast<const uint16_t*>(t.data)[offset]);
}

// Stores `value` rounded to the view's dtype (via fp32 for bf16).
inline void store_element(const TensorView& t, int64_t offset, double value) {
  const auto narrowed = static_cast<float>(value);
  if (t.dtype == DType::f32) {
    static_cast<float*>(t.data)[offset] = narrowed;
  } else {
    static_cast<uint16_t*>(t.data)[offset] = float_to_bf16(narrowed);
  }
}

}  // namespace dfss::detail
