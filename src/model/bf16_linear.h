// A bf16 linear layer y = x Wᵀ + b: W rounded to bf16 once at load, x rounded to bf16 at
// every call (round to nearest even), oneDNN's bf16 GEMM accumulating in fp32 with the bias
// and the epilogue fused, y in fp32. The rest of the encoder (LayerNorm, softmax, GELU,
// residuals) stays fp32.
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <string>
#include <vector>

#include "dfss/cpu.h"
#include "model/linear.h"

namespace dfss::model {

class Bf16Linear {
 public:
  // As Linear's constructor; `weight` is rounded here and not kept, `bias` must outlive the
  // layer.
  Bf16Linear(const dnnl::engine& engine, std::span<const float> weight, std::span<const float> bias,
             int64_t out_features, int64_t in_features, LinearEpilogue epilogue, std::string name);

  Bf16Linear(Bf16Linear&&) = delete;  // gemm_ points into weight_

  // As Linear::run; `threads` (0: OpenMP's default) round the activations, `isa`
  // (Isa::automatic: the best) picks the rounding kernel. oneDNN's GEMM runs on the
  // caller's OpenMP threads.
  void run(dnnl::stream& stream, const float* x, int64_t rows, float* y, int threads,
           Isa isa) const;

 private:
  std::vector<uint16_t> weight_;
  int64_t in_features_;
  std::string name_;
  Linear gemm_;
};

}  // namespace dfss::model
