// Portable attention backward kernels: the shared body over plain-float 8-lane vectors.
#include "kernels/attention/attention_common.h"
#include "kernels/attention_backward/backward_kernels.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/vec_scalar-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_prune_generic-inl.h"
#include "kernels/attention_backward/backward-inl.h"
// clang-format on

namespace dfss::kernels {

const BackwardKernels& backward_kernels_scalar() {
  static const BackwardKernels kernels{"f32_attn_bwd_r6k128__scalar", &scalar::backward_tiles,
                                       &scalar::backward_gemm, &scalar::backward_prune};
  return kernels;
}

}  // namespace dfss::kernels
