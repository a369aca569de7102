#include <immintrin.h>

#include "kernels/peak/peak_loops.h"

namespace dfss::kernels::avx512 {

double fma_peak_loop_f32(int64_t iterations, float* sink) {
  // 16 independent accumulators: FMA latency (4 cycles) x 2 ports needs at least 8.
  constexpr int kAccumulators = 16;
  __m512 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  // acc * a + b converges to b / (1 - a): no overflow, no denormals.
  const __m512 a = _mm512_set1_ps(0.9999f);
  const __m512 b = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 total = acc[0];
  for (int i = 1; i < kAccumulators; ++i) total = _mm512_add_ps(total, acc[i]);
  // Every lane feeds the sink, so no lane's chain can be optimized away.
  float lanes[16];
  _mm512_storeu_ps(lanes, total);
  *sink = 0.0f;
  for (float lane : lanes) *sink += lane;
  return 2.0 * 16 * kAccumulators * static_cast<double>(iterations);
}

}  // namespace dfss::kernels::avx512
