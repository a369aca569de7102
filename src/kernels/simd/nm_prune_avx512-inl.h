// In-register N:M pruning of a backward tile row on AVX-512 for M = 2, 4 and 8, with the
// forward's lane selection (nm_select_avx512-inl.h): a lane not kept becomes -inf.

namespace dfss::kernels::DFSS_KERNEL_NS {

// x[0, 128) pruned in place; false (untouched) for the other M.
inline bool prune_row_fast(float* x, int n, int m) {
  if (m != 2 && m != 4 && m != 8) return false;
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
  for (int c = 0; c < kKeyBlock; c += 16) {
    const __m512 v = _mm512_loadu_ps(x + c);
    const __m512 keys = nm_selection_keys(v);
    const __mmask16 keep = m == 2   ? keep_lanes_m2(keys)
                           : m == 4 ? (n == 2 ? keep_lanes_2of4(keys) : keep_lanes_m4(keys, n))
                                    : keep_lanes_m8(keys, n);
    _mm512_storeu_ps(x + c, _mm512_mask_blend_ps(keep, neg_inf, v));
  }
  return true;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
