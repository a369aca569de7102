// Decode (Lq = 1): a row computed alone runs the direct decode path (K and V read in
// place, dot products along d), the same row in a block of 7 x 2 heads the packed kernels;
// they agree to rounding.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attention_test_util.h"
#include "dfss/attention.h"

namespace dfss::test {
namespace {

TEST(Decode, SingleRowMatchesTheSameRowInABlock) {
  constexpr int64_t kRows = 7, kKeys = 300, kDim = 40, kValueDim = 80;
  HostTensor q({1, 2, kRows, kDim}, DType::f32), k({1, 1, kKeys, kDim}, DType::f32);
  HostTensor v({1, 1, kKeys, kValueDim}, DType::f32);
  fill_uniform(q, 1, -2.0f, 2.0f);
  fill_uniform(k, 2);
  fill_uniform(v, 3);
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    SCOPED_TRACE(isa_name(isa));
    AttentionOptions options;
    options.isa = isa;
    options.window = 200;  // a window too: the first key block is partly visible
    HostTensor block_out({1, 2, kRows, kValueDim}, DType::f32);
    std::vector<float> block_lse(2 * kRows);
    options.log_sum_exp = block_lse.data();
    attention(q.view(), k.view(), v.view(), block_out.mutable_view(), options);
    for (int64_t i = 0; i < kRows; ++i) {
      HostTensor row_q({1, 2, 1, kDim}, DType::f32);
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t x = 0; x < kDim; ++x) row_q.set(0, h, 0, x, q.get(0, h, i, x));
      HostTensor row_out({1, 2, 1, kValueDim}, DType::f32);
      std::vector<float> row_lse(2);
      options.log_sum_exp = row_lse.data();
      // Lq = 1 moves the window's diagonal: shift it back so that the row sees the same keys.
      options.window = 200 + (kRows - 1 - i);
      attention(row_q.view(), k.view(), v.view(), row_out.mutable_view(), options);
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t x = 0; x < kValueDim; ++x) {
          const float got = row_out.get(0, h, 0, x), want = block_out.get(0, h, i, x);
          ASSERT_NEAR(got, want, 1e-5f) << "row " << i << " head " << h << " col " << x;
        }
        EXPECT_NEAR(row_lse[static_cast<size_t>(h)], block_lse[static_cast<size_t>(h * kRows + i)],
                    1e-5f);
      }
      options.window = 200;
    }
  }
}

}  // namespace
}  // namespace dfss::test
