// In-register N:M selection of a forward score row on AVX2 for M = 2, 4 and 8, where groups
// tile the 8 lanes: the lanes to drop come from nm_prune_avx2-inl.h's rank count (the same
// rule as the generic code and the AVX-512 selection), and the kept lanes are compressed with
// a permutation looked up from the 8-bit keep mask (AVX2 has no compress instruction).

namespace dfss::kernels::DFSS_KERNEL_NS {

// For each 8-bit keep mask: the kept lanes' indices in increasing order, then zeros.
struct CompressTable {
  alignas(64) uint8_t lanes[256][8];
  constexpr CompressTable() : lanes{} {
    for (int mask = 0; mask < 256; ++mask) {
      int out = 0;
      for (int lane = 0; lane < 8; ++lane)
        if (mask >> lane & 1) lanes[mask][out++] = static_cast<uint8_t>(lane);
    }
  }
};
inline constexpr CompressTable kCompressTable{};

inline bool select_row_fast(const float* row, int64_t span_keys, int n, int m, int64_t key0,
                            KeptIndex index, float* kept_values, int32_t* kept_columns) {
  if (m != 2 && m != 4 && m != 8) return false;
  const int kept_per_vector = 8 / m * n;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i limit =
      _mm256_set1_epi32(static_cast<int>(std::min<int64_t>(index.limit, INT32_MAX)));
  const __m256i scale = _mm256_set1_epi32(static_cast<int>(index.scale));
  // Vectors whose 8-lane store would run past the row's kept entries (into the next row's, or
  // past the last row into the kept columns) are stored through a mask.
  const __m256i tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(kept_per_vector), lane);
  const int64_t kept_total = span_keys / m * n;
  int64_t out = 0;
  for (int64_t c = 0; c < span_keys; c += 8) {
    const __m256 x = _mm256_loadu_ps(row + c);
    const int keep = ~_mm256_movemask_ps(prune_dropped(x, n, m)) & 0xFF;
    const __m256i permutation = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kCompressTable.lanes[keep])));
    const __m256i columns = _mm256_mullo_epi32(
        _mm256_min_epi32(_mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>(key0 + c))),
                         limit),
        scale);
    const __m256 values = _mm256_permutevar8x32_ps(x, permutation);
    const __m256i kept = _mm256_permutevar8x32_epi32(columns, permutation);
    if (out + 8 <= kept_total) {
      _mm256_storeu_ps(kept_values + out, values);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(kept_columns + out), kept);
    } else {
      _mm256_maskstore_ps(kept_values + out, tail_mask, values);
      _mm256_maskstore_epi32(kept_columns + out, tail_mask, kept);
    }
    out += kept_per_vector;
  }
  return true;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
