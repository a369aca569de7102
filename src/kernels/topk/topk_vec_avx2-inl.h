// Top-k key operations on AVX2 (8 lanes), next to vec_avx2-inl.h: the integer selection
// keys of topk-inl.h and the left-packing of selected lanes. Included inside the ISA
// namespace of a translation unit compiled with AVX2 flags; never include it anywhere else.

namespace dfss::kernels::DFSS_KERNEL_NS {

using KeyReg = __m256i;

// Lane numbers of the set bits of each 8-bit mask, packed from byte 0 (unused bytes 0).
struct TopkPackTable {
  alignas(64) uint64_t lanes[256];
  constexpr TopkPackTable() : lanes() {
    for (int mask = 0; mask < 256; ++mask) {
      uint64_t packed = 0;
      int at = 0;
      for (int lane = 0; lane < 8; ++lane)
        if (mask & (1 << lane)) packed |= static_cast<uint64_t>(lane) << (8 * at++);
      lanes[mask] = packed;
    }
  }
};
inline constexpr TopkPackTable kTopkPackTable{};

// minps: the second operand when either is NaN.
inline Reg tk_min(Reg a, Reg b) {
  return _mm256_min_ps(a, b);
}

// Signed integer keys whose order is the selection order: NaN -> +inf, -0 -> +0, then the
// float bits with the magnitude bits of negative numbers flipped.
inline KeyReg tk_signed_keys(Reg x) {
  const Reg key = _mm256_blendv_ps(_mm256_add_ps(x, _mm256_setzero_ps()), _mm256_set1_ps(INFINITY),
                                   _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  const __m256i bits = _mm256_castps_si256(key);
  return _mm256_xor_si256(bits, _mm256_srli_epi32(_mm256_srai_epi32(bits, 31), 1));
}
inline KeyReg tk_set1(int32_t x) {
  return _mm256_set1_epi32(x);
}
// Unsigned keys in memory, signed in registers (AVX2 compares are signed).
inline KeyReg tk_load_keys(const uint32_t* p) {
  return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                          _mm256_set1_epi32(INT32_MIN));
}
inline void tk_store_keys(uint32_t* p, Reg x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm256_xor_si256(tk_signed_keys(x), _mm256_set1_epi32(INT32_MIN)));
}
inline uint32_t tk_mask_gt(KeyReg a, KeyReg b) {
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b))));
}
inline uint32_t tk_mask_eq(KeyReg a, KeyReg b) {
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b))));
}
inline __m256i tk_pack_lanes(uint32_t mask) {
  return _mm256_cvtepu8_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(&kTopkPackTable.lanes[mask])));
}
// Writes the (unsigned) keys and the indices first + lane of the lanes in `mask`, packed,
// to keys[0, 8) and indices[0, 8) (lanes past the count are garbage); returns the count.
inline int tk_pack(uint32_t* keys, int32_t* indices, KeyReg signed_keys, uint32_t mask,
                   int32_t first) {
  const __m256i lanes = tk_pack_lanes(mask);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys),
                      _mm256_xor_si256(_mm256_permutevar8x32_epi32(signed_keys, lanes),
                                       _mm256_set1_epi32(INT32_MIN)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(indices),
                      _mm256_add_epi32(lanes, _mm256_set1_epi32(first)));
  return std::popcount(mask);
}
// Raw (unsigned) keys, for the radix select: lanes whose key is in [first, first + span].
inline KeyReg tk_load_raw(const uint32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline uint32_t tk_mask_in_range(KeyReg raw, uint32_t first, uint32_t span) {
  const __m256i offset = _mm256_sub_epi32(raw, _mm256_set1_epi32(static_cast<int32_t>(first)));
  const __m256i within = _mm256_cmpeq_epi32(
      _mm256_min_epu32(offset, _mm256_set1_epi32(static_cast<int32_t>(span))), offset);
  return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(within)));
}
inline int tk_pack_raw(uint32_t* out, KeyReg raw, uint32_t mask) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      _mm256_permutevar8x32_epi32(raw, tk_pack_lanes(mask)));
  return std::popcount(mask);
}
// The same for the indices alone.
inline int tk_pack_indices(int32_t* indices, uint32_t mask, int32_t first) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(indices),
                      _mm256_add_epi32(tk_pack_lanes(mask), _mm256_set1_epi32(first)));
  return std::popcount(mask);
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
