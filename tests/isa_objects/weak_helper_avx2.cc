// A deliberately wrong per-ISA file: an inline helper outside the ISA namespace that is not
// inlined, so this AVX2 object defines a weak copy of it. The ISA-object check must reject
// it (the ctest case isa_objects_check_rejects_weak_helper).
#include <immintrin.h>

namespace dfss::test {

[[gnu::noinline]] inline float weak_helper_sum(const float* x) {
  const __m256 v = _mm256_loadu_ps(x);
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  return _mm_cvtss_f32(_mm_add_ss(half, _mm_movehdup_ps(half)));
}

float call_weak_helper(const float* x) {
  return weak_helper_sum(x);
}

}  // namespace dfss::test
