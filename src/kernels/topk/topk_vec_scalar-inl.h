// Top-k key operations on the portable 8-lane "vector" of vec_scalar-inl.h: the integer
// selection keys of topk-inl.h and the packing of selected lanes, lane by lane.

namespace dfss::kernels::DFSS_KERNEL_NS {

struct KeyReg {
  int32_t lane[kLanes];
};

// minps's rule: the second operand unless the first is strictly smaller.
inline Reg tk_min(const Reg& a, const Reg& b) {
  Reg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = a.lane[i] < b.lane[i] ? a.lane[i] : b.lane[i];
  return r;
}
inline KeyReg tk_signed_keys(const Reg& x) {
  KeyReg r;
  for (int i = 0; i < kLanes; ++i)
    r.lane[i] = static_cast<int32_t>(topk_key(x.lane[i]) ^ 0x80000000u);
  return r;
}
inline KeyReg tk_set1(int32_t x) {
  KeyReg r;
  for (int32_t& v : r.lane) v = x;
  return r;
}
inline KeyReg tk_load_keys(const uint32_t* p) {
  KeyReg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = static_cast<int32_t>(p[i] ^ 0x80000000u);
  return r;
}
inline void tk_store_keys(uint32_t* p, const Reg& x) {
  for (int i = 0; i < kLanes; ++i) p[i] = topk_key(x.lane[i]);
}
inline uint32_t tk_mask_gt(const KeyReg& a, const KeyReg& b) {
  uint32_t bits = 0;
  for (int i = 0; i < kLanes; ++i) bits |= static_cast<uint32_t>(a.lane[i] > b.lane[i]) << i;
  return bits;
}
inline uint32_t tk_mask_eq(const KeyReg& a, const KeyReg& b) {
  uint32_t bits = 0;
  for (int i = 0; i < kLanes; ++i) bits |= static_cast<uint32_t>(a.lane[i] == b.lane[i]) << i;
  return bits;
}
inline int tk_pack(uint32_t* keys, int32_t* indices, const KeyReg& signed_keys, uint32_t mask,
                   int32_t first) {
  int count = 0;
  for (int i = 0; i < kLanes; ++i) {
    keys[count] = static_cast<uint32_t>(signed_keys.lane[i]) ^ 0x80000000u;
    indices[count] = first + i;
    count += (mask >> i) & 1;
  }
  return count;
}
inline KeyReg tk_load_raw(const uint32_t* p) {
  KeyReg r;
  for (int i = 0; i < kLanes; ++i) r.lane[i] = static_cast<int32_t>(p[i]);
  return r;
}
inline uint32_t tk_mask_in_range(const KeyReg& raw, uint32_t first, uint32_t span) {
  uint32_t bits = 0;
  for (int i = 0; i < kLanes; ++i)
    bits |= static_cast<uint32_t>(static_cast<uint32_t>(raw.lane[i]) - first <= span) << i;
  return bits;
}
inline int tk_pack_raw(uint32_t* out, const KeyReg& raw, uint32_t mask) {
  int count = 0;
  for (int i = 0; i < kLanes; ++i) {
    out[count] = static_cast<uint32_t>(raw.lane[i]);
    count += (mask >> i) & 1;
  }
  return count;
}
inline int tk_pack_indices(int32_t* indices, uint32_t mask, int32_t first) {
  int count = 0;
  for (int i = 0; i < kLanes; ++i) {
    indices[count] = first + i;
    count += (mask >> i) & 1;
  }
  return count;
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
