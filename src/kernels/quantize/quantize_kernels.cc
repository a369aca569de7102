#include "kernels/quantize/quantize_kernels.h"

namespace dfss::kernels {

const QuantizeKernels& quantize_kernels(Isa isa) {
  switch (isa) {
    case Isa::avx512_bf16:
    case Isa::avx512: return quantize_kernels_avx512();
    case Isa::avx2: return quantize_kernels_avx2();
    default: return quantize_kernels_scalar();
  }
}

}  // namespace dfss::kernels
