// AVX-512 attention kernels for fp32 operands (bf16 inputs are widened while packing when
// the CPU lacks AVX512-BF16): the shared body over 16-lane zmm vectors.
#include <immintrin.h>

#include "kernels/attention/attention_common.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS avx512
#include "kernels/simd/vec_avx512-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_select_avx512-inl.h"
#include "kernels/attention/sparse_attention-inl.h"
#include "kernels/attention/decode-inl.h"
// clang-format on

namespace dfss::kernels {

const AttentionKernels& attention_kernels_avx512() {
  static const AttentionKernels kernels = avx512::with_decode(avx512::make_sparse_kernels(
      avx512::make_kernels<avx512::F32Tile>("f32_attn_fused_r6k128__avx512",
                                            "f32_attn_unfused_r6k128__avx512"),
      "f32_attn_nm_fused_r6k128__avx512", "f32_attn_nm_unfused_r6k128__avx512"));
  return kernels;
}

}  // namespace dfss::kernels
