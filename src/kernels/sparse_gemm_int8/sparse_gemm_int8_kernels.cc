#include "kernels/sparse_gemm_int8/sparse_gemm_int8_kernels.h"

namespace dfss::kernels {

const SparseGemmInt8Kernels& sparse_gemm_int8_kernels(Isa isa) {
  switch (isa) {
    // No AVX-512 body yet: its vpdpbusd form has not run on an AVX-512 machine.
    case Isa::avx512_bf16:
    case Isa::avx512:
    case Isa::avx2: return sparse_gemm_int8_kernels_avx2();
    default: return sparse_gemm_int8_kernels_scalar();
  }
}

}  // namespace dfss::kernels
