// 16-lane fp32 vector operations on AVX-512. Included inside one ISA namespace by a
// translation unit compiled with AVX-512 flags; never include it anywhere else.
// (No include guard: each ISA translation unit includes it exactly once.)

namespace dfss::kernels::DFSS_KERNEL_NS {

using Reg = __m512;
inline constexpr int kLanes = 16;

inline Reg vzero() {
  return _mm512_setzero_ps();
}
inline Reg vset1(float x) {
  return _mm512_set1_ps(x);
}
inline Reg vload(const float* p) {
  return _mm512_loadu_ps(p);
}
inline void vstore(float* p, Reg x) {
  _mm512_storeu_ps(p, x);
}
inline Reg vbroadcast(const float* p) {
  return _mm512_set1_ps(*p);
}
inline Reg vfmadd(Reg a, Reg b, Reg c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline Reg vmul(Reg a, Reg b) {
  return _mm512_mul_ps(a, b);
}
inline Reg vadd(Reg a, Reg b) {
  return _mm512_add_ps(a, b);
}
inline Reg vsub(Reg a, Reg b) {
  return _mm512_sub_ps(a, b);
}
// NaN-propagating in `b`: vmaxps returns its second operand when either is NaN.
inline Reg vmax(Reg a, Reg b) {
  return _mm512_max_ps(a, b);
}
inline Reg vdiv(Reg a, Reg b) {
  return _mm512_div_ps(a, b);
}
inline Reg vabs(Reg x) {
  return _mm512_abs_ps(x);
}
// |magnitude| with the sign bit of `sign`.
inline Reg vcopysign(Reg magnitude, Reg sign) {
  const Reg sign_bit = _mm512_set1_ps(-0.0f);
  return _mm512_or_ps(_mm512_andnot_ps(sign_bit, magnitude), _mm512_and_ps(sign_bit, sign));
}
inline float vreduce_max(Reg x) {
  return _mm512_reduce_max_ps(x);
}
inline float vreduce_add(Reg x) {
  return _mm512_reduce_add_ps(x);
}

// 2^x for x <= 0 (softmax arguments in log2 units); 2^-inf = 0 exactly, NaN stays NaN.
// x = n + f with |f| <= 1/2, 2^f by a degree-6 polynomial (relative error < 2e-7), 2^n by
// vscalefps.
inline Reg vexp2(Reg x) {
  x = _mm512_max_ps(_mm512_set1_ps(-160.0f), x);  // keeps NaN; 2^-160 rounds to 0
  const Reg n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const Reg f = _mm512_sub_ps(x, n);
  Reg poly = _mm512_set1_ps(1.5403530e-4f);
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(1.3333558e-3f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(9.6181291e-3f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(5.5504109e-2f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(2.4022651e-1f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(6.9314718e-1f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(poly, n);
}

// Maximum of all lanes, broadcast to every lane.
inline Reg vallreduce_max(Reg x) {
  x = _mm512_max_ps(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(1, 0, 3, 2)));
  x = _mm512_max_ps(x, _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(2, 3, 0, 1)));
  x = _mm512_max_ps(x, _mm512_permute_ps(x, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_max_ps(x, _mm512_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1)));
}
inline float vfirst(Reg x) {
  return _mm512_cvtss_f32(x);
}

// The selection key of the top-k rule: NaN ranks as +inf.
inline Reg vselection_key(Reg x) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x, _mm512_set1_ps(INFINITY));
}
// Bit i set when lane i of a is >= lane i of b (false for NaN).
inline uint32_t vmask_ge(Reg a, Reg b) {
  return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ);
}

// For int8 linear layers. vmin: as vminps, the second operand when either is NaN.
inline Reg vmin(Reg a, Reg b) {
  return _mm512_min_ps(a, b);
}
// int32 to float, rounding to nearest even (exact below 2^24).
inline Reg vload_int32(const int32_t* p) {
  return _mm512_cvtepi32_ps(_mm512_loadu_si512(p));
}
// Stores kLanes bytes from lanes that hold whole numbers in [0, 255].
inline void vstore_u8(uint8_t* p, Reg whole) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(whole)));
}

// Stores kLanes bfloat16s: each lane rounded to nearest even, NaN kept NaN and made quiet
// (the bits of dfss::float_to_bf16). Integer steps only, so no AVX512-BF16 is needed.
inline void vstore_bf16(uint16_t* p, Reg v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
  const __m512i quiet_nan = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  const __m512i result = _mm512_mask_mov_epi32(rounded, nan, quiet_nan);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(result));
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
