// Unordered exact top-k of one row, for the attention patterns: which k elements rank
// highest (the rank order of dfss/topk.h), without sorting them. The cut is the k-th
// ranked key t and how many elements equal to t are taken (the lowest-indexed ones); every
// element with a larger key is taken.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/topk/topk_kernels.h"

namespace dfss::topk {

// Scratch of one thread, reused across rows.
struct SelectScratch {
  std::vector<float> delegates;
  std::vector<kernels::TopkCandidate> candidates;
};

struct Cut {
  float key;      // the k-th ranked selection key (NaN mapped to +inf)
  int64_t ties;   // elements with key == `key` that are selected, lowest indices first
};

// Subrange length for delegate filtering of a row of `length` elements with k kept, or 0
// when filtering does not pay (select over the whole row).
int64_t delegate_span(int64_t length, int64_t k, int lanes);

// The candidates that can be among the k highest-ranked elements of the row (all of them
// when filtering does not pay), written to scratch.candidates; returns their count (>= k).
int64_t gather_candidates(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                          int64_t k, SelectScratch& scratch);

// The cut of the row's top k (1 <= k <= length).
Cut find_cut(const kernels::TopkKernels& kernels, const float* row, int64_t length, int64_t k,
             SelectScratch& scratch);

// Writes the indices of the k elements the cut selects, in increasing order; returns k.
int64_t write_selected(const float* row, int64_t length, Cut cut, int32_t* indices);

}  // namespace dfss::topk
