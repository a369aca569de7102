// 8-lane fp32 vector operations on AVX2 + FMA. Included inside one ISA namespace by a
// translation unit compiled with AVX2 flags; never include it anywhere else.

namespace dfss::kernels::DFSS_KERNEL_NS {

using Reg = __m256;
inline constexpr int kLanes = 8;

inline Reg vzero() {
  return _mm256_setzero_ps();
}
inline Reg vset1(float x) {
  return _mm256_set1_ps(x);
}
inline Reg vload(const float* p) {
  return _mm256_loadu_ps(p);
}
inline void vstore(float* p, Reg x) {
  _mm256_storeu_ps(p, x);
}
inline Reg vbroadcast(const float* p) {
  return _mm256_broadcast_ss(p);
}
inline Reg vfmadd(Reg a, Reg b, Reg c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline Reg vmul(Reg a, Reg b) {
  return _mm256_mul_ps(a, b);
}
inline Reg vadd(Reg a, Reg b) {
  return _mm256_add_ps(a, b);
}
inline Reg vsub(Reg a, Reg b) {
  return _mm256_sub_ps(a, b);
}
// NaN-propagating in `b`: vmaxps returns its second operand when either is NaN.
inline Reg vmax(Reg a, Reg b) {
  return _mm256_max_ps(a, b);
}
inline Reg vdiv(Reg a, Reg b) {
  return _mm256_div_ps(a, b);
}
inline Reg vabs(Reg x) {
  return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}
// |magnitude| with the sign bit of `sign`.
inline Reg vcopysign(Reg magnitude, Reg sign) {
  const Reg sign_bit = _mm256_set1_ps(-0.0f);
  return _mm256_or_ps(_mm256_andnot_ps(sign_bit, magnitude), _mm256_and_ps(sign_bit, sign));
}

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

// 2^x for x <= 0 (softmax arguments in log2 units); 2^-inf = 0 exactly, NaN stays NaN.
// 2^n is built in the exponent field, so n is clamped to the normal range and results
// below 2^-126 are flushed to 0 by a compare.
inline Reg vexp2(Reg x) {
  const Reg too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
  x = _mm256_max_ps(_mm256_set1_ps(-126.0f), x);  // keeps NaN
  const Reg n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const Reg f = _mm256_sub_ps(x, n);
  Reg poly = _mm256_set1_ps(1.5403530e-4f);
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.3333558e-3f));
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(9.6181291e-3f));
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(5.5504109e-2f));
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(2.4022651e-1f));
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(6.9314718e-1f));
  poly = _mm256_fmadd_ps(poly, f, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(too_small, _mm256_mul_ps(poly, _mm256_castsi256_ps(bits)));
}

// Maximum of all lanes, broadcast to every lane.
inline Reg vallreduce_max(Reg x) {
  x = _mm256_max_ps(x, _mm256_permute2f128_ps(x, x, 0x01));
  x = _mm256_max_ps(x, _mm256_permute_ps(x, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm256_max_ps(x, _mm256_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1)));
}
inline float vfirst(Reg x) {
  return _mm256_cvtss_f32(x);
}

// The selection key of the top-k rule: NaN ranks as +inf.
inline Reg vselection_key(Reg x) {
  return _mm256_blendv_ps(x, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
// Bit i set when lane i of a is >= lane i of b (false for NaN).
inline uint32_t vmask_ge(Reg a, Reg b) {
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_GE_OQ)));
}

// For int8 linear layers. vmin: as vminps, the second operand when either is NaN.
inline Reg vmin(Reg a, Reg b) {
  return _mm256_min_ps(a, b);
}
// int32 to float, rounding to nearest even (exact below 2^24).
inline Reg vload_int32(const int32_t* p) {
  return _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// Stores kLanes bytes from lanes that hold whole numbers in [0, 255].
inline void vstore_u8(uint8_t* p, Reg whole) {
  const __m256i i32 = _mm256_cvtps_epi32(whole);
  const __m128i i16 =
      _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(i16, i16));
}

// Stores kLanes bfloat16s: each lane rounded to nearest even, NaN kept NaN and made quiet
// (the bits of dfss::float_to_bf16).
inline void vstore_bf16(uint16_t* p, Reg v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
  const __m256i quiet_nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  const __m256i result = _mm256_blendv_epi8(rounded, quiet_nan, nan);
  // Every lane is below 2^16: the unsigned saturating pack keeps it.
  const __m128i packed =
      _mm_packus_epi32(_mm256_castsi256_si128(result), _mm256_extracti128_si256(result, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
