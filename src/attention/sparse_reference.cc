// The N:M oracle: the selection on fp32 scores computed exactly as the kernels compute
// them (fused multiply-adds in key-dimension order, then fma(dot, scale, mask)), the
// softmax and the value sum over the kept entries in double.
#include "attention/sparse_reference.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/element_access.h"
#include "attention/problem.h"
#include "sparse/nm_selection.h"

namespace dfss::detail {

void sparse_reference_scores(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                             std::vector<float>& scores) {
  const int64_t groups = (p.lk + p.pattern.m - 1) / p.pattern.m;
  scores.assign(static_cast<size_t>(groups * p.pattern.m), -std::numeric_limits<float>::infinity());
  int64_t visible = p.valid_lengths ? p.valid_lengths[b] : p.lk;
  if (p.causal) visible = std::min(visible, p.causal_last_key(i) + 1);
  const int64_t q_row = b * p.q.stride[0] + h * p.q.stride[1] + i * p.q.stride[2];
  const int64_t k_head = b * p.k.stride[0] + p.kv_head(h) * p.k.stride[1];
  // Keys before the window's first stay -inf, like hidden ones, before the selection.
  for (int64_t j = p.first_key(i); j < visible; ++j) {
    float dot = 0.0f;
    for (int64_t c = 0; c < p.d; ++c)
      dot = std::fma(load_element(p.q, q_row + c * p.q.stride[3]),
                     load_element(p.k, k_head + j * p.k.stride[2] + c * p.k.stride[3]), dot);
    scores[static_cast<size_t>(j)] = std::fma(dot, p.scale, p.bias(b, h, i, j));
  }
}

void sparse_reference_kept(const SparsityPattern& pattern, const std::vector<float>& scores,
                           std::vector<int64_t>& kept_columns) {
  kept_columns.clear();
  int kept[8];
  for (size_t g = 0; g < scores.size(); g += static_cast<size_t>(pattern.m)) {
    sparse::select_group(scores.data() + g, pattern.m, pattern.n, pattern.m, kept);
    for (int t = 0; t < pattern.n; ++t) kept_columns.push_back(static_cast<int64_t>(g) + kept[t]);
  }
}

void store_kept_row(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                    const std::vector<int64_t>& keys, const std::vector<float>& scores,
                    std::vector<double>& sums) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t v_head = b * p.v.stride[0] + p.kv_head(h) * p.v.stride[1];
  double row_max = -std::numeric_limits<double>::infinity();
  for (float x : scores)
    if (std::isnan(x) || x > row_max) row_max = x;  // a kept NaN makes the row NaN
  std::fill(sums.begin(), sums.end(), 0.0);
  double denominator = 0.0;
  if (row_max != -std::numeric_limits<double>::infinity()) {
    for (size_t t = 0; t < keys.size(); ++t) {
      // A masked, hidden or padding column weighs nothing and is never read, even when a
      // NaN max would make its weight NaN.
      if (scores[t] == kNegInf) continue;
      const double weight = std::exp(double{scores[t]} - row_max);
      denominator += weight;
      if (weight == 0.0) continue;  // no 0 * NaN
      for (int64_t c = 0; c < p.dv; ++c)
        sums[static_cast<size_t>(c)] +=
            weight * load_element(p.v, v_head + keys[t] * p.v.stride[2] + c * p.v.stride[3]);
    }
  }
  const int64_t out_row = b * p.out.stride[0] + h * p.out.stride[1] + i * p.out.stride[2];
  for (int64_t c = 0; c < p.dv; ++c)
    store_element(p.out, out_row + c * p.out.stride[3],
                  denominator == 0.0 ? 0.0 : sums[static_cast<size_t>(c)] / denominator);
  // Over the kept entries; the max is one of them.
  if (p.log_sum_exp) {
    p.log_sum_exp[(b * p.heads + h) * p.lq + i] =
        denominator == 0.0 ? kNegInf : static_cast<float>(row_max + std::log(denominator));
  }
}

void run_sparse_reference(const AttentionProblem& p) {
  const int64_t head_count = p.batch * p.heads;
#pragma omp parallel num_threads(p.threads)
  {
    std::vector<float> scores, kept_scores;
    std::vector<int64_t> kept;
    std::vector<double> sums(static_cast<size_t>(p.dv));
    // Each row is computed start to finish by one thread: results never depend on threads.
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < head_count; ++bh) {
      const int64_t b = bh / p.heads, h = bh % p.heads;
      for (int64_t i = 0; i < p.lq; ++i) {
        sparse_reference_scores(p, b, h, i, scores);
        sparse_reference_kept(p.pattern, scores, kept);
        kept_scores.clear();
        for (int64_t j : kept) kept_scores.push_back(scores[static_cast<size_t>(j)]);
        store_kept_row(p, b, h, i, kept, kept_scores, sums);
      }
    }
  }
}

}  // namespace dfss::detail
