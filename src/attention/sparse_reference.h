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

// The oracle's output row (b, h, i) from its kept keys and their fp32 scores (parallel
// vectors): softmax and P·V in double over the kept entries, then out and log_sum_exp. A
// kept NaN makes the row NaN; -inf entries weigh nothing and their values are never read
// (a padding column may lie past Lk). `sums` is scratch of dv doubles.
void store_kept_row(const AttentionProblem& problem, int64_t b, int64_t h, int64_t i,
                    const std::vector<int64_t>& keys, const std::vector<float>& scores,
                    std::vector<double>& sums);

void run_sparse_reference(const AttentionProblem& problem);

}  // namespace dfss::detail
