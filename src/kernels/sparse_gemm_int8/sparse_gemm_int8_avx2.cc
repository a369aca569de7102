// int8 block-sparse linear kernels on the avx2 integer vector operations.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/sparse_gemm_int8/sparse_gemm_int8_kernels.h"

#define DFSS_KERNEL_NS avx2
#include "kernels/simd/ivec_u8s8_avx2-inl.h"
// clang-format off
#include "kernels/sparse_gemm_int8/sparse_gemm_int8-inl.h"
// clang-format on

namespace dfss::kernels {

const SparseGemmInt8Kernels& sparse_gemm_int8_kernels_avx2() {
  static const SparseGemmInt8Kernels kernels =
      avx2::make_sparse_gemm_int8_kernels("int8_block_sparse_gemm__avx2");
  return kernels;
}

}  // namespace dfss::kernels
