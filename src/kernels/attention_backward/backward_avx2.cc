// AVX2 + FMA attention backward kernels: the shared body over 8-lane ymm vectors.
#include <immintrin.h>

#include "kernels/attention/attention_common.h"
#include "kernels/attention_backward/backward_kernels.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS avx2
#include "kernels/simd/vec_avx2-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_prune_avx2-inl.h"
#include "kernels/attention_backward/backward-inl.h"
// clang-format on

namespace dfss::kernels {

const BackwardKernels& backward_kernels_avx2() {
  static const BackwardKernels kernels{"f32_attn_bwd_r6k128__avx2", &avx2::backward_tiles,
                                       &avx2::backward_gemm, &avx2::backward_prune};
  return kernels;
}

}  // namespace dfss::kernels
