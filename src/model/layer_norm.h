// LayerNorm over the last dimension, in place, as torch.nn.LayerNorm computes it (biased
// variance), on oneDNN's layer normalization primitive.
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "model/bert_weights.h"
#include "model/row_count_cache.h"

namespace dfss::model {

class LayerNorm {
 public:
  // `weights` (gamma, beta [width]) must outlive the layer. `name` ("layer 3's output
  // LayerNorm") is for messages.
  LayerNorm(const dnnl::engine& engine, const LayerNormWeights& weights, int64_t width, double eps,
            std::string name);
  LayerNorm(LayerNorm&&) = delete;  // the cache holds a mutex; layers live in place

  // rows [count, width] C order: each row becomes gamma * (x - mean) / sqrt(var + eps) + beta.
  // Throws OutOfMemory naming the layer if memory runs out.
  void run(dnnl::stream& stream, float* rows, int64_t count) const;

 private:
  struct Prepared {
    dnnl::layer_normalization_forward primitive;
    dnnl::memory::desc scratchpad;  // allocated per run: entries are shared by threads
  };

  dnnl::engine engine_;
  LayerNormWeights weights_;
  int64_t width_;
  float eps_;
  std::string name_;
  mutable RowCountCache<Prepared> by_rows_;
};

}  // namespace dfss::model
