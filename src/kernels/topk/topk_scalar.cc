// Top-k row passes on the scalar vector operations.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/topk/topk_kernels.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/vec_scalar-inl.h"
#include "kernels/topk/topk_vec_scalar-inl.h"
// clang-format off
#include "kernels/topk/topk-inl.h"
// clang-format on

namespace dfss::kernels {

const TopkKernels& topk_kernels_scalar() {
  static const TopkKernels kernels = scalar::make_topk_kernels("f32_topk_groups__scalar");
  return kernels;
}

}  // namespace dfss::kernels
