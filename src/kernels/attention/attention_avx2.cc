// AVX2 + FMA attention kernels: the shared body over 8-lane ymm vectors.
#include <immintrin.h>

#include "kernels/attention/attention_common.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS avx2
#include "kernels/simd/vec_avx2-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_prune_avx2-inl.h"
#include "kernels/simd/nm_select_avx2-inl.h"
#include "kernels/attention/sparse_attention-inl.h"
#include "kernels/attention/decode-inl.h"
// clang-format on

namespace dfss::kernels {

const AttentionKernels& attention_kernels_avx2() {
  static const AttentionKernels kernels = avx2::with_decode(avx2::make_sparse_kernels(
      avx2::make_kernels<avx2::F32Tile>("f32_attn_fused_r6k128__avx2",
                                        "f32_attn_unfused_r6k128__avx2"),
      "f32_attn_nm_fused_r6k128__avx2", "f32_attn_nm_unfused_r6k128__avx2"));
  return kernels;
}

}  // namespace dfss::kernels
