// 16-lane fp32 vector operations on AVX-512. Included inside one ISA namespace by a
// translation unit compiled with AVX-512 flags; never include it anywhere else.
// (No include guard: each ISA translation unit includes it exactly once.)

namespace dfss::kernels::DFSS_KERNEL_NS {

using Reg = __m512;
inline constexpr int kLanes = 16;

inline Reg vzero() { return _mm512_setzero_ps(); }
inline Reg vset1(float x) { return _mm512_set1_ps(x); }
inline Reg vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, Reg x) { _mm512_storeu_ps(p, x); }
inline Reg vbroadcast(const float* p) { return _mm512_set1_ps(*p); }
inline Reg vfmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
inline Reg vmul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
inline Reg vadd(Reg a, Reg b) { return _mm512_add_ps(a, b); }
inline Reg vsub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
// NaN-propagating in `b`: vmaxps returns its second operand when either is NaN.
inline Reg vmax(Reg a, Reg b) { return _mm512_max_ps(a, b); }
inline float vreduce_max(Reg x) { return _mm512_reduce_max_ps(x); }
inline float vreduce_add(Reg x) { return _mm512_reduce_add_ps(x); }

// exp(x) to ~2 ulp for x <= 0; exp(-inf) = 0 exactly, NaN stays NaN.
// x = n*ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 Taylor polynomial, 2^n by vscalefps,
// which also underflows cleanly to 0 for the clamped -inf.
inline Reg vexp(Reg x) {
  x = _mm512_max_ps(_mm512_set1_ps(-110.0f), x);  // keeps NaN; 2^-158 rounds to 0
  x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);
  const Reg n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  Reg r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  Reg poly = _mm512_set1_ps(1.0f / 720);
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f / 120));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f / 24));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f / 6));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(0.5f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f));
  poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(poly, n);
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
