// Portable u8 · s8 dot products of 4 bytes per 32-bit "lane", so the scalar path runs the same
// int8 block-sparse kernel body as the SIMD ones.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr int kTokenLanes = 8;
struct IReg {
  int32_t lane[kTokenLanes];
  uint8_t bytes[4 * kTokenLanes];  // the loaded activations (iload_u8x4) or weights
};

inline IReg izero() {
  return IReg{};
}
inline IReg iload_u8x4(const uint8_t* p) {
  IReg r{};
  std::memcpy(r.bytes, p, sizeof(r.bytes));
  return r;
}
inline IReg ibroadcast_s8x4(const int8_t* p) {
  IReg r{};
  for (int l = 0; l < kTokenLanes; ++l) std::memcpy(r.bytes + 4 * l, p, 4);
  return r;
}
inline IReg idot_u8s8(IReg acc, const IReg& x, const IReg& w) {
  for (int l = 0; l < kTokenLanes; ++l) {
    int32_t sum = 0;
    for (int i = 0; i < 4; ++i)
      sum += int32_t{x.bytes[4 * l + i]} * int32_t{static_cast<int8_t>(w.bytes[4 * l + i])};
    acc.lane[l] += sum;
  }
  return acc;
}
inline void istore(int32_t* p, const IReg& v) {
  std::memcpy(p, v.lane, sizeof(v.lane));
}
inline void istore_transposed4(int32_t* out, int64_t stride, const IReg* rows) {
  for (int t = 0; t < kTokenLanes; ++t)
    for (int r = 0; r < 4; ++r) out[t * stride + r] = rows[r].lane[t];
}
inline void interleave_quad16(const uint8_t* c0, const uint8_t* c1, const uint8_t* c2,
                              const uint8_t* c3, uint8_t* out) {
  for (int t = 0; t < 16; ++t) {
    out[4 * t + 0] = c0[t];
    out[4 * t + 1] = c1[t];
    out[4 * t + 2] = c2[t];
    out[4 * t + 3] = c3[t];
  }
}

inline void transpose16x16_u8(const uint8_t* src, int64_t src_stride, uint8_t* dst,
                              int64_t dst_stride) {
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
