// Top-k row passes on the avx512 vector operations.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/topk/topk_kernels.h"

#define DFSS_KERNEL_NS avx512
#include "kernels/simd/vec_avx512-inl.h"
#include "kernels/topk/topk_vec_avx512-inl.h"
// clang-format off
#include "kernels/topk/topk-inl.h"
// clang-format on

namespace dfss::kernels {

const TopkKernels& topk_kernels_avx512() {
  static const TopkKernels kernels = avx512::make_topk_kernels("f32_topk_groups__avx512");
  return kernels;
}

}  // namespace dfss::kernels
