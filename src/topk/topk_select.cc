// Delegate filtering of one row and the unordered selection built on it.
#include "topk/topk_select.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "topk/topk_rank.h"

namespace dfss::topk {

// Filtering pays when k is a small part of the row. Subranges of about sqrt(8 L / k)
// elements (the delegate-centric choice: few delegates, few subranges above the bound), but
// at most L / (2k), so that there are at least 2k delegates and the k-th largest of them is
// a bound well above the row's median; 0 (select over the whole row) when even one vector
// per subrange gives fewer.
int64_t delegate_span(int64_t length, int64_t k, int lanes) {
  if (length < 256) return 0;
  const double balanced = std::sqrt(8.0 * static_cast<double>(length) / static_cast<double>(k));
  const double most = static_cast<double>(length) / static_cast<double>(2 * k);
  const int64_t span = static_cast<int64_t>(std::min(balanced, most)) / lanes * lanes;
  return span >= lanes ? span : 0;
}

int64_t gather_candidates(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                          int64_t k, SelectScratch& scratch) {
  const int64_t span = delegate_span(length, k, kernels.lanes);
  scratch.candidates.resize(static_cast<size_t>(length));
  kernels::TopkCandidate* candidates = scratch.candidates.data();
  auto whole_row = [&] {
    for (int64_t j = 0; j < length; ++j)
      candidates[j] = {selection_key(row[j]), static_cast<int32_t>(j)};
    return length;
  };
  if (span == 0) return whole_row();
  const int64_t spans = (length + span - 1) / span;
  scratch.delegates.resize(static_cast<size_t>(2 * spans));
  float* delegates = scratch.delegates.data();
  kernels.delegates(row, length, span, delegates);
  // The k-th largest delegate, found on a copy (the kernels read the delegates in order).
  float* sorted = delegates + spans;
  std::copy(delegates, delegates + spans, sorted);
  std::nth_element(sorted, sorted + (k - 1), sorted + spans, std::greater<float>());
  const float bound = sorted[k - 1];
  // Rows whose top keys cluster (sorted rows) leave many subranges above the bound:
  // when they could hold over half the row, filtering no longer pays.
  const auto open_spans = std::count_if(delegates, delegates + spans,
                                        [bound](float delegate) { return delegate >= bound; });
  if (open_spans * span > length / 2) return whole_row();
  return kernels.candidates(row, length, span, delegates, bound, candidates);
}

Cut find_cut(const kernels::TopkKernels& kernels, const float* row, int64_t length, int64_t k,
             SelectScratch& scratch) {
  const int64_t count = gather_candidates(kernels, row, length, k, scratch);
  kernels::TopkCandidate* first = scratch.candidates.data();
  auto by_key = [](const kernels::TopkCandidate& a, const kernels::TopkCandidate& b) {
    return a.key > b.key;
  };
  std::nth_element(first, first + (k - 1), first + count, by_key);
  const float key = first[k - 1].key;
  // Every element ranked above the cut is among the first k - 1 candidates now.
  const int64_t above = std::count_if(first, first + (k - 1),
                                      [key](const kernels::TopkCandidate& c) { return c.key > key; });
  return {key, k - above};
}

int64_t write_selected(const float* row, int64_t length, Cut cut, int32_t* indices) {
  int64_t count = 0, ties = cut.ties;
  for (int64_t j = 0; j < length; ++j) {
    const float key = selection_key(row[j]);
    if (key > cut.key || (key == cut.key && ties-- > 0)) indices[count++] = static_cast<int32_t>(j);
  }
  return count;
}

}  // namespace dfss::topk
