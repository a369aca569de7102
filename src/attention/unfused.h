// The unfused driver, shared by run_unfused and the export of compressed N:M scores.
#pragma once

#include <cstdint>
#include <functional>

#include "attention/problem.h"
#include "kernels/attention/flash_kernels.h"

namespace dfss::detail {

// Kept entries per row of the compressed score matrix as the kernels store it (whole
// spans of keys; the entries past ceil(Lk/M)*N belong to all-padding groups).
int64_t compressed_row_stride(const SparsityPattern& pattern, int64_t lk_pad);

struct HeadVisitor {
  // When set (N:M only), called once per (batch, head) right after the pruned score phase,
  // instead of the softmax and value phases; the args hold that head's compressed scores.
  std::function<void(int64_t b, int64_t h, const kernels::UnfusedArgs& args)> compressed;
};

// Throws InvalidArgument when the per-head buffers run_unfused_heads would materialize
// exceed kMaxUnfusedScoreBytes, naming the fused implementation (or, when `exporting`, the
// compressed-score export). run_unfused_heads checks this itself before allocating; callers
// that allocate their own results by the problem's size call it first.
void check_unfused_memory(const AttentionProblem& problem, bool exporting);

void run_unfused_heads(const AttentionProblem& problem, const HeadVisitor& visit_head);

}  // namespace dfss::detail
