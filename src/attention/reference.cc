// The oracle: plain loops in double precision, written for clarity rather than speed.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/element_access.h"
#include "attention/problem.h"

namespace dfss::detail {
namespace {

// Scratch for one query row: its scores and its weighted sum of values.
struct RowScratch {
  std::vector<double> scores;
  std::vector<double> sums;
};

void reference_row(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                   RowScratch& scratch) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  const ConstTensorView &q = p.q, &k = p.k, &v = p.v;
  const int64_t q_row = b * q.stride[0] + h * q.stride[1] + i * q.stride[2];
  const int64_t k_head = b * k.stride[0] + p.kv_head(h) * k.stride[1];
  const int64_t v_head = b * v.stride[0] + p.kv_head(h) * v.stride[1];
  const bool biased = p.mask_additive != nullptr || p.score_mask.data != nullptr;

  // Keys outside [first, visible) are masked by valid_lengths, the causal rule or the
  // sliding window: never read.
  int64_t visible = p.valid_lengths ? p.valid_lengths[b] : p.lk;
  if (p.causal) visible = std::min(visible, p.causal_last_key(i) + 1);
  visible = std::max<int64_t>(visible, 0);
  const int64_t first = std::min(p.first_key(i), visible);

  double row_max = kNegInf;
  for (int64_t j = first; j < visible; ++j) {
    double dot = 0.0;
    for (int64_t c = 0; c < p.d; ++c) {
      dot += load_element(q, q_row + c * q.stride[3]) *
             load_element(k, k_head + j * k.stride[2] + c * k.stride[3]);
    }
    double score = static_cast<double>(p.scale) * dot;
    // The masks summed in fp32 (problem.bias), as every implementation adds them.
    if (biased) score += p.bias(b, h, i, j);
    scratch.scores[j] = score;
    // std::max would drop a NaN; a NaN score must make the whole row NaN.
    if (std::isnan(score) || score > row_max) row_max = score;
  }

  const TensorView& out = p.out;
  const int64_t out_row = b * out.stride[0] + h * out.stride[1] + i * out.stride[2];
  float* lse = p.log_sum_exp ? p.log_sum_exp + (b * p.heads + h) * p.lq + i : nullptr;
  if (row_max == kNegInf) {  // every key masked (or Lk = 0): defined as zeros
    for (int64_t c = 0; c < p.dv; ++c) store_element(out, out_row + c * out.stride[3], 0.0);
    if (lse) *lse = -std::numeric_limits<float>::infinity();
    return;
  }
  std::fill(scratch.sums.begin(), scratch.sums.end(), 0.0);
  double denominator = 0.0;
  for (int64_t j = first; j < visible; ++j) {
    // exp(s - max) <= 1 cannot overflow; +inf - +inf and NaN give NaN, as IEEE says.
    const double weight = std::exp(scratch.scores[j] - row_max);
    denominator += weight;
    // A key with weight exactly 0 (additive -inf) contributes nothing, not 0 * NaN.
    if (weight == 0.0) continue;
    for (int64_t c = 0; c < p.dv; ++c) {
      scratch.sums[c] += weight * load_element(v, v_head + j * v.stride[2] + c * v.stride[3]);
    }
  }
  for (int64_t c = 0; c < p.dv; ++c) {
    store_element(out, out_row + c * out.stride[3], scratch.sums[c] / denominator);
  }
  if (lse) *lse = static_cast<float>(row_max + std::log(denominator));
}

}  // namespace

void run_reference(const AttentionProblem& p) {
  const int64_t head_count = p.batch * p.heads;
  // More threads than (batch, head) pairs would idle.
  const int threads = static_cast<int>(std::clamp<int64_t>(head_count, 1, p.threads));
  // Scratch is allocated before the parallel region so bad_alloc cannot escape a thread.
  std::vector<RowScratch> scratch(static_cast<size_t>(threads));
  for (RowScratch& s : scratch) {
    s.scores.resize(static_cast<size_t>(p.lk));
    s.sums.resize(static_cast<size_t>(p.dv));
  }
  // Each row is computed start to finish by one thread, so results never depend on threads.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t bh = 0; bh < head_count; ++bh) {
    RowScratch& mine = scratch[static_cast<size_t>(omp_get_thread_num())];
    for (int64_t i = 0; i < p.lq; ++i) reference_row(p, bh / p.heads, bh % p.heads, i, mine);
  }
}

}  // namespace dfss::detail
