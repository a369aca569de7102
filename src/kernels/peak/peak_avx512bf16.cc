#include <immintrin.h>

#include "kernels/peak/peak_loops.h"

namespace dfss::kernels::avx512_bf16 {

double fma_peak_loop_bf16(int64_t iterations, float* sink) {
  // vdpbf16ps has a 6-cycle latency on 2 ports: 12 chains is the minimum, 16 leaves slack.
  constexpr int kAccumulators = 16;
  __m512 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  // Each instruction adds 2 products per lane; small operands keep the sums far from
  // overflow for any realistic run time.
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.25f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.001f), _mm512_set1_ps(0.002f));
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 total = acc[0];
  for (int i = 1; i < kAccumulators; ++i) total = _mm512_add_ps(total, acc[i]);
  // Every lane feeds the sink, so no lane's chain can be optimized away.
  float lanes[16];
  _mm512_storeu_ps(lanes, total);
  *sink = 0.0f;
  for (float lane : lanes) *sink += lane;
  // 16 lanes x 2 products x 2 FLOPs per instruction.
  return 2.0 * 32 * kAccumulators * static_cast<double>(iterations);
}

}  // namespace dfss::kernels::avx512_bf16
