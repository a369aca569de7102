// Sentence-transformers' pooling for embedding models: mean over a text's tokens, then
// L2 normalization.
#pragma once

#include <cstdint>

namespace dfss::model {

// hidden [tokens, width] C order, the hidden states of one text; writes `out` [width]:
// their mean divided by its L2 norm (by 1e-12 if the norm is smaller, as
// torch.nn.functional.normalize does).
void mean_pool_normalize(const float* hidden, int64_t tokens, int64_t width, float* out);

}  // namespace dfss::model
