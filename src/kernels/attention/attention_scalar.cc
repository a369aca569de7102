// Portable attention kernels: the shared body over plain-float 8-lane vectors.
#include "kernels/attention/attention_common.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/vec_scalar-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_select_generic-inl.h"
#include "kernels/attention/sparse_attention-inl.h"
#include "kernels/attention/decode-inl.h"
// clang-format on

namespace dfss::kernels {

const AttentionKernels& attention_kernels_scalar() {
  static const AttentionKernels kernels = scalar::with_decode(scalar::make_sparse_kernels(
      scalar::make_kernels<scalar::F32Tile>("f32_attn_fused_r6k128__scalar",
                                            "f32_attn_unfused_r6k128__scalar"),
      "f32_attn_nm_fused_r6k128__scalar", "f32_attn_nm_unfused_r6k128__scalar"));
  return kernels;
}

}  // namespace dfss::kernels
