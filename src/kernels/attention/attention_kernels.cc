#include "kernels/attention/flash_kernels.h"

namespace dfss::kernels {

const AttentionKernels& attention_kernels(Isa isa, DType dtype, bool sparse) {
  switch (isa) {
    case Isa::avx512_bf16:
      // fp32 inputs gain nothing from the bf16 instructions; the sparse kernels gather
      // single rows of V, which the pair-packed bf16 layout does not offer (the fused 2:4
      // and 1:2 bf16 kernels have their own layout: sparse_fused_kernels).
      return dtype == DType::bf16 && !sparse ? attention_kernels_avx512bf16()
                                             : attention_kernels_avx512();
    case Isa::avx512: return attention_kernels_avx512();
    case Isa::avx2: return attention_kernels_avx2();
    default: return attention_kernels_scalar();
  }
}

const AttentionKernels& sparse_fused_kernels(Isa isa, DType dtype, SparsityPattern pattern) {
  if (isa == Isa::avx512_bf16 && dtype == DType::bf16 && pair_combos(pattern.n, pattern.m))
    return attention_kernels_avx512bf16_pair_combos();
  return attention_kernels(isa, dtype, true);
}

}  // namespace dfss::kernels
