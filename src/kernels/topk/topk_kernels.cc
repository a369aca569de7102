#include "kernels/topk/topk_kernels.h"

namespace dfss::kernels {

const TopkKernels& topk_kernels(Isa isa) {
  switch (isa) {
    case Isa::avx512_bf16:
    case Isa::avx512: return topk_kernels_avx512();
    case Isa::avx2: return topk_kernels_avx2();
    default: return topk_kernels_scalar();
  }
}

}  // namespace dfss::kernels
