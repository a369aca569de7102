// In-register N:M selection on AVX-512 for M = 2, 4 and 8, where groups tile the 16
// lanes. Every lane counts the group members that outrank it (larger, or equal at a lower
// column; NaN as +inf) through in-group rotations, keeps itself if fewer than N do, and
// the kept lanes are compressed in register and written with a masked store (a compress
// with a memory destination is microcoded on AMD).

namespace dfss::kernels::DFSS_KERNEL_NS {

inline __m512 nm_selection_keys(__m512 x) {
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_mov_ps(x, nan, _mm512_set1_ps(INFINITY));
}

// Lanes outranked by `rotated` (the member k places later in the group): rotated is larger,
// or equal and at a lower column (tie_lanes: lanes whose k-th successor wrapped around).
inline __mmask16 outranked_by(__m512 rotated, __m512 x, __mmask16 tie_lanes) {
  return _mm512_cmp_ps_mask(rotated, x, _CMP_GT_OQ) |
         (_mm512_cmp_ps_mask(rotated, x, _CMP_EQ_OQ) & tie_lanes);
}

inline __mmask16 keep_lanes_m2(__m512 x) {
  return static_cast<__mmask16>(~outranked_by(_mm512_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1)), x, 0xAAAA));
}

inline __mmask16 keep_lanes_m4(__m512 x, int n) {
  const __mmask16 b1 = outranked_by(_mm512_permute_ps(x, _MM_SHUFFLE(0, 3, 2, 1)), x, 0x8888);
  const __mmask16 b2 = outranked_by(_mm512_permute_ps(x, _MM_SHUFFLE(1, 0, 3, 2)), x, 0xCCCC);
  const __mmask16 b3 = outranked_by(_mm512_permute_ps(x, _MM_SHUFFLE(2, 1, 0, 3)), x, 0xEEEE);
  __mmask16 dropped;
  if (n == 1) {
    dropped = b1 | b2 | b3;
  } else if (n == 2) {
    dropped = (b1 & b2) | (b1 & b3) | (b2 & b3);
  } else {
    dropped = b1 & b2 & b3;
  }
  return static_cast<__mmask16>(~dropped);
}

// 2:4 fast path: every lane compares itself with its group's second-largest key (found by
// 8 min/max/permute operations). The two largest always pass, so 8 passing lanes means
// exactly two per group; more means a tie at the threshold, which the rank count settles.
inline __mmask16 keep_lanes_2of4(__m512 x) {
  const __m512 swapped = _mm512_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1));
  const __m512 pair_hi = _mm512_max_ps(x, swapped);
  const __m512 pair_lo = _mm512_min_ps(x, swapped);
  const __m512 other_hi = _mm512_permute_ps(pair_hi, _MM_SHUFFLE(1, 0, 3, 2));
  const __m512 other_lo = _mm512_permute_ps(pair_lo, _MM_SHUFFLE(1, 0, 3, 2));
  const __m512 second = _mm512_max_ps(_mm512_min_ps(pair_hi, other_hi), _mm512_max_ps(pair_lo, other_lo));
  const __mmask16 keep = _mm512_cmp_ps_mask(x, second, _CMP_GE_OQ);
  return std::popcount(static_cast<unsigned>(keep)) == 8 ? keep : keep_lanes_m4(x, 2);
}

inline __mmask16 keep_lanes_m8(__m512 x, int n) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i half = _mm512_and_si512(lane, _mm512_set1_epi32(8));
  const __m512i in_group = _mm512_and_si512(lane, _mm512_set1_epi32(7));
  __m512i outranked = _mm512_setzero_si512();
  for (int k = 1; k < 8; ++k) {
    const __m512i successor = _mm512_or_si512(
        half, _mm512_and_si512(_mm512_add_epi32(in_group, _mm512_set1_epi32(k)), _mm512_set1_epi32(7)));
    const __mmask16 tie_lanes = _mm512_cmpge_epi32_mask(in_group, _mm512_set1_epi32(8 - k));
    const __mmask16 beaten = outranked_by(_mm512_permutexvar_ps(successor, x), x, tie_lanes);
    outranked = _mm512_mask_add_epi32(outranked, beaten, outranked, _mm512_set1_epi32(1));
  }
  return _mm512_cmplt_epi32_mask(outranked, _mm512_set1_epi32(n));
}

inline bool select_row_fast(const float* row, int64_t span_keys, int n, int m, int64_t key0,
                            KeptIndex index, float* kept_values, int32_t* kept_columns) {
  if (m != 2 && m != 4 && m != 8) return false;
  const int kept_per_vector = 16 / m * n;
  const __mmask16 store_mask = static_cast<__mmask16>((1u << kept_per_vector) - 1);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i limit = _mm512_set1_epi32(static_cast<int>(std::min<int64_t>(index.limit, INT32_MAX)));
  const __m512i scale = _mm512_set1_epi32(static_cast<int>(index.scale));
  int64_t out = 0;
  for (int64_t c = 0; c < span_keys; c += 16) {
    const __m512 x = _mm512_loadu_ps(row + c);
    const __m512 keys = nm_selection_keys(x);
    const __mmask16 keep = m == 2   ? keep_lanes_m2(keys)
                           : m == 4 ? (n == 2 ? keep_lanes_2of4(keys) : keep_lanes_m4(keys, n))
                                    : keep_lanes_m8(keys, n);
    const __m512i columns = _mm512_mullo_epi32(
        _mm512_min_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int>(key0 + c))), limit),
        scale);
    _mm512_mask_storeu_ps(kept_values + out, store_mask, _mm512_maskz_compress_ps(keep, x));
    _mm512_mask_storeu_epi32(kept_columns + out, store_mask, _mm512_maskz_compress_epi32(keep, columns));
    out += kept_per_vector;
  }
  return true;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
