// Kernels of the key-selecting attention patterns on the scalar vector operations.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/attention/attention_common.h"
#include "kernels/selected/selected_kernels.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/vec_scalar-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/selected/selected-inl.h"
// clang-format on

namespace dfss::kernels {

const SelectedKernels& selected_kernels_scalar() {
  static const SelectedKernels kernels = scalar::make_selected_kernels("f32_attn_selected__scalar");
  return kernels;
}

}  // namespace dfss::kernels
