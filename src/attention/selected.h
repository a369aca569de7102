// The key-selecting patterns topk:K and dsa:K (see SparsityPattern): each query row keeps
// a set of keys, chosen from exact scores (topk) or a block predictor (dsa), and runs
// softmax and P·V on those alone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/backward_problem.h"
#include "attention/problem.h"

namespace dfss::detail {

// Rows per task of the fast path (SelectedLayout::block_rows). topk: 8 register tiles of
// Q·Kᵀ share each block of K, and the block's score rows (rows x Lk floats) stay small.
// dsa: more rows keep each group of keys that some row keeps, so more of them share its
// loads (measured at L = 4096, dsa:256: 48 rows 3.64x dense, 96 3.77x, 192 3.92x), while
// its score rows hold one predictor score per block of keys.
inline constexpr int64_t kTopkBlockRows = 48;
inline constexpr int64_t kDsaBlockRows = 192;
// dsa keeps its larger block unless a general score mask needs a rows x Lk bias per block.
inline int64_t selected_block_rows(const SparsityPattern& pattern, bool score_mask) {
  return pattern.predicted && !score_mask ? kDsaBlockRows : kTopkBlockRows;
}

std::string selected_kernel_name(DType dtype, Isa isa, const SparsityPattern& pattern);

// Forward and backward. The fast path (impl fused or unfused; no Lq x Lk buffer: O(rows x
// Lk) scratch per thread) and the oracle (plain loops, selection by a full sort, double
// accumulation).
void run_selected(const AttentionProblem& problem);
// The oracle's kept keys of query row i of (b, h), increasing, and their fp32 scores.
void selected_reference_row(const AttentionProblem& problem, int64_t b, int64_t h, int64_t i,
                            std::vector<int64_t>& keys, std::vector<float>& scores);
void run_selected_reference(const AttentionProblem& problem);
void run_selected_backward(const BackwardProblem& problem);
void run_selected_backward_reference(const BackwardProblem& problem);

}  // namespace dfss::detail
