// The top-k row passes, written once and compiled per ISA (DFSS_KERNEL_NS and the
// vec_<isa>-inl.h operations, as for the attention kernels). Delegate filtering: the largest
// key of each subrange (its delegate) is an element of the row, so the k-th largest delegate
// is a lower bound of the row's k-th largest key; only elements at or above it can be in the
// top k, and only subranges whose delegate reaches it can hold such elements.

namespace dfss::kernels::DFSS_KERNEL_NS {

inline float topk_scalar_key(float x) {
  return std::isnan(x) ? INFINITY : x;
}

inline void topk_delegates(const float* x, int64_t length, int64_t span, float* delegates) {
  for (int64_t begin = 0, s = 0; begin < length; begin += span, ++s) {
    const int64_t end = std::min(length, begin + span);
    Reg best = vset1(-INFINITY);
    int64_t j = begin;
    for (; j + kLanes <= end; j += kLanes) best = vmax(best, vselection_key(vload(x + j)));
    float delegate = vreduce_max(best);
    for (; j < end; ++j) {
      const float key = topk_scalar_key(x[j]);
      delegate = key > delegate ? key : delegate;
    }
    delegates[s] = delegate;
  }
}

inline int64_t topk_candidates(const float* x, int64_t length, int64_t span, const float* delegates,
                               float threshold, TopkCandidate* out) {
  const Reg bound = vset1(threshold);
  int64_t count = 0;
  for (int64_t begin = 0, s = 0; begin < length; begin += span, ++s) {
    if (!(delegates[s] >= threshold)) continue;
    const int64_t end = std::min(length, begin + span);
    int64_t j = begin;
    for (; j + kLanes <= end; j += kLanes) {
      const Reg keys = vselection_key(vload(x + j));
      for (uint32_t hits = vmask_ge(keys, bound); hits != 0; hits &= hits - 1) {
        const int64_t at = j + std::countr_zero(hits);
        out[count++] = {topk_scalar_key(x[at]), static_cast<int32_t>(at)};
      }
    }
    for (; j < end; ++j) {
      const float key = topk_scalar_key(x[j]);
      if (key >= threshold) out[count++] = {key, static_cast<int32_t>(j)};
    }
  }
  return count;
}

inline TopkKernels make_topk_kernels(const char* name) {
  return {name, kLanes, &topk_delegates, &topk_candidates};
}

}  // namespace dfss::kernels::DFSS_KERNEL_NS
