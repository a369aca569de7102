#include "kernels/attention/flash_kernels.h"

namespace dfss::kernels {

const AttentionKernels& attention_kernels(Isa isa, DType dtype) {
  switch (isa) {
    case Isa::avx512_bf16:
      // fp32 inputs gain nothing from the bf16 instructions.
      return dtype == DType::bf16 ? attention_kernels_avx512bf16() : attention_kernels_avx512();
    case Isa::avx512: return attention_kernels_avx512();
    case Isa::avx2: return attention_kernels_avx2();
    default: return attention_kernels_scalar();
  }
}

}  // namespace dfss::kernels
