#include <immintrin.h>

#include "kernels/peak/peak_loops.h"

namespace dfss::kernels::avx2 {

double fma_peak_loop_f32(int64_t iterations, float* sink) {
  // 12 independent accumulators cover FMA latency (4 cycles) x 2 ports with headroom and
  // still fit the 16 ymm registers next to the two operands.
  constexpr int kAccumulators = 12;
  __m256 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  // acc * a + b converges to b / (1 - a): no overflow, no denormals.
  const __m256 a = _mm256_set1_ps(0.9999f);
  const __m256 b = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 total = acc[0];
  for (int i = 1; i < kAccumulators; ++i) total = _mm256_add_ps(total, acc[i]);
  // Every lane feeds the sink, so no lane's chain can be optimized away.
  float lanes[8];
  _mm256_storeu_ps(lanes, total);
  *sink = 0.0f;
  for (float lane : lanes) *sink += lane;
  return 2.0 * 8 * kAccumulators * static_cast<double>(iterations);
}

}  // namespace dfss::kernels::avx2
