#include "kernels/sparse_gemm/sparse_gemm_kernels.h"

namespace dfss::kernels {

const SparseGemmKernels& sparse_gemm_kernels(Isa isa) {
  switch (isa) {
    case Isa::avx512_bf16:
    case Isa::avx512: return sparse_gemm_kernels_avx512();
    case Isa::avx2: return sparse_gemm_kernels_avx2();
    default: return sparse_gemm_kernels_scalar();
  }
}

}  // namespace dfss::kernels
