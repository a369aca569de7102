// LayerNorm over the last dimension, in place, as torch.nn.LayerNorm computes it.
#pragma once

#include <cstdint>

#include "model/bert_weights.h"

namespace dfss::model {

// rows [count, width] C order: each row becomes gamma * (x - mean) / sqrt(var + eps) + beta
// with the biased variance. Rows are spread over the OpenMP threads; each row's result does
// not depend on their number.
void layer_norm_rows(float* rows, int64_t count, int64_t width, const LayerNormWeights& weights,
                     double eps);

}  // namespace dfss::model
