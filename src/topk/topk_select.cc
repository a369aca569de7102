// Delegate filtering of one row, the radix select and sort on integer keys, and the
// unordered selection built on them.
#include "topk/topk_select.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>

namespace dfss::topk {
namespace {

// Delegate groups of about L / (2k) elements give 2 * (L / group) >= 4k delegates, whose
// k-th largest is close to the row's k-th largest (the kept fraction is then about
// 1.03-1.15 k / L for k / L in 1/8 .. 1/64). Long groups make blocks of group * lanes
// elements that are opened whole, so for long rows with small k the group is held to about
// sqrt(L / k) vectors: a few more delegates, far fewer elements scanned twice.
double tuning(const char* name, double fallback) {
  const char* text = std::getenv(name);
  return text ? std::atof(text) : fallback;
}

}  // namespace

int64_t delegate_span(int64_t length, int64_t k, int lanes) {
  static const double kPerDelegate = tuning("DFSS_TOPK_A", 2.0);
  static const double kSqrtScale = tuning("DFSS_TOPK_C", 1.0);
  static const double kMinLength = tuning("DFSS_TOPK_MIN", 128.0);
  if (static_cast<double>(length) < kMinLength) return 0;
  const double ratio = static_cast<double>(length) / static_cast<double>(k);
  const double longest = std::max(8.0, kSqrtScale * std::sqrt(ratio));
  const auto group = static_cast<int64_t>(std::min(ratio / kPerDelegate, longest));
  if (group < 2) return 0;
  // At least k delegates (2 per group of a full block of lanes vectors).
  const int64_t vectors = length / lanes;
  const int64_t groups = (vectors + group - 1) / group * lanes;
  return 2 * groups >= k ? group : 0;
}

int64_t gather_keys(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                    int64_t k, SelectScratch& scratch) {
  const int lanes = kernels.lanes;
  uint32_t* keys = scratch.keys.get(length + lanes);
  int32_t* indices = scratch.indices.get(length + lanes);
  const int64_t group = delegate_span(length, k, lanes);
  if (group == 0) return kernels.gather(row, length, 0, nullptr, 1, keys, indices);
  const int64_t groups = (length / lanes + group - 1) / group * lanes;
  uint32_t* delegates = scratch.delegates.get(2 * groups + lanes);
  kernels.group_delegates(row, length, group, delegates, delegates + groups);
  const uint32_t bound =
      kth_largest_key(delegates, 2 * groups, k, scratch.select.get(2 * groups)).key;
  return kernels.gather(row, length, group, delegates, bound, keys, indices);
}

int64_t gather_candidates(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                          int64_t k, SelectScratch& scratch) {
  const int64_t count = gather_keys(kernels, row, length, k, scratch);
  const uint32_t* keys = scratch.keys.get(0);
  const int32_t* indices = scratch.indices.get(0);
  scratch.candidates.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    scratch.candidates[static_cast<size_t>(i)] = {kernels::topk_key_value(keys[i]), indices[i]};
  return count;
}

Cut find_cut(const kernels::TopkKernels& kernels, const float* row, int64_t length, int64_t k,
             SelectScratch& scratch) {
  const int64_t count = gather_keys(kernels, row, length, k, scratch);
  uint32_t* keys = scratch.keys.get(0);
  const KthKey kth = kth_largest_key(keys, count, k, keys);  // the keys are not needed after
  return {kernels::topk_key_value(kth.key), k - kth.above, k};
}

int64_t write_selected(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                       Cut cut, int32_t* indices) {
  const int64_t capacity = cut.selected > 0 ? cut.selected : length;
  return kernels.write_cut(row, length, kernels::topk_key(cut.key), cut.ties, indices, capacity);
}

int64_t write_selected(const float* row, int64_t length, Cut cut, int32_t* indices) {
  static const kernels::TopkKernels& kernels = kernels::topk_kernels(default_isa());
  return write_selected(kernels, row, length, cut, indices);
}

KthKey kth_largest_key(const uint32_t* keys, int64_t n, int64_t k, uint32_t* scratch) {
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, keys[i]);
    hi = std::max(hi, keys[i]);
  }
  int64_t above = 0;
  const uint32_t* from = keys;
  uint32_t count[2048];
  // Each pass histograms the keys left on their top `bits` bits above lo, finds the bucket
  // of the k-th largest and keeps that bucket's keys only.
  while (lo != hi) {
    const int bits =
        std::clamp(static_cast<int>(std::bit_width(static_cast<uint64_t>(n))) - 2, 4, 11);
    const int shift = std::max(0, static_cast<int>(std::bit_width(hi - lo)) - bits);
    const uint32_t buckets = ((hi - lo) >> shift) + 1;
    std::fill(count, count + buckets, 0u);
    for (int64_t i = 0; i < n; ++i) ++count[(from[i] - lo) >> shift];
    uint32_t bucket = buckets - 1;
    int64_t larger = 0;
    while (larger + count[bucket] < k) larger += count[bucket--];
    above += larger;
    k -= larger;
    if (shift == 0) return {lo + bucket, above};
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t key = from[i];
      scratch[kept] = key;
      kept += ((key - lo) >> shift) == bucket;
    }
    n = kept;
    from = scratch;
    lo = UINT32_MAX;
    hi = 0;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, from[i]);
      hi = std::max(hi, from[i]);
    }
  }
  return {lo, above};
}

uint64_t* sort_packed(uint64_t* a, uint64_t* scratch, int64_t n) {
  if (n <= 16) {
    for (int64_t i = 1; i < n; ++i) {
      const uint64_t v = a[i];
      int64_t j = i;
      for (; j > 0 && a[j - 1] > v; --j) a[j] = a[j - 1];
      a[j] = v;
    }
    return a;
  }
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto key = static_cast<uint32_t>(a[i] >> 32);
    lo = std::min(lo, key);
    hi = std::max(hi, key);
  }
  const int width = static_cast<int>(std::bit_width(hi - lo));
  if (width == 0) return a;  // one key: index order is rank order
  const int most =
      std::clamp(static_cast<int>(std::bit_width(static_cast<uint64_t>(n))) - 1, 4, 11);
  const int passes = (width + most - 1) / most;
  const int bits = (width + passes - 1) / passes;
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  uint32_t count[2048];
  for (int pass = 0; pass < passes; ++pass) {
    const int shift = 32 + pass * bits;
    std::fill(count, count + mask + 1, 0u);
    for (int64_t i = 0; i < n; ++i)
      ++count[((static_cast<uint32_t>(a[i] >> 32) - lo) >> (shift - 32)) & mask];
    uint32_t sum = 0;
    for (uint32_t d = 0; d <= mask; ++d) {
      const uint32_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; ++i)
      scratch[count[((static_cast<uint32_t>(a[i] >> 32) - lo) >> (shift - 32)) & mask]++] = a[i];
    std::swap(a, scratch);
  }
  return a;
}

}  // namespace dfss::topk
