// Block-sparse linear kernels on the avx2 vector operations.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/sparse_gemm/sparse_gemm_kernels.h"

#define DFSS_KERNEL_NS avx2
#include "kernels/simd/vec_avx2-inl.h"
// clang-format off
#include "kernels/simd/epilogue-inl.h"
#include "kernels/sparse_gemm/sparse_gemm-inl.h"
// clang-format on

namespace dfss::kernels {

const SparseGemmKernels& sparse_gemm_kernels_avx2() {
  static const SparseGemmKernels kernels =
      avx2::make_sparse_gemm_kernels("f32_block_sparse_gemm__avx2");
  return kernels;
}

}  // namespace dfss::kernels
