// Interface between the top-k driver (src/topk/topk.cc) and its per-ISA kernels: the two
// passes over a row that are worth vectorizing. The exact selection among the surviving
// candidates runs in the driver (baseline code).
#pragma once

#include <cstdint>

#include "dfss/cpu.h"

namespace dfss::kernels {

// A candidate of the final selection: its selection key (NaN mapped to +inf) and index.
struct TopkCandidate {
  float key;
  int32_t index;
};

struct TopkKernels {
  const char* name;
  int lanes;  // span lengths passed to the kernels are multiples of this
  // delegates[s] = the largest key of x[s * span, min(length, (s + 1) * span)).
  void (*delegates)(const float* x, int64_t length, int64_t span, float* delegates);
  // Appends every element whose key is >= threshold to `out` (in index order) and returns
  // how many; subranges whose delegate is below the threshold are skipped unread.
  int64_t (*candidates)(const float* x, int64_t length, int64_t span, const float* delegates,
                        float threshold, TopkCandidate* out);
};

const TopkKernels& topk_kernels(Isa isa);  // isa already resolved and supported
const TopkKernels& topk_kernels_scalar();
const TopkKernels& topk_kernels_avx2();
const TopkKernels& topk_kernels_avx512();

}  // namespace dfss::kernels
