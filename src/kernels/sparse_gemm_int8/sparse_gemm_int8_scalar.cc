// int8 block-sparse linear kernels on the scalar integer vector operations.
#include <cstdint>
#include <cstring>

#include "kernels/sparse_gemm_int8/sparse_gemm_int8_kernels.h"

#define DFSS_KERNEL_NS scalar
#include "kernels/simd/ivec_u8s8_scalar-inl.h"
// clang-format off
#include "kernels/sparse_gemm_int8/sparse_gemm_int8-inl.h"
// clang-format on

namespace dfss::kernels {

const SparseGemmInt8Kernels& sparse_gemm_int8_kernels_scalar() {
  static const SparseGemmInt8Kernels kernels =
      scalar::make_sparse_gemm_int8_kernels("int8_block_sparse_gemm__scalar");
  return kernels;
}

}  // namespace dfss::kernels
