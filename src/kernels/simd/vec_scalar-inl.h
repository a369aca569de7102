// Portable 8-lane "vector" of plain floats, so the scalar path runs the same kernel body
// as the SIMD ones. The compiler may vectorize it with baseline SSE2.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline constexpr int kLanes = 8;
struct Reg {
  float lane[kLanes];
};

inline Reg vzero() {
  return Reg{};
}
inline Reg vset1(float x) {
  Reg r;
  for (float& v : r.lane) v = x;
  return r;
}
inline Reg vload(const float* p) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = p[i];
  return r;
}
inline void vstore(float* p, const Reg& x) {
  for (int i = 0; i < kLanes; ++i) p[i] = x.lane[i];
}
inline Reg vbroadcast(const float* p) {
  return vset1(*p);
}
// A true fused multiply-add, as on the SIMD paths, so that scores (and the N:M selection
// made on them) are the same bits on every ISA.
inline Reg vfmadd(const Reg& a, const Reg& b, const Reg& c) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = std::fma(a.lane[i], b.lane[i], c.lane[i]);
  return r;
}
inline Reg vmul(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] * b.lane[i];
  return r;
}
inline Reg vadd(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] + b.lane[i];
  return r;
}
inline Reg vsub(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] - b.lane[i];
  return r;
}
// Same NaN rule as vmaxps: the second operand wins unless the first is strictly greater.
inline Reg vmax(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] > b.lane[i] ? a.lane[i] : b.lane[i];
  return r;
}
inline Reg vdiv(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] / b.lane[i];
  return r;
}
inline Reg vabs(const Reg& x) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = std::fabs(x.lane[i]);
  return r;
}
// |magnitude| with the sign bit of `sign`.
inline Reg vcopysign(const Reg& magnitude, const Reg& sign) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = std::copysign(magnitude.lane[i], sign.lane[i]);
  return r;
}
inline float vreduce_max(const Reg& x) {
  float m = x.lane[0];
  for (int i = 1; i < kLanes; ++i) m = x.lane[i] > m ? x.lane[i] : m;
  return m;
}
inline float vreduce_add(const Reg& x) {
  float s = 0.0f;
  for (float v : x.lane) s += v;
  return s;
}
inline Reg vexp2(const Reg& x) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = std::exp2(x.lane[i]);
  return r;
}
inline Reg vallreduce_max(const Reg& x) {
  return vset1(vreduce_max(x));
}
inline float vfirst(const Reg& x) {
  return x.lane[0];
}

// The selection key of the top-k rule: NaN ranks as +inf.
inline Reg vselection_key(const Reg& x) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = std::isnan(x.lane[i]) ? INFINITY : x.lane[i];
  return r;
}
// Bit i set when lane i of a is >= lane i of b (false for NaN).
inline uint32_t vmask_ge(const Reg& a, const Reg& b) {
  uint32_t bits = 0;
  for (int i = 0; i < kLanes; ++i) bits |= uint32_t{a.lane[i] >= b.lane[i]} << i;
  return bits;
}

// For int8 linear layers. vmin: as vminps, the second operand when either is NaN.
inline Reg vmin(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] < b.lane[i] ? a.lane[i] : b.lane[i];
  return r;
}
// int32 to float, rounding to nearest even (exact below 2^24).
inline Reg vload_int32(const int32_t* p) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = static_cast<float>(p[i]);
  return r;
}
// Stores kLanes bytes from lanes that hold whole numbers in [0, 255].
inline void vstore_u8(uint8_t* p, const Reg& whole) {
  for (int i = 0; i < kLanes; ++i) p[i] = static_cast<uint8_t>(whole.lane[i]);
}

// Stores kLanes bfloat16s: each lane rounded to nearest even, NaN kept NaN and made quiet.
inline void vstore_bf16(uint16_t* p, const Reg& v) {
  for (int i = 0; i < kLanes; ++i) {
    uint32_t bits;
    __builtin_memcpy(&bits, &v.lane[i], sizeof bits);
    const bool nan = !(v.lane[i] == v.lane[i]);
    p[i] = static_cast<uint16_t>(nan ? (bits >> 16) | 0x40
                                     : (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
  }
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
