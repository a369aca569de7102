// The fused epilogues of the linear-layer kernels (kernels/fused_epilogue.h), on the vector
// operations of the including translation unit (DFSS_KERNEL_NS and its vec_*-inl.h). No include
// guard: each ISA translation unit includes it once.

namespace dfss::kernels::DFSS_KERNEL_NS {

// GELU(z) = z/2 (1 + erf(z/√2)) with Abramowitz & Stegun's erf 7.1.26 (absolute error
// < 1.5e-7): erf(u) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-u²), t = 1/(1 + p u)
// for u >= 0, odd in u. NaN stays NaN.
inline Reg gelu_erf(Reg z) {
  const Reg u = vmul(vabs(z), vset1(0.70710678118654752f));
  const Reg t = vdiv(vset1(1.0f), vfmadd(u, vset1(0.3275911f), vset1(1.0f)));
  Reg poly = vset1(1.061405429f);
  poly = vfmadd(poly, t, vset1(-1.453152027f));
  poly = vfmadd(poly, t, vset1(1.421413741f));
  poly = vfmadd(poly, t, vset1(-0.284496736f));
  poly = vfmadd(poly, t, vset1(0.254829592f));
  poly = vmul(poly, t);
  // e^(-u²) = 2^(-u² log2 e): the argument is <= 0, as vexp2 needs.
  const Reg gauss = vexp2(vmul(vmul(u, u), vset1(-1.44269504088896341f)));
  const Reg erf_abs = vsub(vset1(1.0f), vmul(poly, gauss));
  const Reg one_plus_erf = vadd(vset1(1.0f), vcopysign(erf_abs, z));
  return vmul(vmul(vset1(0.5f), z), one_plus_erf);
}

// The epilogue of one vector of results; `old` is y's value (add_residual only).
inline Reg apply_epilogue(Reg acc, Reg old, FusedEpilogue epilogue) {
  switch (epilogue) {
    case FusedEpilogue::gelu_erf: return gelu_erf(acc);
    case FusedEpilogue::add_residual: return vadd(old, acc);
    default: return acc;
  }
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
