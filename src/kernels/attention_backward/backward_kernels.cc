#include "kernels/attention_backward/backward_kernels.h"

namespace dfss::kernels {

const BackwardKernels& backward_kernels(Isa isa) {
  switch (isa) {
    // The backward runs on fp32 operands: AVX512-BF16 adds nothing to it.
    case Isa::avx512_bf16:
    case Isa::avx512: return backward_kernels_avx512();
    case Isa::avx2: return backward_kernels_avx2();
    default: return backward_kernels_scalar();
  }
}

}  // namespace dfss::kernels
