// The N:M sparse oracle, also used by the tests to check the kernels' selection.
#pragma once

#include <cstdint>
#include <vector>

#include "attention/problem.h"

namespace dfss::detail {

// The fp32 scores of query row i of (b, h), exactly as every kernel computes them, over
// ceil(Lk/M)*M columns: -inf for masked, hidden and padding columns.
void sparse_reference_scores(const AttentionProblem& problem, int64_t b, int64_t h, int64_t i,
                             std::vector<float>& scores);

// The kept columns of a row of scores, in increasing order.
void sparse_reference_kept(const SparsityPattern& pattern, const std::vector<float>& scores,
                           std::vector<int64_t>& kept_columns);

void run_sparse_reference(const AttentionProblem& problem);

}  // namespace dfss::detail
