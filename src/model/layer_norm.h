// LayerNorm over the last dimension, in place, as torch.nn.LayerNorm computes it (biased
// variance), on oneDNN's layer normalization primitive.
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

#include "model/bert_weights.h"
#include "model/row_count_cache.h"

namespace dfss::model {

class LayerNorm {
 public:
  // `weights` (gamma, beta [width]) must outlive the layer.
  LayerNorm(const dnnl::engine& engine, const LayerNormWeights& weights, int64_t width, double eps);
  LayerNorm(LayerNorm&&) = delete;  // the cache holds a mutex; layers live in place

  // rows [count, width] C order: each row becomes gamma * (x - mean) / sqrt(var + eps) + beta.
  void run(dnnl::stream& stream, float* rows, int64_t count) const;

 private:
  dnnl::engine engine_;
  LayerNormWeights weights_;
  int64_t width_;
  float eps_;
  mutable RowCountCache<dnnl::layer_normalization_forward> by_rows_;
};

}  // namespace dfss::model
