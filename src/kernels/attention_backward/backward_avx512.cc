// AVX-512 attention backward kernels (also for AVX512-BF16 CPUs): the shared body over 16-lane zmm
// vectors.
#include <immintrin.h>

#include "kernels/attention/attention_common.h"
#include "kernels/attention_backward/backward_kernels.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS avx512
#include "kernels/simd/vec_avx512-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_select_avx512-inl.h"
#include "kernels/simd/nm_prune_avx512-inl.h"
#include "kernels/attention_backward/backward-inl.h"
// clang-format on

namespace dfss::kernels {

const BackwardKernels& backward_kernels_avx512() {
  static const BackwardKernels kernels{"f32_attn_bwd_r6k128__avx512", &avx512::backward_tiles,
                                       &avx512::backward_gemm, &avx512::backward_prune};
  return kernels;
}

}  // namespace dfss::kernels
