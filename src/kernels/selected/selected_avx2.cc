// Kernels of the key-selecting attention patterns on the avx2 vector operations.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/attention/attention_common.h"
#include "kernels/selected/selected_kernels.h"

#define DFSS_KERNEL_NS avx2
#include "kernels/simd/vec_avx2-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/selected/selected-inl.h"
// clang-format on

namespace dfss::kernels {

const SelectedKernels& selected_kernels_avx2() {
  static const SelectedKernels kernels = avx2::make_selected_kernels("f32_attn_selected__avx2");
  return kernels;
}

}  // namespace dfss::kernels
