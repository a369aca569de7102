// Baseline x86-64 build: plain C++ whose independent lanes the compiler may vectorize
// with SSE2, i.e. the best the scalar kernels could hope for.
#include "kernels/peak/peak_loops.h"

namespace dfss::kernels::scalar {

double fma_peak_loop_f32(int64_t iterations, float* sink) {
  // 48 independent chains: enough to hide the add latency even when vectorized 4-wide.
  constexpr int kLanes = 48;
  float acc[kLanes];
  for (int i = 0; i < kLanes; ++i) acc[i] = 0.001f * static_cast<float>(i);
  // acc * a + b converges to b / (1 - a): no overflow, no denormals, however long it runs.
  const float a = 0.9999f;
  const float b = 0.001f;
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kLanes; ++i) acc[i] = acc[i] * a + b;
  }
  float total = 0.0f;
  for (int i = 0; i < kLanes; ++i) total += acc[i];
  *sink = total;
  return 2.0 * kLanes * static_cast<double>(iterations);
}

}  // namespace dfss::kernels::scalar
