// int8 quantize / dequantize kernels on the avx512 vector operations.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/quantize/quantize_kernels.h"

#define DFSS_KERNEL_NS avx512
#include "kernels/simd/vec_avx512-inl.h"
// clang-format off
#include "kernels/simd/epilogue-inl.h"
#include "kernels/quantize/quantize-inl.h"
// clang-format on

namespace dfss::kernels {

const QuantizeKernels& quantize_kernels_avx512() {
  static const QuantizeKernels kernels = avx512::make_quantize_kernels("int8_quantize__avx512");
  return kernels;
}

}  // namespace dfss::kernels
