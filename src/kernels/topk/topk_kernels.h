// Interface between the top-k driver (src/topk/) and its per-ISA kernels: the passes over a
// row that are worth vectorizing. The selection among the surviving candidates (radix select
// and sort on integer keys) runs in the driver (baseline code).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

#include "dfss/cpu.h"

namespace dfss::kernels {

// A candidate of the final selection: its selection key (NaN mapped to +inf) and index.
struct TopkCandidate {
  float key;
  int32_t index;
};

// The selection key of x as an unsigned integer whose order is the rank order of values:
// NaN ranks as +inf, -0 equals +0. Never 0 (-inf maps to 0x007fffff), so 0 is below every key.
static inline uint32_t topk_key(float x) {
  const float key = std::isnan(x) ? INFINITY : x + 0.0f;  // + 0: -0 -> +0
  const uint32_t bits = std::bit_cast<uint32_t>(key);
  return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}
// The float selection key of an integer key (the inverse of topk_key on its range).
static inline float topk_key_value(uint32_t key) {
  return std::bit_cast<float>(key & 0x80000000u ? key & 0x7fffffffu : ~key);
}

// The rows are read as groups for delegate filtering: the row's first length / lanes * lanes
// elements are cut into blocks of `group` vectors (the last block may have fewer); group
// b * lanes + l is lane l of the vectors of block b (elements b * group * lanes + v * lanes + l).
// Its two largest keys are its delegates: distinct elements of the row, so the k-th largest
// delegate is a lower bound of the row's k-th largest key. The last length % lanes elements
// belong to no group.
//
// Output arrays written by `gather` need `lanes` elements of slack past the last one
// written (it stores whole vectors).
struct TopkKernels {
  const char* name;
  int lanes;
  // first[g] and second[g] = the largest and second largest key of group g, for the
  // ceil((length / lanes) / group) * lanes groups (second = key(-inf) for groups of one
  // element: a delegate that is no element is at most key(-inf), which admits every
  // element).
  void (*group_delegates)(const float* x, int64_t length, int64_t group, uint32_t* first,
                          uint32_t* second);
  // Appends the keys and indices of the elements whose key is >= bound (>= 1), in index
  // order, and returns how many. With `first` (the delegates above), blocks where every
  // first[g] < bound are skipped unread; with first == nullptr, every element is compared.
  int64_t (*gather)(const float* x, int64_t length, int64_t group, const uint32_t* first,
                    uint32_t bound, uint32_t* keys, int32_t* indices);
  // Writes, in increasing order, the indices of the elements whose key is > cut and of the
  // first `ties` elements whose key equals cut; returns how many. At most `capacity`
  // indices are written, whole vectors only while they fit (no slack needed), and the scan
  // stops once `capacity` are written.
  int64_t (*write_cut)(const float* x, int64_t length, uint32_t cut, int64_t ties, int32_t* indices,
                       int64_t capacity);
  // For the radix select on keys: lo_hi = {smallest, largest} of keys[0, n) (n >= 1); and
  // the keys in [first, first + span] (unsigned arithmetic), kept in order in `out` (which
  // may be `keys`, or any array of n), returning how many.
  void (*key_range)(const uint32_t* keys, int64_t n, uint32_t* lo_hi);
  int64_t (*keep_range)(const uint32_t* keys, int64_t n, uint32_t first, uint32_t span,
                        uint32_t* out);
};

const TopkKernels& topk_kernels(Isa isa);  // isa already resolved and supported
const TopkKernels& topk_kernels_scalar();
const TopkKernels& topk_kernels_avx2();
const TopkKernels& topk_kernels_avx512();

}  // namespace dfss::kernels
