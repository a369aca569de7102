// Delegate filtering of one row, the radix select and sort on integer keys, and the
// unordered selection built on them.
#include "topk/topk_select.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace dfss::topk {
// Groups of L / k vectors give 2L / group = 2k delegates, whose k-th largest is close to the
// row's k-th largest key. Up to 8 vectors the groups are longer when k / L is smaller: more
// delegates per k (1024 for L = 4096, k = 256: about 1.03 k candidates). For long rows with
// small k, blocks of group * lanes elements are opened whole, so the group is held to about
// sqrt(L / k) vectors: more delegates, far fewer elements scanned in opened blocks.
int64_t delegate_span(int64_t length, int64_t k, int lanes) {
  if (length < 128) return 0;
  const double ratio = static_cast<double>(length) / static_cast<double>(k);
  const auto group = static_cast<int64_t>(std::min(ratio, std::max(8.0, std::sqrt(ratio))));
  if (group < 2) return 0;
  // At least k delegates (2 per group; a block of lanes groups per `group` vectors).
  const int64_t groups = (length / lanes + group - 1) / group * lanes;
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
  // A bound a little below the k-th largest delegate (the lower edge of a radix bucket of
  // at most k / 32 delegates) is about as tight and saves select passes.
  const int64_t slack = std::max<int64_t>(4, k / 32);
  const uint32_t bound =
      kth_largest_key(kernels, delegates, 2 * groups, k, scratch.select.get(2 * groups), slack).key;
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
  const KthKey kth =
      kth_largest_key(kernels, keys, count, k, keys);  // the keys are not needed after
  return {kernels::topk_key_value(kth.key), k - kth.above, k};
}

int64_t write_selected(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                       Cut cut, int32_t* indices) {
  const uint32_t key = kernels::topk_key(cut.key);
  if (cut.selected > 0) return kernels.write_cut(row, length, key, cut.ties, indices, cut.selected);
  // A cut not from find_cut: how many it selects is not known, so no whole-vector stores.
  int64_t count = 0, ties = cut.ties;
  for (int64_t j = 0; j < length; ++j) {
    const uint32_t at = kernels::topk_key(row[j]);
    if (at > key || (at == key && ties-- > 0)) indices[count++] = static_cast<int32_t>(j);
  }
  return count;
}

int64_t write_selected(const float* row, int64_t length, Cut cut, int32_t* indices) {
  static const kernels::TopkKernels& kernels = kernels::topk_kernels(default_isa());
  return write_selected(kernels, row, length, cut, indices);
}

KthKey kth_largest_key(const kernels::TopkKernels& kernels, const uint32_t* keys, int64_t n,
                       int64_t k, uint32_t* scratch, int64_t slack) {
  uint32_t range[2];
  kernels.key_range(keys, n, range);
  uint32_t lo = range[0], hi = range[1];
  int64_t above = 0;
  const uint32_t* from = keys;
  // Four histograms, summed after each pass: runs of keys in one bucket (common: float keys
  // crowd into few exponents) would otherwise chain every increment through memory.
  constexpr int kHistograms = 4;
  uint32_t counts[kHistograms][2048];
  uint32_t* count = counts[0];
  // Each pass histograms the keys left on their top `bits` bits above lo, finds the bucket
  // of the k-th largest and keeps that bucket's keys only.
  while (lo != hi) {
    const int bits =
        std::clamp(static_cast<int>(std::bit_width(static_cast<uint64_t>(n))) - 2, 4, 11);
    const int shift = std::max(0, static_cast<int>(std::bit_width(hi - lo)) - bits);
    const uint32_t buckets = ((hi - lo) >> shift) + 1;
    for (auto& histogram : counts) std::fill(histogram, histogram + buckets, 0u);
    int64_t i = 0;
    for (; i + kHistograms <= n; i += kHistograms)
      for (int h = 0; h < kHistograms; ++h) ++counts[h][(from[i + h] - lo) >> shift];
    for (; i < n; ++i) ++count[(from[i] - lo) >> shift];
    for (int h = 1; h < kHistograms; ++h)
      for (uint32_t b = 0; b < buckets; ++b) count[b] += counts[h][b];
    uint32_t bucket = buckets - 1;
    int64_t larger = 0;
    while (larger + count[bucket] < k) larger += count[bucket--];
    above += larger;
    k -= larger;
    const uint32_t first = lo + (bucket << shift);
    if (shift == 0 || count[bucket] <= slack) return {first, above};
    n = kernels.keep_range(from, n, first, (uint32_t{1} << shift) - 1, scratch);
    from = scratch;
    kernels.key_range(from, n, range);
    lo = range[0];
    hi = range[1];
  }
  return {lo, above};
}

namespace {

inline uint32_t packed_key(uint64_t packed) {
  return static_cast<uint32_t>(packed >> 32);
}

void insertion_sort(uint64_t* a, int64_t n) {
  for (int64_t i = 1; i < n; ++i) {
    const uint64_t v = a[i];
    int64_t j = i;
    for (; j > 0 && a[j - 1] > v; --j) a[j] = a[j - 1];
    a[j] = v;
  }
}

// Sorts src[0, n), whose key halves are in [lo, lo + 2^width), into dst (src is clobbered):
// one stable most-significant-digit pass with about n buckets, the same recursively for
// buckets of more than 16, and an insertion sort that finishes the small buckets.
void msd_sort(uint64_t* src, uint64_t* dst, int64_t n, uint32_t lo, int width) {
  constexpr int64_t kSmall = 16;
  const int bits = std::min(
      width, std::clamp(static_cast<int>(std::bit_width(static_cast<uint64_t>(n))) - 1, 4, 11));
  const int shift = width - bits;
  const uint32_t buckets = uint32_t{1} << bits;
  uint32_t end[2048];
  std::fill(end, end + buckets, 0u);
  for (int64_t i = 0; i < n; ++i) ++end[(packed_key(src[i]) - lo) >> shift];
  uint32_t sum = 0;
  for (uint32_t d = 0; d < buckets; ++d) {
    const uint32_t c = end[d];
    end[d] = sum;  // the bucket's start, until the scatter moves it to its end
    sum += c;
  }
  for (int64_t i = 0; i < n; ++i) dst[end[(packed_key(src[i]) - lo) >> shift]++] = src[i];
  if (shift > 0) {
    for (uint32_t d = 0, begin = 0; d < buckets; begin = end[d++]) {
      const int64_t size = end[d] - begin;
      if (size <= kSmall) continue;
      msd_sort(dst + begin, src + begin, size, lo + (d << shift), shift);
      std::copy(src + begin, src + end[d], dst + begin);
    }
  }
  insertion_sort(dst, n);
}

}  // namespace

uint64_t* sort_packed(uint64_t* a, uint64_t* scratch, int64_t n) {
  if (n <= 16) {
    insertion_sort(a, n);
    return a;
  }
  // Rows that are sorted already, ascending or descending (the packed values are distinct).
  int64_t ascents = 0;
  for (int64_t i = 1; i < n; ++i) ascents += a[i - 1] < a[i];
  if (ascents == n - 1) return a;
  if (ascents == 0) {
    std::reverse(a, a + n);
    return a;
  }
  uint32_t lo = UINT32_MAX, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, packed_key(a[i]));
    hi = std::max(hi, packed_key(a[i]));
  }
  const int width = static_cast<int>(std::bit_width(hi - lo));
  if (width == 0) return a;  // one key: index order is rank order
  msd_sort(a, scratch, n, lo, width);
  return scratch;
}

}  // namespace dfss::topk
