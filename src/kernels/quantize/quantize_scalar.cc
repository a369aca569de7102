// int8 quantize / dequantize kernels on the scalar vector operations.

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/quantize/quantize_kernels.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/vec_scalar-inl.h"
// clang-format off
#include "kernels/simd/epilogue-inl.h"
#include "kernels/quantize/quantize-inl.h"
// clang-format on

namespace dfss::kernels {

const QuantizeKernels& quantize_kernels_scalar() {
  static const QuantizeKernels kernels = scalar::make_quantize_kernels("int8_quantize__scalar");
  return kernels;
}

}  // namespace dfss::kernels
