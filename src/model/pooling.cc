#include "model/pooling.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dfss::model {

void mean_pool_normalize(const float* hidden, int64_t tokens, int64_t width, float* out) {
  std::vector<double> sum(static_cast<size_t>(width), 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < width; ++i) sum[i] += hidden[t * width + i];
  }
  double norm_squared = 0;
  for (int64_t i = 0; i < width; ++i) {
    sum[i] /= static_cast<double>(std::max<int64_t>(tokens, 1));
    norm_squared += sum[i] * sum[i];
  }
  const double norm = std::max(std::sqrt(norm_squared), 1e-12);
  for (int64_t i = 0; i < width; ++i) out[i] = static_cast<float>(sum[i] / norm);
}

}  // namespace dfss::model
