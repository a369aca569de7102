// The direct decode path (few query rows per key/value head: K and V read in place, keys
// split into fixed segments merged in key order) against the reference, over every option
// of the problem, and bit-identical for any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "attention_test_util.h"
#include "dfss/attention.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  int64_t lq, lk, d, ratio;
  DType dtype, out_dtype;
  Layout layout;
  int feature;  // 0 none, 1 causal, 2 causal + window, 3 key padding, 4 score mask, 5 all
};

void run_case(const Case& c, Isa isa) {
  constexpr int64_t kBatch = 2, kKvHeads = 2;
  const int64_t heads = kKvHeads * c.ratio, dv = c.d == 80 ? 72 : c.d;
  HostTensor q({kBatch, heads, c.lq, c.d}, c.dtype, c.layout);
  HostTensor k({kBatch, kKvHeads, c.lk, c.d}, c.dtype, c.layout);
  HostTensor v({kBatch, kKvHeads, c.lk, dv}, c.dtype, c.layout);
  fill_uniform(q, 1, -2.0f, 2.0f);
  fill_uniform(k, 2);
  fill_uniform(v, 3);
  AttentionOptions options;
  options.isa = isa;
  std::vector<float> additive(static_cast<size_t>(kBatch * c.lk), 0.0f);
  std::vector<int64_t> valid{0, std::max<int64_t>(1, c.lk * 2 / 3)};
  std::vector<float> mask_row(static_cast<size_t>(c.lk));
  if (c.feature == 1 || c.feature == 2 || c.feature == 5) options.causal = true;
  if (c.feature == 2 || c.feature == 5) options.window = 5;
  if (c.feature == 3 || c.feature == 5) {
    for (int64_t j = 0; j < c.lk; ++j) {
      additive[static_cast<size_t>(j)] = j % 5 == 1 ? -kInf : 0.0f;
      additive[static_cast<size_t>(c.lk + j)] =
          j % 3 == 0 ? -kInf : 0.25f * static_cast<float>(j % 4);
    }
    options.mask.additive = additive.data();
    options.mask.valid_lengths = valid.data();
  }
  if (c.feature == 4 || c.feature == 5) {
    for (int64_t j = 0; j < c.lk; ++j)
      mask_row[static_cast<size_t>(j)] = j % 7 == 3 ? -kInf : 0.1f * static_cast<float>(j % 11);
    // One row broadcast over batch, heads and query rows (torch.expand strides).
    options.score_mask = {mask_row.data(), DType::f32, {kBatch, heads, c.lq, c.lk}, {0, 0, 0, 1}};
  }
  std::vector<float> lse(static_cast<size_t>(kBatch * heads * c.lq)), want_lse(lse.size());
  HostTensor out({kBatch, heads, c.lq, dv}, c.out_dtype),
      want({kBatch, heads, c.lq, dv}, c.out_dtype);
  options.log_sum_exp = lse.data();
  attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
  options.impl = AttentionImpl::reference;
  options.log_sum_exp = want_lse.data();
  attention(q.view(), k.view(), v.view(), want.mutable_view(), options);
  // bf16 out rounds; so do the probabilities of P·V in avx512_bf16's tile kernels with bf16
  // inputs (vdpbf16ps; docs/benchmarks.md), which take the rows when Lq × group is too many
  // for the direct path. Either way the bound is about one bf16 ulp.
  const bool rounds_probabilities = isa == Isa::avx512_bf16 && c.dtype == DType::bf16;
  const double tolerance = c.out_dtype == DType::bf16 || rounds_probabilities ? 1e-2 : 2e-5;
  EXPECT_TRUE(all_close(out.values(), want.values(), tolerance));
  EXPECT_TRUE(all_close(lse, want_lse, 2e-5));
}

TEST(DecodeDirect, MatchesTheReference) {
  const Layout layouts[] = {Layout::contiguous, Layout::transposed, Layout::padded};
  int n = 0;
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    for (int64_t lq : {1, 2, 3})
      for (int64_t lk : {1, 7, 128, 300, 4097})
        for (int64_t d : {32, 64, 80, 128})
          for (int64_t ratio : {1, 2, 4, 8}) {
            if (lk == 4097 && (ratio == 8 || lq == 3)) continue;  // time; the packed path anyway
            ++n;
            const Case c{lq,
                         lk,
                         d,
                         ratio,
                         n % 2 ? DType::f32 : DType::bf16,
                         n % 3 ? DType::f32 : DType::bf16,
                         layouts[n % 3],
                         n % 6};
            SCOPED_TRACE(::testing::Message() << isa_name(isa) << " lq " << lq << " lk " << lk
                                              << " d " << d << " ratio " << ratio << " case " << n);
            run_case(c, isa);
          }
  }
}

// One (batch, key/value head): the keys are split over segments, merged in a fixed order.
TEST(DecodeDirect, BitIdenticalForAnyThreadCount) {
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    for (DType dtype : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(isa_name(isa));
      HostTensor q({1, 4, 2, 64}, dtype), k({1, 1, 4097, 64}, dtype), v({1, 1, 4097, 64}, dtype);
      fill_uniform(q, 4, -3.0f, 3.0f);
      fill_uniform(k, 5);
      fill_uniform(v, 6);
      std::vector<unsigned char> first;
      std::vector<float> first_lse;
      for (int threads : {1, 2, 3}) {
        AttentionOptions options;
        options.isa = isa;
        options.threads = threads;
        options.causal = true;
        std::vector<float> lse(8);
        options.log_sum_exp = lse.data();
        HostTensor out({1, 4, 2, 64}, DType::f32);
        attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
        if (threads == 1) {
          first = out.bytes(), first_lse = lse;
        } else {
          EXPECT_EQ(out.bytes(), first) << threads << " threads";
          EXPECT_EQ(lse, first_lse) << threads << " threads";
        }
      }
    }
  }
}

}  // namespace
}  // namespace dfss::test
