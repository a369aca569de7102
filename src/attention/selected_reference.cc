// The oracle of topk:K and dsa:K: the kept set chosen by a full sort of plainly computed
// fp32 scores (the same fma chains as the kernels, so the sets agree bit for bit), then
// softmax, P·V and the gradients in double precision.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/element_access.h"
#include "attention/selected.h"
#include "attention/sparse_reference.h"
#include "topk/topk_rank.h"

namespace dfss::detail {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The keys of batch b that exist: [0, valid_lengths[b]) or [0, Lk).
int64_t present_keys(const AttentionProblem& p, int64_t b) {
  return p.valid_lengths ? p.valid_lengths[b] : p.lk;
}

float score_dot(const AttentionProblem& p, int64_t b, int64_t h, int64_t i, const float* key) {
  const int64_t q_row = b * p.q.stride[0] + h * p.q.stride[1] + i * p.q.stride[2];
  float dot = 0.0f;
  for (int64_t c = 0; c < p.d; ++c)
    dot = std::fma(load_element(p.q, q_row + c * p.q.stride[3]), key[c], dot);
  return dot;
}

std::vector<float> key_row(const AttentionProblem& p, int64_t b, int64_t kv, int64_t j) {
  std::vector<float> key(static_cast<size_t>(p.d));
  const int64_t base = b * p.k.stride[0] + kv * p.k.stride[1] + j * p.k.stride[2];
  for (int64_t c = 0; c < p.d; ++c)
    key[static_cast<size_t>(c)] = load_element(p.k, base + c * p.k.stride[3]);
  return key;
}

// The `wanted` highest-ranked of `candidates` (index, score) pairs, as increasing indices.
std::vector<int64_t> top_ranked(std::vector<kernels::TopkCandidate> candidates, int64_t wanted) {
  std::sort(candidates.begin(), candidates.end(), topk::RanksHigher{});
  if (static_cast<int64_t>(candidates.size()) > wanted)
    candidates.resize(static_cast<size_t>(wanted));
  std::vector<int64_t> indices;
  for (const auto& c : candidates) indices.push_back(c.index);
  std::sort(indices.begin(), indices.end());
  return indices;
}

}  // namespace

// Row i of (b, h): the kept keys (increasing) and their fp32 scores.
void selected_reference_row(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                            std::vector<int64_t>& keys, std::vector<float>& scores) {
  keys.clear();
  scores.clear();
  const int64_t kv = p.kv_head(h), present = present_keys(p, b);
  int64_t end = present;
  if (p.causal) end = std::min(end, p.causal_last_key(i) + 1);
  end = std::max<int64_t>(end, 0);
  const int64_t begin = std::min(p.first_key(i), end);
  auto exact = [&](int64_t j) {
    return std::fma(score_dot(p, b, h, i, key_row(p, b, kv, j).data()), p.scale,
                    p.bias(b, h, i, j));
  };
  std::vector<kernels::TopkCandidate> candidates;
  if (!p.pattern.predicted) {
    for (int64_t j = begin; j < end; ++j)
      candidates.push_back({topk::selection_key(exact(j)), static_cast<int32_t>(j)});
    keys = top_ranked(candidates, p.pattern.keep);
  } else {
    const int64_t block = p.pattern.block;
    for (int64_t c = begin / block; c < (end + block - 1) / block; ++c) {
      const int64_t first = c * block, last = std::min(present, first + block);
      std::vector<float> mean(static_cast<size_t>(p.d), 0.0f);
      float bias = kNegInf;
      for (int64_t j = first; j < last; ++j) {
        const std::vector<float> key = key_row(p, b, kv, j);
        for (int64_t x = 0; x < p.d; ++x)
          mean[static_cast<size_t>(x)] += key[static_cast<size_t>(x)];
        bias = std::max(bias, p.bias(b, h, i, j));
      }
      for (float& x : mean) x /= static_cast<float>(last - first);
      const float predicted = std::fma(score_dot(p, b, h, i, mean.data()), p.scale, bias);
      candidates.push_back({topk::selection_key(predicted), static_cast<int32_t>(c)});
    }
    for (int64_t c : top_ranked(candidates, p.pattern.keep / block))
      for (int64_t j = std::max(begin, c * block); j < std::min(end, c * block + block); ++j)
        keys.push_back(j);
  }
  for (int64_t j : keys) scores.push_back(exact(j));
}

void run_selected_reference(const AttentionProblem& p) {
  const int64_t head_count = p.batch * p.heads;
#pragma omp parallel num_threads(p.threads)
  {
    std::vector<int64_t> keys;
    std::vector<float> scores;
    std::vector<double> sums(static_cast<size_t>(p.dv));
    // Each row is computed start to finish by one thread: results never depend on threads.
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < head_count; ++bh) {
      for (int64_t i = 0; i < p.lq; ++i) {
        selected_reference_row(p, bh / p.heads, bh % p.heads, i, keys, scores);
        store_kept_row(p, bh / p.heads, bh % p.heads, i, keys, scores, sums);
      }
    }
  }
}

}  // namespace dfss::detail
