// In-register N:M pruning of a backward tile row on AVX2 for M = 2, 4 and 8, where groups
// tile the 8 lanes: every lane counts the group members that outrank it (larger, or equal
// at a lower column; NaN as +inf) through in-group rotations, as nm_select_avx512-inl.h
// does, and a lane that N or more outrank becomes -inf.

namespace dfss::kernels::DFSS_KERNEL_NS {

// Lanes outranked by `rotated` (the member k places later in the group): rotated is
// larger, or equal at a lower column (tie_lanes: lanes whose k-th successor wrapped).
inline __m256 prune_outranked_by(__m256 rotated, __m256 x, __m256 tie_lanes) {
  return _mm256_or_ps(_mm256_cmp_ps(rotated, x, _CMP_GT_OQ),
                      _mm256_and_ps(_mm256_cmp_ps(rotated, x, _CMP_EQ_OQ), tie_lanes));
}

// All-ones in the lanes of each group of 4 at in-group positions >= 4 - k (twice).
inline __m256 prune_lanes4(int a, int b, int c, int d) {
  return _mm256_castsi256_ps(_mm256_setr_epi32(a, b, c, d, a, b, c, d));
}

// The dropped lanes of one vector of keys.
inline __m256 prune_dropped_m2(__m256 x) {
  return prune_outranked_by(_mm256_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1)), x,
                            prune_lanes4(0, -1, 0, -1));
}

inline __m256 prune_dropped_m4(__m256 x, int n) {
  const __m256 w1 = prune_lanes4(0, 0, 0, -1), w2 = prune_lanes4(0, 0, -1, -1),
               w3 = prune_lanes4(0, -1, -1, -1);
  const __m256 b1 = prune_outranked_by(_mm256_permute_ps(x, _MM_SHUFFLE(0, 3, 2, 1)), x, w1);
  const __m256 b2 = prune_outranked_by(_mm256_permute_ps(x, _MM_SHUFFLE(1, 0, 3, 2)), x, w2);
  const __m256 b3 = prune_outranked_by(_mm256_permute_ps(x, _MM_SHUFFLE(2, 1, 0, 3)), x, w3);
  if (n == 1) return _mm256_or_ps(_mm256_or_ps(b1, b2), b3);
  if (n == 2) return _mm256_or_ps(_mm256_and_ps(b1, _mm256_or_ps(b2, b3)), _mm256_and_ps(b2, b3));
  return _mm256_and_ps(_mm256_and_ps(b1, b2), b3);
}

inline __m256 prune_dropped_m8(__m256 x, int n) {
  __m256i outranked = _mm256_setzero_si256();
  for (int k = 1; k < 8; ++k) {
    const __m256i successor = _mm256_setr_epi32(k & 7, (1 + k) & 7, (2 + k) & 7, (3 + k) & 7,
                                                (4 + k) & 7, (5 + k) & 7, (6 + k) & 7, (7 + k) & 7);
    const __m256i tie_lanes =
        _mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(7 - k));
    const __m256 beaten = prune_outranked_by(_mm256_permutevar8x32_ps(x, successor), x,
                                             _mm256_castsi256_ps(tie_lanes));
    outranked = _mm256_sub_epi32(outranked, _mm256_castps_si256(beaten));  // -1 per member
  }
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(outranked, _mm256_set1_epi32(n - 1)));
}

// The dropped lanes of one vector of scores for M = 2, 4 or 8 (NaN ranks as +inf).
inline __m256 prune_dropped(__m256 v, int n, int m) {
  const __m256 keys =
      _mm256_blendv_ps(v, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return m == 2   ? prune_dropped_m2(keys)
         : m == 4 ? prune_dropped_m4(keys, n)
                  : prune_dropped_m8(keys, n);
}

// x[0, 128) pruned in place; false (untouched) for the other M.
inline bool prune_row_fast(float* x, int n, int m) {
  if (m != 2 && m != 4 && m != 8) return false;
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  for (int c = 0; c < kKeyBlock; c += 8) {
    const __m256 v = _mm256_loadu_ps(x + c);
    _mm256_storeu_ps(x + c, _mm256_blendv_ps(v, neg_inf, prune_dropped(v, n, m)));
  }
  return true;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
