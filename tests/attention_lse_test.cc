// The log-sum-exp output: log Σ_j exp(s_ij) over the keys a row attends to (the kept ones
// under N:M), -inf for rows that see no key; checked against a double computation written
// in the tests (dense) or over the exported kept scores (N:M), for every implementation
// and ISA and thread count, through rows with no visible key and Lk = 0.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "attention_feature_util.h"

namespace dfss::test {
namespace {

std::vector<FeatureCase> lse_cases() {
  std::vector<FeatureCase> cases;
  const std::vector<SparsityPattern> patterns{{}, {2, 4}, {1, 2}, {4, 8}, {3, 5}};
  for (const SparsityPattern& pattern : patterns) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      // Lq > Lk with causal: the first rows see no key.
      FeatureCase c;
      c.batch = 2;
      c.lq = 100;
      c.lk = 70;
      c.causal = true;
      c.key_mask = true;
      c.dtype = dtype;
      c.pattern = pattern;
      cases.push_back(c);
      FeatureCase wide;
      wide.lq = 9;
      wide.lk = 1000;
      wide.d = 80;
      wide.dv = 48;
      wide.dtype = dtype;
      wide.pattern = pattern;
      cases.push_back(wide);
    }
  }
  return cases;
}

class LogSumExp : public ::testing::TestWithParam<size_t> {};

TEST_P(LogSumExp, MatchesOracleAndReference) {
  check_feature_case(lse_cases()[GetParam()], 400 + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, LogSumExp, ::testing::Range<size_t>(0, lse_cases().size()),
                         [](const auto& info) { return lse_cases()[info.param].name(); });

TEST(LogSumExpEdges, NoKeysGiveMinusInfinity) {
  HostTensor q({1, 2, 3, 8}, DType::f32), k({1, 2, 0, 8}, DType::f32), v({1, 2, 0, 8}, DType::f32);
  for (AttentionImpl impl :
       {AttentionImpl::reference, AttentionImpl::unfused, AttentionImpl::fused}) {
    for (SparsityPattern pattern : {SparsityPattern{}, SparsityPattern{2, 4}}) {
      HostTensor out({1, 2, 3, 8}, DType::f32);
      std::vector<float> lse(6, 1.0f);
      AttentionOptions options;
      options.impl = impl;
      options.pattern = pattern;
      options.log_sum_exp = lse.data();
      attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
      EXPECT_EQ(lse, std::vector<float>(6, -std::numeric_limits<float>::infinity()))
          << impl_name(impl) << " " << pattern.to_string();
    }
  }
}

}  // namespace
}  // namespace dfss::test
