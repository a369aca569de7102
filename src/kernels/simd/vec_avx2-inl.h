// 8-lane fp32 vector operations on AVX2 + FMA. Included inside one ISA namespace by a
// translation unit compiled with AVX2 flags; never include it anywhere else.

namespace dfss::kernels::DFSS_KERNEL_NS {

using Reg = __m256;
inline constexpr int kLanes = 8;

inline Reg vzero() { return _mm256_setzero_ps(); }
inline Reg vset1(float x) { return _mm256_set1_ps(x); }
inline Reg vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, Reg x) { _mm256_storeu_ps(p, x); }
inline Reg vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Reg vfmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
inline Reg vmul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
inline Reg vadd(Reg a, Reg b) { return _mm256_add_ps(a, b); }
inline Reg vsub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
// NaN-propagating in `b`: vmaxps returns its second operand when either is NaN.
inline Reg vmax(Reg a, Reg b) { return _mm256_max_ps(a, b); }

inline float vreduce_max(Reg x) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
inline float vreduce_add(Reg x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x) to ~2 ulp for x <= 0; exp(-inf) = 0 exactly, NaN stays NaN.
// 2^n is built in the exponent field, so n is clamped to the normal range and results
// below exp(-87) are flushed to 0 by a compare.
inline Reg vexp(Reg x) {
  const Reg too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);  // keeps NaN
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
  const Reg n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  Reg r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  Reg poly = _mm256_set1_ps(1.0f / 720);
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f / 120));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f / 24));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f / 6));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(0.5f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f));
  poly = _mm256_fmadd_ps(poly, r, _mm256_set1_ps(1.0f));
  // n in [-126, 127]: (n + 127) << 23 is the bit pattern of 2^n.
  const __m256i bits = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const Reg result = _mm256_mul_ps(poly, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(too_small, result);
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
