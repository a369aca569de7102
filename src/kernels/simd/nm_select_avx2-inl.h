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

// 2:4 without the table: each group of 4 keeps exactly two lanes, so its first kept entry
// is x0, x1 or x2 and its second x3, x2 or x1, chosen by two blends on the dropped mask;
// two vectors' pairs are then packed by fixed shuffles into one full 8-lane store. (The
// table's movemask -> load -> permute chain and the masked tail stores took 1.5x as long.)
inline __m256 select_pairs_2of4(__m256 x, __m256 dropped) {
  // Lane 0 of each group of 4: x0 unless dropped, else x1 unless dropped, else x2; lane 1:
  // x3 unless dropped, else x2 unless dropped, else x1 (lanes 2, 3: don't care).
  const __m256 outer = _mm256_permute_ps(x, _MM_SHUFFLE(3, 0, 3, 0));
  const __m256 inner = _mm256_permute_ps(x, _MM_SHUFFLE(2, 1, 2, 1));
  const __m256 fallback = _mm256_permute_ps(x, _MM_SHUFFLE(1, 2, 1, 2));
  const __m256 outer_dropped = _mm256_permute_ps(dropped, _MM_SHUFFLE(3, 0, 3, 0));
  const __m256 inner_dropped = _mm256_permute_ps(dropped, _MM_SHUFFLE(2, 1, 2, 1));
  return _mm256_blendv_ps(outer, _mm256_blendv_ps(inner, fallback, inner_dropped), outer_dropped);
}

// Lanes 0, 1 of each group of 4 of a, then of b: [a0 a1 a4 a5 b0 b1 b4 b5].
inline __m256 pack_pairs(__m256 a, __m256 b) {
  const __m256 mixed = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0));  // a01 b01 | a45 b45
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
}

// span_keys a multiple of 16 (sparse_span_keys keeps a multiple of 16 per span).
inline void select_row_2of4(const float* row, int64_t span_keys, int64_t key0, KeptIndex index,
                            float* kept_values, int32_t* kept_columns) {
  // Column offsets min(key0 + c + lane, limit) * scale = min((key0 + c + lane) * scale,
  // limit * scale) for scale >= 1, advanced by 8 * scale per vector.
  const auto clamp = [](int64_t value) {
    return static_cast<int>(std::min<int64_t>(value, INT32_MAX));
  };
  const __m256i limit = _mm256_set1_epi32(clamp(index.limit * index.scale));
  const __m256i step = _mm256_set1_epi32(clamp(8 * index.scale));
  __m256i offsets = _mm256_mullo_epi32(
      _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(clamp(key0))),
      _mm256_set1_epi32(clamp(index.scale)));
  for (int64_t c = 0; c < span_keys; c += 16) {
    const __m256 x0 = _mm256_loadu_ps(row + c);
    const __m256 x1 = _mm256_loadu_ps(row + c + 8);
    const __m256 dropped0 = prune_dropped(x0, 2, 4);
    const __m256 dropped1 = prune_dropped(x1, 2, 4);
    const __m256 columns0 = _mm256_castsi256_ps(_mm256_min_epi32(offsets, limit));
    offsets = _mm256_add_epi32(offsets, step);
    const __m256 columns1 = _mm256_castsi256_ps(_mm256_min_epi32(offsets, limit));
    offsets = _mm256_add_epi32(offsets, step);
    _mm256_storeu_ps(kept_values + c / 2,
                     pack_pairs(select_pairs_2of4(x0, dropped0), select_pairs_2of4(x1, dropped1)));
    _mm256_storeu_ps(
        reinterpret_cast<float*>(kept_columns + c / 2),
        pack_pairs(select_pairs_2of4(columns0, dropped0), select_pairs_2of4(columns1, dropped1)));
  }
}

inline bool select_row_fast(const float* row, int64_t span_keys, int n, int m, int64_t key0,
                            KeptIndex index, float* kept_values, int32_t* kept_columns) {
  if (n == 2 && m == 4 && span_keys % 16 == 0) {
    select_row_2of4(row, span_keys, key0, index, kept_values, kept_columns);
    return true;
  }
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
