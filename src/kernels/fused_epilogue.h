// What the linear-layer kernels (block-sparse fp32, int8 dequantization) do to a result
// before storing it; src/kernels/simd/epilogue-inl.h applies it.
#pragma once

namespace dfss::kernels {

enum class FusedEpilogue {
  none,          // y = result
  gelu_erf,      // y = GELU(result), with the exact erf
  add_residual,  // y += result (y holds the residual on entry)
};

}  // namespace dfss::kernels
