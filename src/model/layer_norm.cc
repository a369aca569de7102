#include "model/layer_norm.h"

#include <cmath>

namespace dfss::model {

void layer_norm_rows(float* rows, int64_t count, int64_t width, const LayerNormWeights& weights,
                     double eps) {
  const float* gamma = weights.weight.data();
  const float* beta = weights.bias.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < count; ++r) {
    float* x = rows + r * width;
    // Double sums: two passes over a few hundred values cost nothing next to the GEMMs.
    double sum = 0;
    for (int64_t i = 0; i < width; ++i) sum += x[i];
    const double mean = sum / static_cast<double>(width);
    double squares = 0;
    for (int64_t i = 0; i < width; ++i) squares += (x[i] - mean) * (x[i] - mean);
    const double inv_std = 1.0 / std::sqrt(squares / static_cast<double>(width) + eps);
    for (int64_t i = 0; i < width; ++i) {
      x[i] = static_cast<float>((x[i] - mean) * inv_std) * gamma[i] + beta[i];
    }
  }
}

}  // namespace dfss::model
