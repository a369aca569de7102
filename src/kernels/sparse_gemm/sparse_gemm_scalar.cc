// Block-sparse linear kernels on the scalar vector operations.

#include <cmath>
#include <cstdint>

#include "kernels/sparse_gemm/sparse_gemm_kernels.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/vec_scalar-inl.h"
// clang-format off
#include "kernels/simd/epilogue-inl.h"
#include "kernels/sparse_gemm/sparse_gemm-inl.h"
// clang-format on

namespace dfss::kernels {

const SparseGemmKernels& sparse_gemm_kernels_scalar() {
  static const SparseGemmKernels kernels =
      scalar::make_sparse_gemm_kernels("f32_block_sparse_gemm__scalar");
  return kernels;
}

}  // namespace dfss::kernels
