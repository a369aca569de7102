// u8 · s8 dot products of 4 bytes per 32-bit lane on AVX2, for the int8 block-sparse kernels.

namespace dfss::kernels::DFSS_KERNEL_NS {

using IReg = __m256i;
inline constexpr int kTokenLanes = 8;  // 32-bit lanes, one token each

inline IReg izero() {
  return _mm256_setzero_si256();
}
// kTokenLanes tokens x 4 bytes.
inline IReg iload_u8x4(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline IReg ibroadcast_s8x4(const int8_t* p) {
  int32_t word;
  std::memcpy(&word, p, sizeof(word));
  return _mm256_set1_epi32(word);
}
// acc + Σ_{i<4} x[l][i] · w[i] in each lane l. vpmaddubsw sums two products into int16 with
// saturation: exact while |w| <= 63 (255 · 63 · 2 < 32767).
inline IReg idot_u8s8(IReg acc, IReg x, IReg w) {
  const __m256i pairs = _mm256_maddubs_epi16(x, w);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
inline void istore(int32_t* p, IReg v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
// out[t · stride + r] = lane t of rows[r] for r < 4, t < 8: four outputs' results for 8
// tokens, written token by token (4 consecutive int32 each).
inline void istore_transposed4(int32_t* out, int64_t stride, const IReg* rows) {
  const __m256i r01_lo = _mm256_unpacklo_epi32(rows[0], rows[1]);  // t0 t1 | t4 t5
  const __m256i r01_hi = _mm256_unpackhi_epi32(rows[0], rows[1]);  // t2 t3 | t6 t7
  const __m256i r23_lo = _mm256_unpacklo_epi32(rows[2], rows[3]);
  const __m256i r23_hi = _mm256_unpackhi_epi32(rows[2], rows[3]);
  const __m256i t04 = _mm256_unpacklo_epi64(r01_lo, r23_lo);  // token 0 | token 4
  const __m256i t15 = _mm256_unpackhi_epi64(r01_lo, r23_lo);
  const __m256i t26 = _mm256_unpacklo_epi64(r01_hi, r23_hi);
  const __m256i t37 = _mm256_unpackhi_epi64(r01_hi, r23_hi);
  const __m256i tokens[4] = {t04, t15, t26, t37};
  for (int t = 0; t < 4; ++t) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + t * stride),
                     _mm256_castsi256_si128(tokens[t]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (t + 4) * stride),
                     _mm256_extracti128_si256(tokens[t], 1));
  }
}
// out[4 t + i] = column_i[t] for t < 16, i < 4: 16 tokens of a quad, interleaved.
inline void interleave_quad16(const uint8_t* c0, const uint8_t* c1, const uint8_t* c2,
                              const uint8_t* c3, uint8_t* out) {
  const auto load = [](const uint8_t* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  };
  const __m128i a = load(c0), b = load(c1), c = load(c2), d = load(c3);
  const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
  const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
  auto* o = reinterpret_cast<__m128i*>(out);
  _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(ab_lo, cd_lo));
  _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
  _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
  _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
}

// dst[j · dst_stride + i] = src[i · src_stride + j] for i, j < 16: four rounds of unpacks,
// bytes, then words, dwords and qwords, each doubling the run of one column's bytes.
inline void transpose16x16_u8(const uint8_t* src, int64_t src_stride, uint8_t* dst,
                              int64_t dst_stride) {
  __m128i rows[16];
  for (int i = 0; i < 16; ++i)
    rows[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * src_stride));
  __m128i pairs[8][2];  // rows 2p, 2p + 1; columns 8h .. 8h + 7
  for (int p = 0; p < 8; ++p) {
    pairs[p][0] = _mm_unpacklo_epi8(rows[2 * p], rows[2 * p + 1]);
    pairs[p][1] = _mm_unpackhi_epi8(rows[2 * p], rows[2 * p + 1]);
  }
  __m128i quads[4][4];  // rows 4q .. 4q + 3; columns 4c .. 4c + 3
  for (int q = 0; q < 4; ++q)
    for (int h = 0; h < 2; ++h) {
      quads[q][2 * h] = _mm_unpacklo_epi16(pairs[2 * q][h], pairs[2 * q + 1][h]);
      quads[q][2 * h + 1] = _mm_unpackhi_epi16(pairs[2 * q][h], pairs[2 * q + 1][h]);
    }
  __m128i octets[2][8];  // rows 8o .. 8o + 7; columns 2c, 2c + 1
  for (int o = 0; o < 2; ++o)
    for (int c = 0; c < 4; ++c) {
      octets[o][2 * c] = _mm_unpacklo_epi32(quads[2 * o][c], quads[2 * o + 1][c]);
      octets[o][2 * c + 1] = _mm_unpackhi_epi32(quads[2 * o][c], quads[2 * o + 1][c]);
    }
  for (int c = 0; c < 8; ++c) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * c * dst_stride),
                     _mm_unpacklo_epi64(octets[0][c], octets[1][c]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (2 * c + 1) * dst_stride),
                     _mm_unpackhi_epi64(octets[0][c], octets[1][c]));
  }
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
