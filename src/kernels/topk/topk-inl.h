// The top-k row passes, written once and compiled per ISA (DFSS_KERNEL_NS, the
// vec_<isa>-inl.h operations as for the attention kernels, and the integer-key operations of
// topk_vec_<isa>-inl.h). Delegate filtering: the two largest keys of each group of elements
// (its delegates) are elements of the row, so the k-th largest delegate is a lower bound of
// the row's k-th largest key; only elements at or above it can be in the top k, and only
// blocks with a delegate that reaches it can hold such elements. Groups are lanes of
// consecutive vectors, so the delegates come from vertical max/min, with no horizontal step.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline void topk_group_delegates(const float* x, int64_t length, int64_t group, uint32_t* first,
                                 uint32_t* second) {
  const int64_t vectors = length / kLanes;
  for (int64_t begin = 0, at = 0; begin < vectors; begin += group, at += kLanes) {
    const int64_t end = std::min(vectors, begin + group);
    // Keys, not values: a NaN (key +inf) must open its block. m2 = max(m2, min(m1, e)) takes
    // the smaller of two distinct elements; -0 and +0 may come out either way, and both give
    // the same integer key.
    Reg m1 = vset1(-INFINITY), m2 = m1;
    for (int64_t v = begin; v < end; ++v) {
      const Reg e = vselection_key(vload(x + v * kLanes));
      m2 = vmax(tk_min(m1, e), m2);
      m1 = vmax(e, m1);
    }
    tk_store_keys(first + at, m1);
    tk_store_keys(second + at, m2);
  }
}

inline int64_t topk_gather(const float* x, int64_t length, int64_t group, const uint32_t* first,
                           uint32_t bound, uint32_t* keys, int32_t* indices) {
  // key >= bound as a signed compare: key > bound - 1 (bound >= 1).
  const KeyReg below = tk_set1(static_cast<int32_t>((bound - 1) ^ 0x80000000u));
  const int64_t vectors = length / kLanes;
  int64_t count = 0;
  auto scan = [&](int64_t begin, int64_t end) {
    for (int64_t v = begin; v < end; ++v) {
      const KeyReg key = tk_signed_keys(vload(x + v * kLanes));
      count += tk_pack(keys + count, indices + count, key, tk_mask_gt(key, below),
                       static_cast<int32_t>(v * kLanes));
    }
  };
  if (first == nullptr) {
    scan(0, vectors);
  } else {
    for (int64_t begin = 0, at = 0; begin < vectors; begin += group, at += kLanes) {
      if (tk_mask_gt(tk_load_keys(first + at), below) == 0) continue;
      scan(begin, std::min(vectors, begin + group));
    }
  }
  for (int64_t j = vectors * kLanes; j < length; ++j) {
    const uint32_t key = topk_key(x[j]);
    keys[count] = key;
    indices[count] = static_cast<int32_t>(j);
    count += key >= bound;
  }
  return count;
}

inline int64_t topk_write_cut(const float* x, int64_t length, uint32_t cut, int64_t ties,
                              int32_t* indices, int64_t capacity) {
  const KeyReg at_cut = tk_set1(static_cast<int32_t>(cut ^ 0x80000000u));
  const int64_t vectors = length / kLanes;
  int64_t count = 0;
  for (int64_t v = 0; v < vectors && count < capacity; ++v) {
    const KeyReg key = tk_signed_keys(vload(x + v * kLanes));
    uint32_t equal = tk_mask_eq(key, at_cut);
    if (equal != 0) {  // the first `ties` equal keys only
      const int64_t n = std::popcount(equal);
      if (n <= ties) {
        ties -= n;
      } else {
        uint32_t lowest = 0;
        for (; ties > 0; --ties, equal &= equal - 1) lowest |= equal & (0u - equal);
        equal = lowest;
      }
    }
    const uint32_t mask = tk_mask_gt(key, at_cut) | equal;
    const auto first = static_cast<int32_t>(v * kLanes);
    if (count + kLanes <= capacity) {
      count += tk_pack_indices(indices + count, mask, first);
    } else {
      int32_t packed[kLanes];
      const int n = static_cast<int>(
          std::min<int64_t>(tk_pack_indices(packed, mask, first), capacity - count));
      for (int i = 0; i < n; ++i) indices[count++] = packed[i];
    }
  }
  for (int64_t j = vectors * kLanes; j < length && count < capacity; ++j) {
    const uint32_t key = topk_key(x[j]);
    if (key > cut || (key == cut && ties-- > 0)) indices[count++] = static_cast<int32_t>(j);
  }
  return count;
}

// Plain loops, vectorized by the compiler for the ISA.
inline void topk_key_range(const uint32_t* keys, int64_t n, uint32_t* lo_hi) {
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, keys[i]);
    hi = std::max(hi, keys[i]);
  }
  lo_hi[0] = lo;
  lo_hi[1] = hi;
}

inline int64_t topk_keep_range(const uint32_t* keys, int64_t n, uint32_t first, uint32_t span,
                               uint32_t* out) {
  int64_t count = 0, i = 0;
  // In place (out == keys) too: a vector is loaded before stores reach it, and count <= i.
  for (; i + kLanes <= n; i += kLanes) {
    const KeyReg raw = tk_load_raw(keys + i);
    count += tk_pack_raw(out + count, raw, tk_mask_in_range(raw, first, span));
  }
  for (; i < n; ++i) {
    const uint32_t key = keys[i];
    if (key - first <= span) out[count++] = key;
  }
  return count;
}

inline TopkKernels make_topk_kernels(const char* name) {
  return {name,
          kLanes,
          &topk_group_delegates,
          &topk_gather,
          &topk_write_cut,
          &topk_key_range,
          &topk_keep_range};
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
