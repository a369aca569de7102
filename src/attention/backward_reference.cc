// The backward oracle: plain loops in double. It recomputes the forward from q, k and v
// (scores, kept set, softmax, output) instead of trusting `out` and `log_sum_exp`, then
// applies the softmax-attention gradient rules row by row.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/backward_problem.h"
#include "attention/element_access.h"
#include "sparse/nm_selection.h"

namespace dfss::detail {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

int64_t offset(const auto& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return i0 * t.stride[0] + i1 * t.stride[1] + i2 * t.stride[2] + i3 * t.stride[3];
}

// One (batch, kv head): the double accumulators of its keys and the scratch of one row.
struct Scratch {
  std::vector<double> dk, dv;      // [Lk][d], [Lk][dv]
  std::vector<double> score, p;    // [Lk]: double scores, probabilities (0 if not kept)
  std::vector<float> fp32_scores;  // [ceil(Lk/M)*M]: what the N:M selection compares
  std::vector<double> o, dp;       // [dv], [Lk]
};

// The keys row i of (b, h) attends to, as weights p[j] (0 elsewhere) of the softmax of the
// double scores; returns false when the row sees no key (or only -inf scores).
bool row_probabilities(const AttentionProblem& a, int64_t b, int64_t h, int64_t i, Scratch& s) {
  int64_t end = a.valid_lengths ? a.valid_lengths[b] : a.lk;
  if (a.causal) end = std::min(end, a.causal_last_key(i) + 1);
  const int64_t begin = std::min(a.first_key(i), a.lk);
  std::fill(s.p.begin(), s.p.end(), 0.0);
  std::fill(s.score.begin(), s.score.end(), kNegInf);
  const bool sparse = !a.pattern.dense();
  if (sparse) {
    const int64_t groups = (a.lk + a.pattern.m - 1) / a.pattern.m;
    s.fp32_scores.assign(static_cast<size_t>(groups * a.pattern.m),
                         -std::numeric_limits<float>::infinity());
  }
  const int64_t k_head = b * a.k.stride[0] + a.kv_head(h) * a.k.stride[1];
  for (int64_t j = begin; j < end; ++j) {
    double dot = 0.0;
    float dot_fp32 = 0.0f;  // the kernels' fma chain in key-dimension order
    for (int64_t c = 0; c < a.d; ++c) {
      const double qc = load_element(a.q, offset(a.q, b, h, i, c));
      const double kc = load_element(a.k, k_head + j * a.k.stride[2] + c * a.k.stride[3]);
      dot += qc * kc;
      dot_fp32 = std::fma(static_cast<float>(qc), static_cast<float>(kc), dot_fp32);
    }
    // The bias: score mask, then key mask, summed in fp32.
    float bias = a.score_mask.data
                     ? static_cast<const float*>(a.score_mask.data)[a.score_mask_offset(b, h, i, j)]
                     : 0.0f;
    if (a.mask_additive) bias += a.mask_additive[b * a.mask_stride + j];
    s.score[static_cast<size_t>(j)] = static_cast<double>(a.scale) * dot + bias;
    if (sparse) s.fp32_scores[static_cast<size_t>(j)] = std::fma(dot_fp32, a.scale, bias);
  }
  std::vector<bool> kept(static_cast<size_t>(a.lk), !sparse);
  if (sparse) {
    int in_group[8];
    for (size_t g = 0; g < s.fp32_scores.size(); g += static_cast<size_t>(a.pattern.m)) {
      sparse::select_group(s.fp32_scores.data() + g, a.pattern.m, a.pattern.n, a.pattern.m,
                           in_group);
      for (int t = 0; t < a.pattern.n; ++t) {
        const size_t j = g + static_cast<size_t>(in_group[t]);
        // A kept -inf (masked, hidden or padding) weighs nothing.
        if (j < kept.size() && s.fp32_scores[j] != -std::numeric_limits<float>::infinity())
          kept[j] = true;
      }
    }
  }
  double row_max = kNegInf;
  for (int64_t j = begin; j < end; ++j) {
    const double x = s.score[static_cast<size_t>(j)];
    if (kept[static_cast<size_t>(j)] && (std::isnan(x) || x > row_max)) row_max = x;
  }
  if (row_max == kNegInf) return false;
  double sum = 0.0;
  for (int64_t j = begin; j < end; ++j) {
    if (!kept[static_cast<size_t>(j)]) continue;
    s.p[static_cast<size_t>(j)] = std::exp(s.score[static_cast<size_t>(j)] - row_max);
    sum += s.p[static_cast<size_t>(j)];
  }
  for (double& weight : s.p) weight /= sum;
  return true;
}

// Row i of query head h: writes dq[b, h, i] and adds its share to the key accumulators.
void backward_row(const BackwardProblem& problem, int64_t b, int64_t h, int64_t i, Scratch& s) {
  const AttentionProblem& a = problem.forward;
  std::vector<double> dq(static_cast<size_t>(a.d), 0.0);
  if (row_probabilities(a, b, h, i, s)) {
    const int64_t kvh = a.kv_head(h);
    const int64_t k_head = b * a.k.stride[0] + kvh * a.k.stride[1];
    const int64_t v_head = b * a.v.stride[0] + kvh * a.v.stride[1];
    // O_i and dP_ij = dO_i · V_j over the attended keys; D_i = dO_i · O_i.
    std::fill(s.o.begin(), s.o.end(), 0.0);
    for (int64_t j = 0; j < a.lk; ++j) {
      const double weight = s.p[static_cast<size_t>(j)];
      s.dp[static_cast<size_t>(j)] = 0.0;
      if (weight == 0.0) continue;
      for (int64_t c = 0; c < a.dv; ++c) {
        const double value = load_element(a.v, v_head + j * a.v.stride[2] + c * a.v.stride[3]);
        s.o[static_cast<size_t>(c)] += weight * value;
        s.dp[static_cast<size_t>(j)] +=
            load_element(problem.d_out, offset(problem.d_out, b, h, i, c)) * value;
      }
    }
    double delta = 0.0;
    for (int64_t c = 0; c < a.dv; ++c)
      delta += load_element(problem.d_out, offset(problem.d_out, b, h, i, c)) *
               s.o[static_cast<size_t>(c)];
    for (int64_t j = 0; j < a.lk; ++j) {
      const double weight = s.p[static_cast<size_t>(j)];
      if (weight == 0.0) continue;
      const double ds = weight * (s.dp[static_cast<size_t>(j)] - delta);
      for (int64_t c = 0; c < a.dv; ++c)
        s.dv[static_cast<size_t>(j * a.dv + c)] +=
            weight * load_element(problem.d_out, offset(problem.d_out, b, h, i, c));
      for (int64_t c = 0; c < a.d; ++c) {
        const double kc = load_element(a.k, k_head + j * a.k.stride[2] + c * a.k.stride[3]);
        dq[static_cast<size_t>(c)] += a.scale * ds * kc;
        s.dk[static_cast<size_t>(j * a.d + c)] +=
            a.scale * ds * load_element(a.q, offset(a.q, b, h, i, c));
      }
    }
  }
  for (int64_t c = 0; c < a.d; ++c)
    store_element(problem.dq, offset(problem.dq, b, h, i, c), dq[static_cast<size_t>(c)]);
}

}  // namespace

void run_backward_reference(const BackwardProblem& problem) {
  const AttentionProblem& a = problem.forward;
  const int64_t kv_count = a.batch * a.kv_heads;
  const int64_t group = a.kv_heads > 0 ? a.heads / a.kv_heads : 0;
  const int threads = static_cast<int>(std::clamp<int64_t>(kv_count, 1, a.threads));
  // Scratch is allocated before the parallel region so bad_alloc cannot escape a thread.
  std::vector<Scratch> scratch(static_cast<size_t>(threads));
  for (Scratch& s : scratch) {
    s.dk.resize(static_cast<size_t>(a.lk * a.d));
    s.dv.resize(static_cast<size_t>(a.lk * a.dv));
    s.score.resize(static_cast<size_t>(a.lk));
    s.p.resize(static_cast<size_t>(a.lk));
    s.dp.resize(static_cast<size_t>(a.lk));
    s.o.resize(static_cast<size_t>(a.dv));
  }
  // One (batch, kv head) per iteration, its query heads and rows in order: the sums never
  // depend on the thread count.
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t bk = 0; bk < kv_count; ++bk) {
    Scratch& s = scratch[static_cast<size_t>(omp_get_thread_num())];
    const int64_t b = bk / a.kv_heads, kvh = bk % a.kv_heads;
    std::fill(s.dk.begin(), s.dk.end(), 0.0);
    std::fill(s.dv.begin(), s.dv.end(), 0.0);
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
      for (int64_t i = 0; i < a.lq; ++i) backward_row(problem, b, h, i, s);
    for (int64_t j = 0; j < a.lk; ++j) {
      for (int64_t c = 0; c < a.d; ++c)
        store_element(problem.dk, offset(problem.dk, b, kvh, j, c),
                      s.dk[static_cast<size_t>(j * a.d + c)]);
      for (int64_t c = 0; c < a.dv; ++c)
        store_element(problem.dv, offset(problem.dv, b, kvh, j, c),
                      s.dv[static_cast<size_t>(j * a.dv + c)]);
    }
  }
}

}  // namespace dfss::detail
