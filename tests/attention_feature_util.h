// Shared harness for the grouped-query, sliding-window, score-mask and log-sum-exp tests:
// one case description, seeded inputs, and the checks every feature runs (against the
// reference, across thread counts, against a double oracle written here, and the N:M kept
// set against the compressed-score export).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "attention/sparse_reference.h"
#include "attention/validate.h"
#include "attention_test_util.h"
#include "dfss/attention.h"
#include "dfss/compressed_scores.h"

namespace dfss::test {

inline constexpr float kFeatureInf = std::numeric_limits<float>::infinity();

// Which axes of the [B, Hq, Lq, Lk] score mask are broadcast (stride 0): bit a for axis a.
enum ScoreMaskAxes : int {
  kBroadcastBatch = 1,
  kBroadcastHeads = 2,
  kBroadcastRows = 4,
  kBroadcastKeys = 8,
};

struct FeatureCase {
  int64_t batch = 1, heads = 2, kv_heads = 2, lq = 1, lk = 1, d = 32, dv = 32;
  bool causal = false;
  int64_t window = 0;
  bool score_mask = false;
  int broadcast = 0;      // ScoreMaskAxes bits, with score_mask
  bool key_mask = false;  // additive (some -inf) and valid_lengths
  DType dtype = DType::f32;
  SparsityPattern pattern{};

  std::string name() const {
    std::ostringstream text;
    text << "B" << batch << "H" << heads << "kv" << kv_heads << "_q" << lq << "k" << lk << "_d" << d
         << "v" << dv;
    if (causal) text << "_causal";
    if (window > 0) text << "_w" << window;
    if (score_mask) text << "_smask" << broadcast;
    if (key_mask) text << "_keymask";
    text << "_" << dtype_name(dtype);
    if (pattern.nm()) text << "_nm" << pattern.n << "of" << pattern.m;
    if (pattern.selects_keys())
      text << (pattern.predicted ? "_dsa" : "_topk") << pattern.keep << "b" << pattern.block;
    return text.str();
  }
};

// The inputs of a case, from a fixed seed. The score mask owns only the storage its
// non-broadcast axes need.
struct FeatureInputs {
  HostTensor q, k, v;
  std::vector<float> additive;
  std::vector<int64_t> lengths;
  std::vector<float> score_mask;
  Shape score_mask_stride{};
  Shape score_mask_shape{};

  FeatureInputs(const FeatureCase& c, uint64_t seed)
      : q({c.batch, c.heads, c.lq, c.d}, c.dtype),
        k({c.batch, c.kv_heads, c.lk, c.d}, c.dtype),
        v({c.batch, c.kv_heads, c.lk, c.dv}, c.dtype) {
    fill_uniform(q, seed * 8 + 0, -2.0f, 2.0f);
    fill_uniform(k, seed * 8 + 1);
    fill_uniform(v, seed * 8 + 2);
    Random random(seed * 8 + 3);
    if (c.key_mask) {
      for (int64_t b = 0; b < c.batch; ++b) {
        for (int64_t j = 0; j < c.lk; ++j)
          additive.push_back(random.integer(0, 9) == 0 ? -kFeatureInf : random.uniform(-1, 1));
        lengths.push_back(b == 0 ? c.lk : random.integer(1, c.lk));
      }
    }
    if (c.score_mask) {
      const Shape full{c.batch, c.heads, c.lq, c.lk};
      Shape stored{};
      for (size_t a = 0; a < 4; ++a) stored[a] = (c.broadcast >> a) & 1 ? 1 : full[a];
      score_mask_shape = full;
      int64_t stride = 1;
      for (size_t a = 4; a-- > 0;) {
        score_mask_stride[a] = (c.broadcast >> a) & 1 ? 0 : stride;
        stride *= stored[a];
      }
      score_mask.resize(static_cast<size_t>(stride));
      for (float& value : score_mask)
        value = random.integer(0, 9) == 0 ? -kFeatureInf : random.uniform(-3.0f, 3.0f);
      // A query row whose mask is all -inf (row 1 of the first head), unless keys broadcast.
      if (!(c.broadcast & kBroadcastKeys) && !(c.broadcast & kBroadcastRows) && c.lq > 1) {
        for (int64_t j = 0; j < c.lk; ++j)
          score_mask[static_cast<size_t>(score_mask_stride[2] + j * score_mask_stride[3])] =
              -kFeatureInf;
      }
    }
  }

  float mask_at(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return score_mask[static_cast<size_t>(b * score_mask_stride[0] + h * score_mask_stride[1] +
                                          i * score_mask_stride[2] + j * score_mask_stride[3])];
  }

  AttentionOptions options(const FeatureCase& c, AttentionImpl impl, Isa isa) const {
    AttentionOptions o;
    o.impl = impl;
    o.isa = isa;
    o.causal = c.causal;
    o.window = c.window;
    o.pattern = c.pattern;
    if (!additive.empty()) o.mask.additive = additive.data();
    if (!lengths.empty()) o.mask.valid_lengths = lengths.data();
    if (c.score_mask) {
      o.score_mask =
          ConstTensorView{score_mask.data(), DType::f32, score_mask_shape, score_mask_stride};
    }
    return o;
  }
};

struct FeatureResult {
  std::vector<float> out;
  std::vector<unsigned char> out_bytes;
  std::vector<float> lse;  // empty when not requested
};

inline FeatureResult run_feature(const FeatureCase& c, const FeatureInputs& inputs,
                                 AttentionImpl impl, Isa isa, int threads, bool with_lse) {
  HostTensor out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
  out.fill_storage(std::numeric_limits<float>::quiet_NaN());  // unwritten elements fail
  FeatureResult result;
  AttentionOptions options = inputs.options(c, impl, isa);
  options.threads = threads;
  if (with_lse) {
    result.lse.assign(static_cast<size_t>(c.batch * c.heads * c.lq),
                      std::numeric_limits<float>::quiet_NaN());
    options.log_sum_exp = result.lse.data();
  }
  attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(), options);
  result.out = out.values();
  result.out_bytes = out.bytes();
  return result;
}

// Keys that query row i of batch b sees, by the documented rules, written independently
// of the library: valid length, causal, window.
inline bool feature_key_visible(const FeatureCase& c, const FeatureInputs& inputs, int64_t b,
                                int64_t i, int64_t j) {
  if (!inputs.lengths.empty() && j >= inputs.lengths[static_cast<size_t>(b)]) return false;
  if (c.causal && j > i + c.lk - c.lq) return false;
  if (c.window > 0 && j <= i + c.lk - c.lq - c.window) return false;
  return true;
}

// The documented bias: score mask + additive key mask, summed in fp32.
inline float feature_bias(const FeatureCase& c, const FeatureInputs& inputs, int64_t b, int64_t h,
                          int64_t i, int64_t j) {
  float bias = 0.0f;
  if (c.score_mask) bias = inputs.mask_at(b, h, i, j);
  if (!inputs.additive.empty()) {
    const float additive = inputs.additive[static_cast<size_t>(b * c.lk + j)];
    bias = c.score_mask ? bias + additive : additive;
  }
  return bias;
}

// Dense log-sum-exp in double, from the definition: log Σ_j exp(scale q·k + bias) over
// the visible keys; -inf when none (or all biased to -inf).
inline std::vector<float> dense_lse_oracle(const FeatureCase& c, const FeatureInputs& inputs) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
  std::vector<float> lse;
  const int64_t group = c.heads / c.kv_heads;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.lq; ++i) {
        std::vector<double> scores;
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c.lk; ++j) {
          if (!feature_key_visible(c, inputs, b, i, j)) continue;
          double dot = 0.0;
          for (int64_t x = 0; x < c.d; ++x)
            dot += static_cast<double>(inputs.q.get(b, h, i, x)) * inputs.k.get(b, h / group, j, x);
          const double s = scale * dot + feature_bias(c, inputs, b, h, i, j);
          scores.push_back(s);
          max = std::max(max, s);
        }
        if (max == -std::numeric_limits<double>::infinity()) {
          lse.push_back(-kFeatureInf);
          continue;
        }
        double sum = 0.0;
        for (double s : scores) sum += std::exp(s - max);
        lse.push_back(static_cast<float>(max + std::log(sum)));
      }
  return lse;
}

// N:M log-sum-exp in double over the kept entries of the compressed export.
inline std::vector<float> sparse_lse_oracle(const CompressedScores& scores) {
  std::vector<float> lse;
  const int64_t rows = scores.batch * scores.heads * scores.lq;
  for (int64_t r = 0; r < rows; ++r) {
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < scores.kept; ++t)
      max = std::max<double>(max, scores.values[static_cast<size_t>(r * scores.kept + t)]);
    if (max == -std::numeric_limits<double>::infinity()) {
      lse.push_back(-kFeatureInf);
      continue;
    }
    double sum = 0.0;
    for (int64_t t = 0; t < scores.kept; ++t)
      sum += std::exp(scores.values[static_cast<size_t>(r * scores.kept + t)] - max);
    lse.push_back(static_cast<float>(max + std::log(sum)));
  }
  return lse;
}

// Every check of one case: unfused and fused on each supported ISA against the reference
// (output and log-sum-exp, with and without the log-sum-exp output requested), the
// reference's log-sum-exp against the oracle here, thread-count determinism, and for N:M
// the kept set of the export against the visibility rules.
inline void check_feature_case(const FeatureCase& c, uint64_t seed,
                               std::vector<AttentionImpl> impls = {AttentionImpl::unfused,
                                                                   AttentionImpl::fused}) {
  SCOPED_TRACE(c.name());
  const FeatureInputs inputs(c, seed);
  const FeatureResult reference =
      run_feature(c, inputs, AttentionImpl::reference, Isa::scalar, 2, true);
  // The oracle for the log-sum-exp: in double from the definition (dense), or over the
  // exported kept scores (N:M, whose selection is checked against the reference elsewhere).
  std::vector<float> lse_oracle;
  if (c.pattern.dense()) {
    lse_oracle = dense_lse_oracle(c, inputs);
  } else {
    const CompressedScores scores =
        compressed_scores(inputs.q.view(), inputs.k.view(), inputs.v.view(),
                          inputs.options(c, AttentionImpl::unfused, Isa::scalar));
    lse_oracle = sparse_lse_oracle(scores);
    // The export's kept set on every ISA equals the oracle's selection.
    const detail::AttentionProblem problem = detail::validate_problem(
        inputs.q.view(), inputs.k.view(), inputs.v.view(), TensorView{},
        inputs.options(c, AttentionImpl::unfused, Isa::scalar), /*check_out=*/false);
    std::vector<float> row_scores;
    std::vector<int64_t> kept;
    for (Isa isa : all_isas()) {
      if (!isa_supported(isa)) continue;
      const CompressedScores exported =
          compressed_scores(inputs.q.view(), inputs.k.view(), inputs.v.view(),
                            inputs.options(c, AttentionImpl::unfused, isa));
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t h = 0; h < c.heads; ++h)
          for (int64_t i = 0; i < c.lq; ++i) {
            detail::sparse_reference_scores(problem, b, h, i, row_scores);
            detail::sparse_reference_kept(c.pattern, row_scores, kept);
            const auto first =
                exported.columns.begin() + ((b * c.heads + h) * c.lq + i) * exported.kept;
            ASSERT_TRUE(std::equal(kept.begin(), kept.end(), first, first + exported.kept))
                << isa_name(isa) << ": kept set of b " << b << " h " << h << " i " << i;
          }
    }
    // Columns outside a row's visible keys hold -inf: masked before the selection.
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t i = 0; i < c.lq; ++i)
          for (int64_t t = 0; t < scores.kept; ++t) {
            const size_t at = static_cast<size_t>(((b * c.heads + h) * c.lq + i) * scores.kept + t);
            const int64_t j = scores.columns[at];
            if (j >= c.lk || !feature_key_visible(c, inputs, b, i, j)) {
              ASSERT_EQ(scores.values[at], -kFeatureInf)
                  << "b " << b << " h " << h << " i " << i << " kept column " << j;
            }
          }
  }
  // Scores from bf16 inputs are exact products summed in fp32 in the kernels' order.
  const double lse_tolerance = c.dtype == DType::f32 ? 1e-5 : 1e-4;
  EXPECT_TRUE(all_close(reference.lse, lse_oracle, lse_tolerance)) << "reference log_sum_exp";
  const double out_tolerance = c.dtype == DType::f32 ? 1e-5 : 1e-2;
  for (AttentionImpl impl : impls) {
    for (Isa isa : all_isas()) {
      if (!isa_supported(isa)) continue;
      SCOPED_TRACE(std::string(impl_name(impl)) + " " + isa_name(isa));
      const FeatureResult got = run_feature(c, inputs, impl, isa, 2, true);
      EXPECT_TRUE(all_close(got.out, reference.out, out_tolerance));
      EXPECT_TRUE(all_close(got.lse, reference.lse, lse_tolerance)) << "log_sum_exp";
      // Without the log-sum-exp, bf16 N:M runs other kernels on avx512_bf16.
      if (!c.pattern.dense() && c.dtype == DType::bf16) {
        const FeatureResult plain = run_feature(c, inputs, impl, isa, 2, false);
        EXPECT_TRUE(all_close(plain.out, reference.out, out_tolerance));
      }
      for (int threads : {1, 3}) {
        const FeatureResult other = run_feature(c, inputs, impl, isa, threads, true);
        EXPECT_TRUE(other.out_bytes == got.out_bytes) << "threads " << threads << " vs 2 differ";
        EXPECT_TRUE(std::memcmp(other.lse.data(), got.lse.data(), got.lse.size() * 4) == 0)
            << "log_sum_exp: threads " << threads << " vs 2 differ";
      }
    }
  }
}

}  // namespace dfss::test
