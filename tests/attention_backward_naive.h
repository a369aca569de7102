// A naive double-precision attention forward and backward for the backward tests, written
// independently of src/: the attended set per row (masks, causal, window and the N:M
// selection on the fp32 scores), the forward's out and log-sum-exp, and the gradients.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention_test_util.h"
#include "dfss/attention.h"
#include "sparse/nm_selection.h"

namespace dfss::test {

// Logical values in C order as double, and the problem's sizes and rules.
struct NaiveProblem {
  int64_t batch = 0, heads = 0, kv_heads = 0, lq = 0, lk = 0, d = 0, dv = 0;
  double scale = 1.0;
  std::vector<double> q, k, v, d_out;  // [B,Hq,Lq,d], [B,Hkv,Lk,d], [B,Hkv,Lk,dv], [B,Hq,Lq,dv]
  // [B,Hq,Lq,Lk]: fp32 bias (score mask + key mask) and whether the entry is attended.
  std::vector<float> bias;
  std::vector<char> attended;

  int64_t kv_head(int64_t h) const { return h / (heads / kv_heads); }
  size_t qi(int64_t b, int64_t h, int64_t i) const {
    return static_cast<size_t>((b * heads + h) * lq + i);
  }
  size_t ki(int64_t b, int64_t h, int64_t j) const {
    return static_cast<size_t>((b * kv_heads + kv_head(h)) * lk + j);
  }
  size_t entry(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return qi(b, h, i) * static_cast<size_t>(lk) + static_cast<size_t>(j);
  }
};

// Fills `attended`: entries visible under the masks and rules, then for N:M only those the
// selection keeps from the fp32 scores fma(dot, scale, bias) (-inf where hidden); entries
// whose score is -inf never count.
inline void select_attended(NaiveProblem& n, const AttentionOptions& o, float scale,
                            SparsityPattern pattern) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  n.attended.assign(n.bias.size(), 0);
  const int64_t m = pattern.dense() ? 1 : pattern.m;
  const int64_t columns = (n.lk + m - 1) / m * m;
  std::vector<float> x(static_cast<size_t>(columns));
  for (int64_t b = 0; b < n.batch; ++b)
    for (int64_t h = 0; h < n.heads; ++h)
      for (int64_t i = 0; i < n.lq; ++i) {
        std::fill(x.begin(), x.end(), -kInf);
        for (int64_t j = 0; j < n.lk; ++j) {
          const int64_t shift = n.lk - n.lq;
          const bool visible = (!o.mask.valid_lengths || j < o.mask.valid_lengths[b]) &&
                               (!o.causal || j <= i + shift) &&
                               (o.window == 0 || j > i + shift - o.window);
          if (!visible) continue;
          float dot = 0.0f;
          for (int64_t c = 0; c < n.d; ++c)
            dot = std::fma(static_cast<float>(n.q[n.qi(b, h, i) * n.d + c]),
                           static_cast<float>(n.k[n.ki(b, h, j) * n.d + c]), dot);
          x[static_cast<size_t>(j)] = std::fma(dot, scale, n.bias[n.entry(b, h, i, j)]);
        }
        std::vector<char> keep(static_cast<size_t>(columns), pattern.dense());
        if (!pattern.dense()) {
          int kept[8];
          for (int64_t g = 0; g < columns; g += m) {
            sparse::select_group(x.data() + g, pattern.m, pattern.n, pattern.m, kept);
            for (int t = 0; t < pattern.n; ++t) keep[static_cast<size_t>(g + kept[t])] = 1;
          }
        }
        for (int64_t j = 0; j < n.lk; ++j)
          n.attended[n.entry(b, h, i, j)] =
              keep[static_cast<size_t>(j)] && x[static_cast<size_t>(j)] != -kInf;
      }
}

// Forward over the attended entries: out [B,Hq,Lq,dv] and lse [B,Hq,Lq] (-inf: no key).
inline void naive_forward(const NaiveProblem& n, std::vector<double>& out,
                          std::vector<double>& lse) {
  out.assign(static_cast<size_t>(n.batch * n.heads * n.lq * n.dv), 0.0);
  lse.assign(static_cast<size_t>(n.batch * n.heads * n.lq),
             -std::numeric_limits<double>::infinity());
  std::vector<double> s(static_cast<size_t>(n.lk));
  for (int64_t b = 0; b < n.batch; ++b)
    for (int64_t h = 0; h < n.heads; ++h)
      for (int64_t i = 0; i < n.lq; ++i) {
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < n.lk; ++j) {
          if (!n.attended[n.entry(b, h, i, j)]) continue;
          double dot = 0.0;
          for (int64_t c = 0; c < n.d; ++c)
            dot += n.q[n.qi(b, h, i) * n.d + c] * n.k[n.ki(b, h, j) * n.d + c];
          s[static_cast<size_t>(j)] = n.scale * dot + n.bias[n.entry(b, h, i, j)];
          max = std::max(max, s[static_cast<size_t>(j)]);
        }
        if (max == -std::numeric_limits<double>::infinity()) continue;
        double sum = 0.0;
        for (int64_t j = 0; j < n.lk; ++j)
          if (n.attended[n.entry(b, h, i, j)]) sum += std::exp(s[static_cast<size_t>(j)] - max);
        lse[n.qi(b, h, i)] = max + std::log(sum);
        for (int64_t j = 0; j < n.lk; ++j) {
          if (!n.attended[n.entry(b, h, i, j)]) continue;
          const double p = std::exp(s[static_cast<size_t>(j)] - max) / sum;
          for (int64_t c = 0; c < n.dv; ++c)
            out[n.qi(b, h, i) * n.dv + c] += p * n.v[n.ki(b, h, j) * n.dv + c];
        }
      }
}

// Gradients by the textbook rules, D_i = dO_i · out_i with the `out` given.
inline void naive_backward(const NaiveProblem& n, const std::vector<double>& out,
                           const std::vector<double>& lse, std::vector<double>& dq,
                           std::vector<double>& dk, std::vector<double>& dv) {
  dq.assign(n.q.size(), 0.0);
  dk.assign(n.k.size(), 0.0);
  dv.assign(n.v.size(), 0.0);
  for (int64_t b = 0; b < n.batch; ++b)
    for (int64_t h = 0; h < n.heads; ++h)
      for (int64_t i = 0; i < n.lq; ++i) {
        const size_t row = n.qi(b, h, i);
        if (lse[row] == -std::numeric_limits<double>::infinity()) continue;
        double delta = 0.0;
        for (int64_t c = 0; c < n.dv; ++c) delta += n.d_out[row * n.dv + c] * out[row * n.dv + c];
        for (int64_t j = 0; j < n.lk; ++j) {
          if (!n.attended[n.entry(b, h, i, j)]) continue;
          const size_t key = n.ki(b, h, j);
          double dot = 0.0, dp = 0.0;
          for (int64_t c = 0; c < n.d; ++c) dot += n.q[row * n.d + c] * n.k[key * n.d + c];
          for (int64_t c = 0; c < n.dv; ++c) dp += n.d_out[row * n.dv + c] * n.v[key * n.dv + c];
          const double p = std::exp(n.scale * dot + n.bias[n.entry(b, h, i, j)] - lse[row]);
          const double ds = p * (dp - delta);
          for (int64_t c = 0; c < n.dv; ++c) dv[key * n.dv + c] += p * n.d_out[row * n.dv + c];
          for (int64_t c = 0; c < n.d; ++c) {
            dq[row * n.d + c] += n.scale * ds * n.k[key * n.d + c];
            dk[key * n.d + c] += n.scale * ds * n.q[row * n.d + c];
          }
        }
      }
}

}  // namespace dfss::test
