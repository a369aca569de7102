// The reference implementation against answers worked out by hand and against an
// independent naive computation written differently (explicit score matrix, contiguous).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention_test_util.h"
#include "dfss/attention.h"

namespace dfss::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kLn3 = std::log(3.0f);

AttentionOptions reference_options() {
  AttentionOptions options;
  options.impl = AttentionImpl::reference;
  return options;
}

// A tensor with the given values in C order.
HostTensor tensor_of(Shape shape, const std::vector<float>& values, DType dtype = DType::f32) {
  HostTensor tensor(shape, dtype);
  size_t next = 0;
  tensor.for_each_index([&](int64_t a, int64_t b, int64_t c, int64_t d) {
    tensor.set(a, b, c, d, values.at(next++));
  });
  return tensor;
}

std::vector<float> run_reference(const HostTensor& q, const HostTensor& k, const HostTensor& v,
                                 const AttentionOptions& options, DType out_dtype = DType::f32) {
  HostTensor out({q.shape()[0], q.shape()[1], q.shape()[2], v.shape()[3]}, out_dtype);
  attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
  return out.values();
}

TEST(AttentionReference, OneKeyOutputsItsValue) {
  HostTensor q({1, 2, 3, 4}, DType::f32), k({1, 2, 1, 4}, DType::f32), v({1, 2, 1, 5}, DType::f32);
  fill_uniform(q, 1);
  fill_uniform(k, 2);
  fill_uniform(v, 3);
  const std::vector<float> out = run_reference(q, k, v, reference_options());
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t c = 0; c < 5; ++c) EXPECT_EQ(out[(h * 3 + i) * 5 + c], v.get(0, h, 0, c));
}

// Scores 0 and ln 3 give probabilities 1/4 and 3/4, so values 4 and 8 average to 7.
TEST(AttentionReference, TwoKeysWithKnownProbabilities) {
  AttentionOptions options = reference_options();
  options.scale = 1.0f;
  const HostTensor q = tensor_of({1, 1, 1, 1}, {1.0f});
  const HostTensor k = tensor_of({1, 1, 2, 1}, {0.0f, kLn3});
  const HostTensor v = tensor_of({1, 1, 2, 1}, {4.0f, 8.0f});
  EXPECT_NEAR(run_reference(q, k, v, options)[0], 7.0f, 1e-6);
}

TEST(AttentionReference, DefaultScaleIsInverseSqrtOfHeadDim) {
  // q . k1 = 4 * ln3 / 2 = 2 ln 3, scaled by 1 / sqrt(4) to ln 3.
  const HostTensor q = tensor_of({1, 1, 1, 4}, {1, 1, 1, 1});
  const float x = kLn3 / 2;
  const HostTensor k = tensor_of({1, 1, 2, 4}, {0, 0, 0, 0, x, x, x, x});
  const HostTensor v = tensor_of({1, 1, 2, 1}, {4.0f, 8.0f});
  EXPECT_NEAR(run_reference(q, k, v, reference_options())[0], 7.0f, 1e-6);
}

TEST(AttentionReference, AdditiveMaskBiasesScoresPerBatchRow) {
  const HostTensor q = tensor_of({2, 1, 1, 1}, {1, 1});
  const HostTensor k = tensor_of({2, 1, 2, 1}, {0, 0, 0, 0});
  const HostTensor v = tensor_of({2, 1, 2, 1}, {4, 8, 4, 8});
  // Row stride 5: batch 1's row starts at element 5.
  const std::vector<float> mask{0.0f, kLn3, -1, -1, -1, kLn3, 0.0f};
  AttentionOptions options = reference_options();
  options.mask.additive = mask.data();
  options.mask.additive_batch_stride = 5;
  const std::vector<float> out = run_reference(q, k, v, options);
  EXPECT_NEAR(out[0], 7.0f, 1e-6);
  EXPECT_NEAR(out[1], 5.0f, 1e-6);  // 3/4 * 4 + 1/4 * 8
}

TEST(AttentionReference, ValidLengthsHideTrailingKeys) {
  const HostTensor q = tensor_of({2, 1, 1, 1}, {1, 1});
  const HostTensor k = tensor_of({2, 1, 3, 1}, {0, 0, 0, 0, 0, 0});
  const HostTensor v = tensor_of({2, 1, 3, 1}, {4, 8, 100, 4, 8, 100});
  const std::vector<int64_t> lengths{1, 2};
  AttentionOptions options = reference_options();
  options.mask.valid_lengths = lengths.data();
  const std::vector<float> out = run_reference(q, k, v, options);
  EXPECT_EQ(out[0], 4.0f);
  EXPECT_EQ(out[1], 6.0f);
}

TEST(AttentionReference, CausalRowsSeeKeysUpToTheirDiagonal) {
  AttentionOptions options = reference_options();
  options.scale = 1.0f;
  options.causal = true;
  const HostTensor k = tensor_of({1, 1, 2, 1}, {0.0f, kLn3});
  const HostTensor v = tensor_of({1, 1, 2, 1}, {4.0f, 8.0f});
  // Lq = Lk: row 0 sees key 0 only, row 1 both.
  const std::vector<float> square = run_reference(tensor_of({1, 1, 2, 1}, {1, 1}), k, v, options);
  EXPECT_EQ(square[0], 4.0f);
  EXPECT_NEAR(square[1], 7.0f, 1e-6);
  // Lq = 1 < Lk = 2: the single row is aligned with the last key and sees both.
  EXPECT_NEAR(run_reference(tensor_of({1, 1, 1, 1}, {1}), k, v, options)[0], 7.0f, 1e-6);
  // Lq = 3 > Lk = 2: row 0 sees nothing (zeros), row 1 key 0, row 2 both.
  const std::vector<float> tall = run_reference(tensor_of({1, 1, 3, 1}, {1, 1, 1}), k, v, options);
  EXPECT_EQ(tall[0], 0.0f);
  EXPECT_EQ(tall[1], 4.0f);
  EXPECT_NEAR(tall[2], 7.0f, 1e-6);
}

TEST(AttentionReference, LargeScoresDoNotOverflow) {
  AttentionOptions options = reference_options();
  options.scale = 1.0f;
  const HostTensor q = tensor_of({1, 1, 1, 1}, {1.0f});
  const HostTensor k = tensor_of({1, 1, 2, 1}, {1000.0f, 1001.0f});
  const HostTensor v = tensor_of({1, 1, 2, 1}, {4.0f, 8.0f});
  const double e = std::exp(1.0);
  EXPECT_NEAR(run_reference(q, k, v, options)[0], 4.0 + 4.0 * e / (1.0 + e), 1e-5);
}

// Row 0: all keys -inf -> zeros. Row 1: a NaN score among -inf -> NaN. Row 2: a +inf score
// -> NaN. The non-finite scores come from q and k: masks may only hold finite values or -inf.
TEST(AttentionReference, NonFiniteScoresFollowTheContract) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const HostTensor q = tensor_of({3, 1, 1, 1}, {1, nan, 1});
  const HostTensor k = tensor_of({3, 1, 2, 1}, {0, 0, 0, 0, kInf, 0});
  const HostTensor v = tensor_of({3, 1, 2, 1}, {4, 8, 4, 8, 4, 8});
  const std::vector<float> mask{-kInf, -kInf, -kInf, 0.0f, 0.0f, 0.0f};
  AttentionOptions options = reference_options();
  options.mask.additive = mask.data();
  const std::vector<float> out = run_reference(q, k, v, options);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_TRUE(std::isnan(out[1]));
  EXPECT_TRUE(std::isnan(out[2]));
}

TEST(AttentionReference, Bf16InputsAndOutput) {
  AttentionOptions options = reference_options();
  options.scale = 1.0f;
  const HostTensor q = tensor_of({1, 1, 1, 1}, {1.0f}, DType::bf16);
  const HostTensor k = tensor_of({1, 1, 2, 1}, {0.0f, kLn3}, DType::bf16);
  const HostTensor v = tensor_of({1, 1, 2, 1}, {4.0f, 8.0f}, DType::bf16);
  // The expected value from the bf16-rounded key, rounded to bf16 once at the end.
  const double p1 = 1.0 / (1.0 + std::exp(-static_cast<double>(k.get(0, 0, 1, 0))));
  const float expected = bf16_to_float(float_to_bf16(static_cast<float>(4.0 + 4.0 * p1)));
  EXPECT_EQ(run_reference(q, k, v, options, DType::bf16)[0], expected);
}

// Written independently of the library: contiguous [B][H][L][C] arrays, a full score
// matrix per head with masks applied as -inf, then an explicit softmax and product.
std::vector<double> naive_attention(const HostTensor& q, const HostTensor& k, const HostTensor& v,
                                    double scale, bool causal, const std::vector<float>* additive,
                                    const std::vector<int64_t>* lengths) {
  const auto [batch, heads, lq, d] = q.shape();
  const int64_t lk = k.shape()[2], dv = v.shape()[3];
  std::vector<double> out;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < lq; ++i) {
        std::vector<double> p(static_cast<size_t>(lk), -INFINITY);
        for (int64_t j = 0; j < lk; ++j) {
          const bool hidden = (lengths && j >= (*lengths)[b]) || (causal && j > i + lk - lq);
          if (hidden) continue;
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += double(q.get(b, h, i, c)) * k.get(b, h, j, c);
          p[j] = scale * dot + (additive ? (*additive)[b * lk + j] : 0.0);
        }
        const double top = lk ? *std::max_element(p.begin(), p.end()) : -INFINITY;
        double total = 0;
        for (double& x : p) total += (x = top == -INFINITY ? 0.0 : std::exp(x - top));
        for (int64_t c = 0; c < dv; ++c) {
          double sum = 0;
          for (int64_t j = 0; j < lk; ++j) sum += p[j] * v.get(b, h, j, c);
          out.push_back(top == -INFINITY ? 0.0 : sum / total);
        }
      }
    }
  }
  return out;
}

struct NaiveCase {
  Shape q_shape;
  int64_t lk, dv;
  bool causal, additive, lengths;
  Layout layout;
};

TEST(AttentionReference, MatchesNaiveComputation) {
  const std::vector<NaiveCase> cases{
      {{1, 1, 4, 3}, 4, 2, false, false, false, Layout::contiguous},
      {{2, 2, 5, 3}, 7, 2, true, false, false, Layout::contiguous},
      {{2, 2, 7, 4}, 5, 3, true, true, false, Layout::transposed},
      {{2, 3, 6, 2}, 6, 5, false, true, true, Layout::padded},
      {{3, 1, 2, 5}, 9, 1, true, true, true, Layout::transposed},
  };
  uint64_t seed = 100;
  for (const NaiveCase& c : cases) {
    SCOPED_TRACE("q " + shape_string(c.q_shape) + " lk " + std::to_string(c.lk));
    const auto [batch, heads, lq, d] = c.q_shape;
    HostTensor q(c.q_shape, DType::f32, c.layout), k({batch, heads, c.lk, d}, DType::f32, c.layout),
        v({batch, heads, c.lk, c.dv}, DType::f32, c.layout);
    fill_uniform(q, seed++);
    fill_uniform(k, seed++);
    fill_uniform(v, seed++);
    Random random(seed++);
    std::vector<float> additive(static_cast<size_t>(batch * c.lk));
    for (float& x : additive) x = random.integer(0, 4) == 0 ? -kInf : random.uniform(-2, 2);
    std::vector<int64_t> lengths(static_cast<size_t>(batch));
    for (int64_t& n : lengths) n = random.integer(0, c.lk);
    AttentionOptions options = reference_options();
    options.causal = c.causal;
    if (c.additive) options.mask.additive = additive.data();
    if (c.lengths) options.mask.valid_lengths = lengths.data();

    HostTensor out({batch, heads, lq, c.dv}, DType::f32, c.layout);
    attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
    const std::vector<double> want =
        naive_attention(q, k, v, 1.0 / std::sqrt(double(d)), c.causal,
                        c.additive ? &additive : nullptr, c.lengths ? &lengths : nullptr);
    const std::vector<float> want_f32(want.begin(), want.end());
    EXPECT_TRUE(all_close(out.values(), want_f32, 1e-6));
  }
}

TEST(AttentionReference, ThreadCountDoesNotChangeBits) {
  HostTensor q({2, 3, 37, 16}, DType::f32), k({2, 3, 41, 16}, DType::f32),
      v({2, 3, 41, 8}, DType::f32);
  fill_uniform(q, 7);
  fill_uniform(k, 8);
  fill_uniform(v, 9);
  std::vector<std::vector<unsigned char>> results;
  for (int threads : {1, 2, 3}) {
    HostTensor out({2, 3, 37, 8}, DType::f32);
    AttentionOptions options = reference_options();
    options.causal = true;
    options.threads = threads;
    attention(q.view(), k.view(), v.view(), out.mutable_view(), options);
    results.push_back(out.bytes());
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

}  // namespace
}  // namespace dfss::test
