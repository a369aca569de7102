// The key-selecting patterns topk:K and dsa:K: the fast path against the oracle on every
// ISA and thread count, the identities the semantics promise (topk:K with K >= Lk is dense;
// topk:K is dense attention under the top-k mask; dsa:K with block 1 is topk:K), adversarial
// rows, the backward against its oracle and against the masked-dense backward, and the
// pattern's parsing and validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "attention/selected.h"
#include "attention/validate.h"
#include "attention_feature_util.h"
#include "attention_test_util.h"
#include "dfss/attention.h"
#include "dfss/errors.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SparsityPattern topk(int64_t k) {
  return parse_pattern("topk:" + std::to_string(k), "test");
}
SparsityPattern dsa(int64_t k, int64_t block) {
  return parse_pattern("dsa:" + std::to_string(k) + ":block=" + std::to_string(block), "test");
}

std::vector<FeatureCase> selected_cases() {
  std::vector<FeatureCase> cases;
  auto add = [&](FeatureCase c, std::vector<SparsityPattern> patterns) {
    for (const SparsityPattern& pattern : patterns) {
      c.pattern = pattern;
      cases.push_back(c);
    }
  };
  FeatureCase base;
  base.lq = 37;
  base.lk = 300;
  base.d = 64;
  base.dv = 64;
  add(base, {topk(1), topk(5), topk(64), topk(299), topk(300), topk(1000), dsa(64, 16), dsa(64, 1),
             dsa(8, 2), dsa(128, 64), dsa(256, 128)});
  FeatureCase c = base;
  c.causal = true;
  c.lq = c.lk = 200;
  add(c, {topk(16), dsa(32, 8), dsa(48, 16)});
  c.window = 50;
  add(c, {topk(16), dsa(32, 8)});
  c.lq = c.lk = 700;  // rows whose window starts past the first key blocks
  c.window = 300;
  add(c, {topk(40), dsa(64, 4)});
  c = base;
  c.key_mask = true;
  c.batch = 3;
  add(c, {topk(7), topk(200), dsa(32, 16), dsa(4, 4)});
  c = base;
  c.score_mask = true;
  add(c, {topk(9), dsa(32, 16)});
  c.broadcast = kBroadcastRows | kBroadcastHeads;
  add(c, {topk(9), dsa(32, 8)});
  c = base;
  c.heads = 4;
  c.kv_heads = 2;
  c.d = 80;
  c.dv = 48;
  c.lk = 513;
  add(c, {topk(33), dsa(64, 32)});
  c.kv_heads = 1;
  c.d = 256;
  c.dv = 256;
  c.lq = 7;
  add(c, {topk(100), dsa(96, 32)});
  c = base;
  c.lk = 1;
  add(c, {topk(1), topk(4), dsa(16, 16)});
  c.lk = 7;
  c.lq = 3;
  add(c, {topk(2), dsa(2, 1), dsa(4, 4)});
  c = base;
  c.dtype = DType::bf16;
  add(c, {topk(24), dsa(32, 16)});
  c = base;
  c.lk = 4100;
  c.lq = 13;
  add(c, {topk(256), dsa(256, 16)});
  return cases;
}

class Selected : public ::testing::TestWithParam<size_t> {};

TEST_P(Selected, FastPathMatchesOracleOnEveryIsaAndThreadCount) {
  const FeatureCase c = selected_cases()[GetParam()];
  const FeatureInputs inputs(c, 900 + GetParam());
  const FeatureResult want = run_feature(c, inputs, AttentionImpl::reference, Isa::scalar, 2, true);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    SCOPED_TRACE(isa_name(isa));
    const FeatureResult got = run_feature(c, inputs, AttentionImpl::fused, isa, 1, true);
    EXPECT_TRUE(all_close(got.out, want.out, 2e-5));
    EXPECT_TRUE(all_close(got.lse, want.lse, 2e-5));
    for (int threads : {2, 3}) {
      const FeatureResult again = run_feature(c, inputs, AttentionImpl::fused, isa, threads, false);
      EXPECT_EQ(again.out_bytes, got.out_bytes) << threads << " threads";
    }
    // unfused names the same single fast path
    EXPECT_EQ(run_feature(c, inputs, AttentionImpl::unfused, isa, 2, false).out_bytes,
              got.out_bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Selected, ::testing::Range<size_t>(0, selected_cases().size()),
                         [](const auto& info) {
                           return std::to_string(info.param) + "_" +
                                  selected_cases()[info.param].name();
                         });

// The fp32 score of (b, h, i, j) as the documented rule computes it (for masks built here).
float rule_score(const FeatureCase& c, const FeatureInputs& in, int64_t b, int64_t h, int64_t i,
                 int64_t j) {
  float dot = 0.0f;
  const int64_t kv = h / (c.heads / c.kv_heads);
  for (int64_t x = 0; x < c.d; ++x)
    dot = std::fma(in.q.get(b, h, i, x), in.k.get(b, kv, j, x), dot);
  return std::fma(dot, static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.d))), 0.0f);
}

// [B, H, Lq, Lk] additive mask: 0 on the keys topk:K keeps (by the rule, written here: a
// stable sort of the row by decreasing score), -inf elsewhere.
std::vector<float> topk_mask(const FeatureCase& c, const FeatureInputs& in, int64_t keep) {
  std::vector<float> mask(static_cast<size_t>(c.batch * c.heads * c.lq * c.lk), -kInf);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.lq; ++i) {
        std::vector<int64_t> order(static_cast<size_t>(c.lk));
        std::iota(order.begin(), order.end(), 0);
        std::vector<float> s(static_cast<size_t>(c.lk));
        for (int64_t j = 0; j < c.lk; ++j) s[j] = rule_score(c, in, b, h, i, j);
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t x, int64_t y) { return s[x] > s[y]; });
        for (int64_t t = 0; t < std::min(keep, c.lk); ++t)
          mask[static_cast<size_t>(((b * c.heads + h) * c.lq + i) * c.lk + order[t])] = 0.0f;
      }
  return mask;
}

FeatureCase plain_case() {
  FeatureCase c;
  c.batch = 2;
  c.heads = 3;
  c.kv_heads = 3;
  c.lq = 19;
  c.lk = 333;
  c.d = 40;
  c.dv = 24;
  return c;
}

TEST(SelectedIdentities, TopkWithKAtLeastLkIsDense) {
  FeatureCase c = plain_case();
  const FeatureInputs inputs(c, 41);
  const FeatureResult dense =
      run_feature(c, inputs, AttentionImpl::reference, Isa::scalar, 2, true);
  for (int64_t keep : {c.lk, c.lk + 1, int64_t{1} << 40}) {
    c.pattern = topk(keep);
    const FeatureResult got = run_feature(c, inputs, AttentionImpl::fused, Isa::automatic, 2, true);
    EXPECT_TRUE(all_close(got.out, dense.out, 2e-5)) << keep;
    EXPECT_TRUE(all_close(got.lse, dense.lse, 2e-5)) << keep;
  }
}

TEST(SelectedIdentities, TopkIsDenseUnderTheTopkMask) {
  FeatureCase c = plain_case();
  const FeatureInputs inputs(c, 42);
  for (int64_t keep : {1, 10, 100}) {
    const std::vector<float> mask = topk_mask(c, inputs, keep);
    FeatureCase dense_case = c;
    dense_case.pattern = {};
    AttentionOptions options = inputs.options(dense_case, AttentionImpl::reference, Isa::scalar);
    options.score_mask = const_view(mask.data(), {c.batch, c.heads, c.lq, c.lk});
    HostTensor want({c.batch, c.heads, c.lq, c.dv}, DType::f32);
    attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), want.mutable_view(), options);
    c.pattern = topk(keep);
    const FeatureResult got =
        run_feature(c, inputs, AttentionImpl::fused, Isa::automatic, 2, false);
    EXPECT_TRUE(all_close(got.out, want.values(), 2e-5)) << keep;
  }
}

TEST(SelectedIdentities, DsaWithBlockOneIsTopk) {
  FeatureCase c = plain_case();
  c.causal = true;
  c.key_mask = true;
  const FeatureInputs inputs(c, 43);
  for (int64_t keep : {3, 64}) {
    c.pattern = topk(keep);
    const FeatureResult exact =
        run_feature(c, inputs, AttentionImpl::fused, Isa::automatic, 2, true);
    c.pattern = dsa(keep, 1);
    const FeatureResult predicted =
        run_feature(c, inputs, AttentionImpl::fused, Isa::automatic, 2, true);
    EXPECT_EQ(predicted.out_bytes, exact.out_bytes) << keep;
    EXPECT_EQ(predicted.lse, exact.lse) << keep;
  }
}

TEST(SelectedIdentities, DsaWithBlockOneIsTopkOnEqualBlocks) {
  // Keys constant within blocks of 8: the block mean is exact, so dsa's blocks are the
  // blocks of topk's keys whenever K is a multiple of the block.
  FeatureCase c = plain_case();
  c.heads = c.kv_heads = 1;
  c.batch = 1;
  c.lk = 256;
  FeatureInputs inputs(c, 44);
  for (int64_t j = 0; j < c.lk; ++j)
    for (int64_t x = 0; x < c.d; ++x) inputs.k.set(0, 0, j, x, inputs.k.get(0, 0, j / 8 * 8, x));
  c.pattern = topk(32);
  const FeatureResult exact =
      run_feature(c, inputs, AttentionImpl::reference, Isa::scalar, 1, false);
  c.pattern = dsa(32, 8);
  const FeatureResult predicted =
      run_feature(c, inputs, AttentionImpl::fused, Isa::automatic, 1, false);
  EXPECT_TRUE(all_close(predicted.out, exact.out, 2e-5));
}

TEST(SelectedAdversarial, EqualScoresKeepTheLowestKeys) {
  FeatureCase c = plain_case();
  c.batch = c.heads = c.kv_heads = 1;
  FeatureInputs inputs(c, 45);
  for (int64_t j = 0; j < c.lk; ++j)
    for (int64_t x = 0; x < c.d; ++x) inputs.k.set(0, 0, j, x, 0.25f);  // every score equal
  for (const SparsityPattern& pattern : {topk(10), dsa(16, 8)}) {
    c.pattern = pattern;
    const FeatureResult got =
        run_feature(c, inputs, AttentionImpl::fused, Isa::automatic, 1, false);
    const int64_t kept = pattern.keep;
    for (int64_t i = 0; i < c.lq; ++i)
      for (int64_t y = 0; y < c.dv; ++y) {
        double mean = 0.0;
        for (int64_t j = 0; j < kept; ++j) mean += inputs.v.get(0, 0, j, y);
        EXPECT_NEAR(got.out[static_cast<size_t>(i * c.dv + y)], mean / kept, 1e-5)
            << pattern.to_string() << " row " << i;
      }
  }
}

TEST(SelectedAdversarial, NonFiniteInputs) {
  FeatureCase c = plain_case();
  c.batch = c.heads = c.kv_heads = 1;
  FeatureInputs inputs(c, 46);
  inputs.q.set(0, 0, 3, 5, std::numeric_limits<float>::quiet_NaN());  // row 3: NaN scores
  inputs.k.set(0, 0, 17, 0, kInf);  // key 17: ±inf scores in every row
  for (const SparsityPattern& pattern : {topk(10), dsa(16, 8), dsa(16, 1)}) {
    c.pattern = pattern;
    const FeatureResult want =
        run_feature(c, inputs, AttentionImpl::reference, Isa::scalar, 1, true);
    for (Isa isa : all_isas()) {
      if (!isa_supported(isa)) continue;
      const FeatureResult got = run_feature(c, inputs, AttentionImpl::fused, isa, 1, true);
      EXPECT_TRUE(all_close(got.out, want.out, 2e-5)) << pattern.to_string() << isa_name(isa);
      EXPECT_TRUE(all_close(got.lse, want.lse, 2e-5)) << pattern.to_string() << isa_name(isa);
    }
    for (int64_t y = 0; y < c.dv; ++y)
      EXPECT_TRUE(std::isnan(want.out[static_cast<size_t>(3 * c.dv + y)])) << pattern.to_string();
  }
}

// Backward: the fast path against the double oracle, and the oracle against the dense
// backward under the mask of the kept set (the masked-dense equivalent).
struct Gradients {
  std::vector<float> dq, dk, dv;
};

Gradients run_backward(const FeatureCase& c, const FeatureInputs& inputs, const HostTensor& d_out,
                       AttentionOptions options, int threads) {
  options.threads = threads;
  HostTensor out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
  std::vector<float> lse(static_cast<size_t>(c.batch * c.heads * c.lq));
  AttentionOptions forward = options;
  forward.log_sum_exp = lse.data();
  attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(), forward);
  HostTensor dq({c.batch, c.heads, c.lq, c.d}, DType::f32),
      dk({c.batch, c.kv_heads, c.lk, c.d}, DType::f32),
      dv({c.batch, c.kv_heads, c.lk, c.dv}, DType::f32);
  dq.fill_storage(std::numeric_limits<float>::quiet_NaN());
  dk.fill_storage(std::numeric_limits<float>::quiet_NaN());
  dv.fill_storage(std::numeric_limits<float>::quiet_NaN());
  attention_backward(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.view(), d_out.view(),
                     lse.data(), dq.mutable_view(), dk.mutable_view(), dv.mutable_view(), options);
  return {dq.values(), dk.values(), dv.values()};
}

TEST(SelectedBackward, MatchesOracleAndMaskedDense) {
  for (const SparsityPattern& pattern : {topk(12), dsa(32, 8), dsa(16, 16)}) {
    for (bool causal : {false, true}) {
      FeatureCase c = plain_case();
      c.heads = 4;
      c.kv_heads = 2;
      c.causal = causal;
      c.key_mask = true;
      c.lq = 21;
      c.lk = 150;
      c.pattern = pattern;
      SCOPED_TRACE(c.name());
      const FeatureInputs inputs(c, 47);
      HostTensor d_out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
      fill_uniform(d_out, 48);
      const Gradients fast = run_backward(
          c, inputs, d_out, inputs.options(c, AttentionImpl::fused, Isa::automatic), 1);
      const Gradients oracle = run_backward(
          c, inputs, d_out, inputs.options(c, AttentionImpl::reference, Isa::scalar), 2);
      EXPECT_TRUE(all_close(fast.dq, oracle.dq, 1e-4));
      EXPECT_TRUE(all_close(fast.dk, oracle.dk, 1e-4));
      EXPECT_TRUE(all_close(fast.dv, oracle.dv, 1e-4));
      const Gradients threaded = run_backward(
          c, inputs, d_out, inputs.options(c, AttentionImpl::fused, Isa::automatic), 3);
      EXPECT_EQ(threaded.dq, fast.dq);
      EXPECT_EQ(threaded.dk, fast.dk);
      EXPECT_EQ(threaded.dv, fast.dv);

      // The masked-dense equivalent: the oracle's kept set as a score mask, dense pattern.
      AttentionOptions dense = inputs.options(c, AttentionImpl::reference, Isa::scalar);
      const detail::AttentionProblem problem = detail::validate_problem(
          inputs.q.view(), inputs.k.view(), inputs.v.view(), TensorView{}, dense, false);
      std::vector<float> mask(static_cast<size_t>(c.batch * c.heads * c.lq * c.lk), -kInf);
      std::vector<int64_t> keys;
      std::vector<float> scores;
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t h = 0; h < c.heads; ++h)
          for (int64_t i = 0; i < c.lq; ++i) {
            detail::selected_reference_row(problem, b, h, i, keys, scores);
            for (int64_t j : keys)
              mask[static_cast<size_t>(((b * c.heads + h) * c.lq + i) * c.lk + j)] = 0.0f;
          }
      dense.pattern = {};
      dense.score_mask = const_view(mask.data(), {c.batch, c.heads, c.lq, c.lk});
      const Gradients masked = run_backward(c, inputs, d_out, dense, 2);
      EXPECT_TRUE(all_close(oracle.dq, masked.dq, 1e-5));
      EXPECT_TRUE(all_close(oracle.dk, masked.dk, 1e-5));
      EXPECT_TRUE(all_close(oracle.dv, masked.dv, 1e-5));
    }
  }
}

TEST(SelectedPattern, ParsesAndPrints) {
  EXPECT_EQ(parse_pattern("topk:256", "p").to_string(), "topk:256");
  EXPECT_EQ(parse_pattern("dsa:256", "p").to_string(), "dsa:256:block=16");
  EXPECT_EQ(parse_pattern("dsa:24", "p").to_string(), "dsa:24:block=8");
  EXPECT_EQ(parse_pattern("dsa:7", "p").to_string(), "dsa:7:block=1");
  EXPECT_EQ(parse_pattern("dsa:256:block=64", "p").to_string(), "dsa:256:block=64");
  EXPECT_EQ(parse_pattern("topk:1", "p").keep, 1);
  for (const char* bad : {"topk:0", "topk:-3", "topk:", "topk:12x", "topk:8:block=8", "dsa:0",
                          "dsa:64:block=3", "dsa:64:block=256", "dsa:48:block=32", "dsa:64:blk=8",
                          "dsa:64:block=", "top:4", "topk", "dsa:99999999999999999999"}) {
    try {
      parse_pattern(bad, "--pattern");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const InvalidArgument& error) {
      EXPECT_NE(std::string(error.what()).find("--pattern"), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(bad), std::string::npos) << error.what();
    }
  }
}

TEST(SelectedPattern, OptionsAreValidated) {
  FeatureCase c = plain_case();
  const FeatureInputs inputs(c, 49);
  HostTensor out({c.batch, c.heads, c.lq, c.dv}, DType::f32);
  for (SparsityPattern bad : {SparsityPattern{0, 0, -1}, SparsityPattern{0, 0, 8, true, 3},
                              SparsityPattern{0, 0, 8, false, 2}, SparsityPattern{2, 4, 8}}) {
    AttentionOptions options = inputs.options(c, AttentionImpl::fused, Isa::automatic);
    options.pattern = bad;
    EXPECT_THROW(
        attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(), options),
        InvalidArgument);
  }
}

}  // namespace
}  // namespace dfss::test
