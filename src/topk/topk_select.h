// Unordered exact top-k of one row, for the attention patterns and topk_rows: which k
// elements rank highest (the rank order of dfss/topk.h), without sorting them. The cut is
// the k-th ranked key t and how many elements equal to t are taken (the lowest-indexed
// ones); every element with a larger key is taken.
//
// Inside, keys are the unsigned integers of kernels::topk_key (order = rank order of
// values), candidates come from delegate filtering in the per-ISA kernels, and the k-th key
// among them from a radix select.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/topk/topk_kernels.h"

namespace dfss::topk {

// An uninitialized array that only grows (pages never written are never touched).
template <typename T>
class Buffer {
 public:
  T* get(int64_t size) {
    if (size > capacity_) {
      data_.reset(new T[static_cast<size_t>(size)]);
      capacity_ = size;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<T[]> data_;
  int64_t capacity_ = 0;
};

// Scratch of one thread, reused across rows.
struct SelectScratch {
  std::vector<kernels::TopkCandidate> candidates;  // gather_candidates' output
  Buffer<uint32_t> delegates, keys, select;
  Buffer<int32_t> indices;
  Buffer<uint64_t> packed, sorted;
};

struct Cut {
  float key;             // the k-th ranked selection key (NaN mapped to +inf, -0 to +0)
  int64_t ties;          // elements with key == `key` that are selected, lowest indices first
  int64_t selected = 0;  // how many elements the cut selects (k); 0: not known
};

// Vectors per delegate group (a group is one lane of that many consecutive vectors, see
// kernels::TopkKernels) for a row of `length` elements with k kept, or 0 when filtering
// does not pay (every element is a candidate).
int64_t delegate_span(int64_t length, int64_t k, int lanes);

// The keys and indices (in index order) of the candidates that can be among the k
// highest-ranked elements of the row (all elements when filtering does not pay), written to
// scratch.keys and scratch.indices; returns their count (>= k).
int64_t gather_keys(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                    int64_t k, SelectScratch& scratch);

// The same candidates as (float key, index) pairs in scratch.candidates; returns the count.
int64_t gather_candidates(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                          int64_t k, SelectScratch& scratch);

// The cut of the row's top k (1 <= k <= length).
Cut find_cut(const kernels::TopkKernels& kernels, const float* row, int64_t length, int64_t k,
             SelectScratch& scratch);

// Writes the indices of the elements the cut selects (k of them), in increasing order;
// returns how many. With cut.selected set (find_cut sets it) the vector kernel writes at most
// that many and stops once it has them; a cut without it takes a plain scalar loop.
int64_t write_selected(const kernels::TopkKernels& kernels, const float* row, int64_t length,
                       Cut cut, int32_t* indices);
// The same with the kernels of the default ISA (the result does not depend on the ISA).
int64_t write_selected(const float* row, int64_t length, Cut cut, int32_t* indices);

// The k-th largest of keys[0, n) (1 <= k <= n) and how many keys are larger, by radix
// select; `scratch` holds n keys (it may be `keys` itself, which is then overwritten). With
// slack > 0 the select may stop early, at a radix bucket of at most `slack` keys that holds
// the k-th largest: `key` is then the bucket's lower edge (at most the k-th largest, a bound)
// and `above` counts the keys above the bucket.
struct KthKey {
  uint32_t key;
  int64_t above;
};
KthKey kth_largest_key(const kernels::TopkKernels& kernels, const uint32_t* keys, int64_t n,
                       int64_t k, uint32_t* scratch, int64_t slack = 0);

// (~key << 32 | index) packs a candidate so that a smaller value ranks higher.
inline uint64_t pack_candidate(uint32_t key, int32_t index) {
  return (static_cast<uint64_t>(~key) << 32) | static_cast<uint32_t>(index);
}
// Sorts packed candidates into rank order (a radix sort on the key half, finished by an
// insertion sort on the whole value); returns `a` or `scratch` (n elements each, `a` is
// clobbered), whichever holds the result.
uint64_t* sort_packed(uint64_t* a, uint64_t* scratch, int64_t n);

}  // namespace dfss::topk
