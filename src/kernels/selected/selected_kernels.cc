#include "kernels/selected/selected_kernels.h"

namespace dfss::kernels {

const SelectedKernels& selected_kernels(Isa isa) {
  switch (isa) {
    case Isa::avx512_bf16:
    case Isa::avx512: return selected_kernels_avx512();
    case Isa::avx2: return selected_kernels_avx2();
    default: return selected_kernels_scalar();
  }
}

}  // namespace dfss::kernels
