// Grouped-query attention (Hkv < Hq key/value heads): every implementation and ISA
// against the reference, for group sizes 1, 2, 4 and 8 (Hkv = 1 included), dense and N:M,
// f32 and bf16, and with packed K/V larger than one packing group of the fused driver.
#include <gtest/gtest.h>

#include <vector>

#include "attention_feature_util.h"

namespace dfss::test {
namespace {

std::vector<FeatureCase> gqa_cases() {
  std::vector<FeatureCase> cases;
  const std::vector<SparsityPattern> patterns{{}, {2, 4}, {3, 8}};
  for (const SparsityPattern& pattern : patterns) {
    for (int64_t kv_heads : {8, 4, 2, 1}) {
      FeatureCase c;
      c.batch = 2;
      c.heads = 8;
      c.kv_heads = kv_heads;
      c.lq = 25;
      c.lk = 140;
      c.causal = kv_heads % 2 == 0;
      c.key_mask = kv_heads <= 2;
      c.pattern = pattern;
      cases.push_back(c);
    }
  }
  // Hkv = 1 with an odd number of query heads; bf16 inputs.
  for (const SparsityPattern& pattern : std::vector<SparsityPattern>{{}, {2, 4}, {1, 2}}) {
    FeatureCase c;
    c.heads = 3;
    c.kv_heads = 1;
    c.lq = 49;
    c.lk = 131;
    c.d = 64;
    c.dv = 16;
    c.dtype = DType::bf16;
    c.pattern = pattern;
    cases.push_back(c);
  }
  return cases;
}

class GroupedQuery : public ::testing::TestWithParam<size_t> {};

TEST_P(GroupedQuery, MatchesReferenceAndThreadCounts) {
  check_feature_case(gqa_cases()[GetParam()], 100 + GetParam());
}

INSTANTIATE_TEST_SUITE_P(Cases, GroupedQuery, ::testing::Range<size_t>(0, gqa_cases().size()),
                         [](const auto& info) { return gqa_cases()[info.param].name(); });

// Packed K and V of one key/value head exceed the fused driver's 32 MiB packing group, so
// the two groups of query heads read K/V packed in different rounds.
TEST(GroupedQueryLarge, KeyValueHeadsLargerThanAPackingGroup) {
  FeatureCase c;
  c.heads = 4;
  c.kv_heads = 2;
  c.lq = 3;
  c.lk = 8200;
  c.d = 256;
  c.dv = 256;
  c.key_mask = true;
  check_feature_case(c, 7, {AttentionImpl::fused});  // the packing groups are the fused driver's
}

}  // namespace
}  // namespace dfss::test
