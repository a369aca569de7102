// The general additive score mask [B, Hq, Lq, Lk]: every broadcast (stride 0 on every
// combination of axes), rows masked entirely with -inf, combined with the key-padding mask
// (summed in fp32: score mask + additive), the causal rule and the window; dense and N:M,
// f32 and bf16; every implementation and ISA against the reference.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention_feature_util.h"
#include "dfss/errors.h"

namespace dfss::test {
namespace {

std::vector<FeatureCase> score_mask_cases() {
  std::vector<FeatureCase> cases;
  for (int broadcast = 0; broadcast < 16; ++broadcast) {
    FeatureCase c;
    c.batch = 2;
    c.heads = 2;
    c.kv_heads = 1;
    c.lq = 50;
    c.lk = 140;
    c.score_mask = true;
    c.broadcast = broadcast;
    c.key_mask = broadcast % 3 != 0;
    c.causal = broadcast % 2 == 1;
    cases.push_back(c);
  }
  // N:M: the mask changes which scores survive.
  const std::vector<SparsityPattern> patterns{{2, 4}, {3, 8}, {1, 2}};
  for (const SparsityPattern& pattern : patterns) {
    for (int broadcast : {0, kBroadcastRows | kBroadcastHeads, kBroadcastBatch | kBroadcastKeys}) {
      FeatureCase c;
      c.batch = 2;
      c.lq = 40;
      c.lk = 200;
      c.score_mask = true;
      c.broadcast = broadcast;
      c.key_mask = true;
      c.causal = broadcast == 0;
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  // With a sliding window, and bf16 inputs.
  for (const SparsityPattern& pattern : std::vector<SparsityPattern>{{}, {2, 4}}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      FeatureCase c;
      c.lq = 70;
      c.lk = 300;
      c.window = 150;
      c.causal = true;
      c.score_mask = true;
      c.key_mask = dtype == DType::bf16;
      c.dtype = dtype;
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  return cases;
}

class ScoreMask : public ::testing::TestWithParam<size_t> {};

TEST_P(ScoreMask, MatchesReferenceAndThreadCounts) {
  check_feature_case(score_mask_cases()[GetParam()], 300 + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, ScoreMask, ::testing::Range<size_t>(0, score_mask_cases().size()),
                         [](const auto& info) { return score_mask_cases()[info.param].name(); });

// A mask that is 0 everywhere changes nothing; one that is -inf everywhere gives zeros.
TEST(ScoreMaskValues, ZeroAndMinusInfinityEverywhere) {
  FeatureCase c;
  c.lq = 13;
  c.lk = 150;
  const FeatureInputs inputs(c, 9);
  for (AttentionImpl impl :
       {AttentionImpl::reference, AttentionImpl::unfused, AttentionImpl::fused}) {
    for (Isa isa : all_isas()) {
      if (!isa_supported(isa)) continue;
      SCOPED_TRACE(std::string(impl_name(impl)) + " " + isa_name(isa));
      const FeatureResult plain = run_feature(c, inputs, impl, isa, 2, true);
      for (float value : {0.0f, -kFeatureInf}) {
        const float stored = value;
        AttentionOptions options = inputs.options(c, impl, isa);
        options.score_mask = ConstTensorView{&stored, DType::f32, {1, 2, 13, 150}, {0, 0, 0, 0}};
        std::vector<float> lse(2 * 13);
        options.log_sum_exp = lse.data();
        HostTensor out({1, 2, 13, 32}, DType::f32);
        attention(inputs.q.view(), inputs.k.view(), inputs.v.view(), out.mutable_view(), options);
        if (value == 0.0f) {
          EXPECT_TRUE(out.bytes() == std::vector<unsigned char>(plain.out_bytes));
          EXPECT_EQ(lse, plain.lse);
        } else {
          EXPECT_TRUE(all_close(out.values(), std::vector<float>(2 * 13 * 32, 0.0f), 0.0));
          EXPECT_EQ(lse, std::vector<float>(2 * 13, -kFeatureInf));
        }
      }
    }
  }
}

std::string score_mask_error(DType dtype, Shape shape) {
  HostTensor q({2, 3, 5, 4}, DType::f32), k({2, 3, 7, 4}, DType::f32), v({2, 3, 7, 4}, DType::f32);
  HostTensor out({2, 3, 5, 4}, DType::f32);
  std::vector<float> storage(2 * 3 * 5 * 7);
  AttentionOptions options;
  options.score_mask = ConstTensorView{storage.data(), dtype, shape, {0, 0, 7, 1}};
  try {
    attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InvalidArgument";
  return "";
}

TEST(ScoreMaskErrors, WrongDtypeIsRejected) {
  const std::string message = score_mask_error(DType::bf16, {2, 3, 5, 7});
  EXPECT_NE(message.find("options.score_mask"), std::string::npos) << message;
  EXPECT_NE(message.find("expected dtype f32"), std::string::npos) << message;
  EXPECT_NE(message.find("got bf16"), std::string::npos) << message;
}

TEST(ScoreMaskErrors, WrongShapeIsRejected) {
  for (const Shape& shape : {Shape{1, 3, 5, 7}, Shape{2, 3, 5, 8}, Shape{2, 1, 5, 7}}) {
    const std::string message = score_mask_error(DType::f32, shape);
    EXPECT_NE(message.find("options.score_mask"), std::string::npos) << message;
    EXPECT_NE(message.find("expected shape [2, 3, 5, 7]"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace dfss::test
