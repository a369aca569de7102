// Top-k key operations on AVX-512 (16 lanes), next to vec_avx512-inl.h: the integer
// selection keys of topk-inl.h and the packing of selected lanes (vpcompressd into a
// register, then a plain store: the memory form is slow on some CPUs). Included inside the
// ISA namespace of a translation unit compiled with AVX-512 flags; never include it anywhere
// else.

namespace dfss::kernels::DFSS_KERNEL_NS {

using KeyReg = __m512i;

// minps: the second operand when either is NaN.
inline Reg tk_min(Reg a, Reg b) {
  return _mm512_min_ps(a, b);
}

// Signed integer keys whose order is the selection order: NaN -> +inf, -0 -> +0, then the
// float bits with the magnitude bits of negative numbers flipped.
inline KeyReg tk_signed_keys(Reg x) {
  const Reg key =
      _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q),
                           _mm512_add_ps(x, _mm512_setzero_ps()), _mm512_set1_ps(INFINITY));
  const __m512i bits = _mm512_castps_si512(key);
  return _mm512_xor_si512(bits, _mm512_srli_epi32(_mm512_srai_epi32(bits, 31), 1));
}
inline KeyReg tk_set1(int32_t x) {
  return _mm512_set1_epi32(x);
}
inline KeyReg tk_load_keys(const uint32_t* p) {
  return _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi32(INT32_MIN));
}
inline void tk_store_keys(uint32_t* p, Reg x) {
  _mm512_storeu_si512(p, _mm512_xor_si512(tk_signed_keys(x), _mm512_set1_epi32(INT32_MIN)));
}
inline uint32_t tk_mask_gt(KeyReg a, KeyReg b) {
  return _mm512_cmpgt_epi32_mask(a, b);
}
inline uint32_t tk_mask_eq(KeyReg a, KeyReg b) {
  return _mm512_cmpeq_epi32_mask(a, b);
}
inline __m512i tk_lane_numbers() {
  return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
// Writes the (unsigned) keys and the indices first + lane of the lanes in `mask`, packed,
// to keys[0, 16) and indices[0, 16) (lanes past the count are zero); returns the count.
inline int tk_pack(uint32_t* keys, int32_t* indices, KeyReg signed_keys, uint32_t mask,
                   int32_t first) {
  const __mmask16 m = static_cast<__mmask16>(mask);
  _mm512_storeu_si512(keys, _mm512_maskz_compress_epi32(
                                m, _mm512_xor_si512(signed_keys, _mm512_set1_epi32(INT32_MIN))));
  _mm512_storeu_si512(indices,
                      _mm512_maskz_compress_epi32(
                          m, _mm512_add_epi32(tk_lane_numbers(), _mm512_set1_epi32(first))));
  return std::popcount(mask);
}
// Raw (unsigned) keys, for the radix select: lanes whose key is in [first, first + span].
inline KeyReg tk_load_raw(const uint32_t* p) {
  return _mm512_loadu_si512(p);
}
inline uint32_t tk_mask_in_range(KeyReg raw, uint32_t first, uint32_t span) {
  return _mm512_cmple_epu32_mask(
      _mm512_sub_epi32(raw, _mm512_set1_epi32(static_cast<int32_t>(first))),
      _mm512_set1_epi32(static_cast<int32_t>(span)));
}
inline int tk_pack_raw(uint32_t* out, KeyReg raw, uint32_t mask) {
  _mm512_storeu_si512(out, _mm512_maskz_compress_epi32(static_cast<__mmask16>(mask), raw));
  return std::popcount(mask);
}
// The same for the indices alone.
inline int tk_pack_indices(int32_t* indices, uint32_t mask, int32_t first) {
  _mm512_storeu_si512(indices, _mm512_maskz_compress_epi32(
                                   static_cast<__mmask16>(mask),
                                   _mm512_add_epi32(tk_lane_numbers(), _mm512_set1_epi32(first))));
  return std::popcount(mask);
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
