// A dense linear layer y = x Wᵀ + b on oneDNN's matmul, with the epilogues BERT needs fused
// into the GEMM (exact GELU; residual add into the output).
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <vector>

#include "model/row_count_cache.h"

namespace dfss::model {

enum class LinearEpilogue {
  none,          // y = x Wᵀ + b
  gelu_erf,      // y = gelu(x Wᵀ + b), GELU with the exact erf
  add_residual,  // y += x Wᵀ + b (y holds the residual on entry)
};

class Linear {
 public:
  // `weight` [out_features, in_features] in C order (PyTorch nn.Linear) and `bias`
  // [out_features]; both must outlive the layer. The weights are repacked into oneDNN's
  // preferred layout on first use.
  Linear(const dnnl::engine& engine, std::span<const float> weight, std::span<const float> bias,
         int64_t out_features, int64_t in_features, LinearEpilogue epilogue);

  Linear(Linear&&) = delete;  // the cache holds a mutex; layers live in place

  int64_t out_features() const { return out_features_; }
  int64_t in_features() const { return in_features_; }

  // x [rows, in_features] and y [rows, out_features], C order, not overlapping.
  void run(dnnl::stream& stream, const float* x, int64_t rows, float* y) const;

 private:
  struct Prepared {
    dnnl::matmul primitive;
    dnnl::memory weights;  // packed for this primitive
  };
  Prepared prepare(int64_t rows) const;

  dnnl::engine engine_;
  std::span<const float> weight_, bias_;
  int64_t out_features_, in_features_;
  LinearEpilogue epilogue_;

  mutable RowCountCache<Prepared> by_rows_;
  // Packed weights by layout, shared by the primitives of every row count that asks for
  // it; only touched under by_rows_'s lock (from prepare()).
  mutable std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> packed_;
};

}  // namespace dfss::model
