// Sliding-window attention: row i sees keys j > i + Lk - Lq - window (and, with causal,
// j <= i + Lk - Lq). Every implementation and ISA against the reference for windows
// inside one 128-key block, on and across block edges, and longer than Lk; with and
// without causal, Lq != Lk, dense and N:M (masked before the selection), f32 and bf16.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "attention_feature_util.h"
#include "dfss/errors.h"

namespace dfss::test {
namespace {

std::vector<FeatureCase> window_cases() {
  std::vector<FeatureCase> cases;
  // Windows inside one 128-key block, on and across block edges, and longer than Lk.
  for (int64_t window : {1, 7, 128, 130, 200, 5000}) {
    for (bool causal : {false, true}) {
      FeatureCase c;
      c.lq = 70;
      c.lk = 300;
      c.window = window;
      c.causal = causal;
      cases.push_back(c);
    }
  }
  // Lq > Lk, and Lq much shorter than Lk.
  for (const auto& [lq, lk, window] : std::vector<std::array<int64_t, 3>>{
           {300, 260, 130}, {300, 260, 5000}, {20, 500, 7}, {20, 500, 200}}) {
    for (bool causal : {false, true}) {
      FeatureCase c;
      c.lq = lq;
      c.lk = lk;
      c.window = window;
      c.causal = causal;
      cases.push_back(c);
    }
  }
  // N:M and bf16, fewer combinations; key masks on top.
  const std::vector<SparsityPattern> patterns{{2, 4}, {3, 8}, {1, 2}};
  for (const SparsityPattern& pattern : patterns) {
    for (int64_t window : {5, 64, 129, 1000}) {
      FeatureCase c;
      c.lq = 97;
      c.lk = 333;
      c.window = window;
      c.causal = window % 2 == 1;
      c.key_mask = window == 64;
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  for (const SparsityPattern& pattern : std::vector<SparsityPattern>{{}, {2, 4}}) {
    for (bool causal : {false, true}) {
      FeatureCase c;
      c.batch = 2;
      c.lq = 61;
      c.lk = 270;
      c.window = 131;
      c.causal = causal;
      c.key_mask = true;
      c.dtype = DType::bf16;
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  return cases;
}

class SlidingWindow : public ::testing::TestWithParam<size_t> {};

TEST_P(SlidingWindow, MatchesReferenceAndThreadCounts) {
  check_feature_case(window_cases()[GetParam()], 200 + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, SlidingWindow, ::testing::Range<size_t>(0, window_cases().size()),
                         [](const auto& info) { return window_cases()[info.param].name(); });

TEST(SlidingWindowErrors, NegativeWindowIsRejected) {
  HostTensor q({1, 1, 2, 4}, DType::f32), k({1, 1, 3, 4}, DType::f32), v({1, 1, 3, 4}, DType::f32);
  HostTensor out({1, 1, 2, 4}, DType::f32);
  AttentionOptions options;
  options.window = -1;
  try {
    attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("options.window"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected >= 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("got -1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dfss::test
