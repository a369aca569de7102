// The int8 linear layers: the quantize / dequantize kernels of every ISA here against plain
// references (bit for bit), the weight quantization, and QuantizedLinear (oneDNN's integer
// GEMM in between) against exact integer arithmetic, saturation cases included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dfss/cpu.h"
#include "dfss/errors.h"
#include "kernel_test_util.h"
#include "kernels/quantize/quantize_kernels.h"
#include "model/quantized_linear.h"

namespace dfss {
namespace {

using test::isas_here;
using test::normal;

using kernels::FusedEpilogue;

struct Quantized {
  std::vector<uint8_t> q;
  float scale = 0;
  int32_t zero_point = -1;
};

// The documented rule, one element at a time.
Quantized quantize_reference(const std::vector<float>& x) {
  Quantized out;
  out.q.assign(x.size(), 0);
  float low = 0.0f, high = 0.0f;
  for (float v : x) {
    if (!std::isfinite(v)) {
      out.scale = std::numeric_limits<float>::quiet_NaN();
      out.zero_point = 0;
      return out;
    }
    low = std::min(low, v);
    high = std::max(high, v);
  }
  float scale = high / 255.0f - low / 255.0f;
  if (!(scale >= std::numeric_limits<float>::min())) scale = 1.0f;
  const float inverse = 1.0f / scale;
  const float zero_point = std::clamp(std::nearbyint(-low * inverse), 0.0f, 255.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    const float shifted = x[i] * inverse + zero_point;
    out.q[i] = static_cast<uint8_t>(std::nearbyint(std::clamp(shifted, 0.0f, 255.0f)));
  }
  out.scale = scale;
  out.zero_point = static_cast<int32_t>(zero_point);
  return out;
}

Quantized quantize_with(Isa isa, const std::vector<float>& x) {
  Quantized out;
  out.q.assign(x.size(), 0xAB);
  kernels::quantize_kernels(isa).quantize_row(
      {x.data(), static_cast<int64_t>(x.size()), out.q.data(), &out.scale, &out.zero_point});
  return out;
}

void expect_same(const Quantized& got, const Quantized& want, const std::string& what) {
  if (std::isnan(want.scale)) {
    EXPECT_TRUE(std::isnan(got.scale)) << what;
  } else {
    EXPECT_EQ(got.scale, want.scale) << what;
  }
  EXPECT_EQ(got.zero_point, want.zero_point) << what;
  EXPECT_EQ(got.q, want.q) << what;
}

TEST(Quantize, RowsMatchTheReferenceOnEveryIsa) {
  std::vector<std::pair<std::string, std::vector<float>>> rows;
  uint32_t seed = 1;
  for (int64_t cols : {1, 5, 8, 15, 16, 17, 31, 33, 384, 1537}) {
    rows.emplace_back("normal " + std::to_string(cols), normal(cols, seed++));
    rows.emplace_back("shifted " + std::to_string(cols), normal(cols, seed++, 0.1f, 3.0f));
    rows.emplace_back("negative " + std::to_string(cols), normal(cols, seed++, 0.1f, -3.0f));
  }
  rows.emplace_back("zeros", std::vector<float>(19, 0.0f));
  rows.emplace_back("huge", std::vector<float>{3e38f, -3e38f, 1.0f, 0.0f, -2e38f});
  rows.emplace_back("tiny", std::vector<float>{1e-42f, -3e-43f, 0.0f});
  std::vector<float> with_nan = normal(40, 99);
  with_nan[37] = std::numeric_limits<float>::quiet_NaN();
  rows.emplace_back("NaN in the tail", with_nan);
  std::vector<float> with_inf = normal(40, 98);
  with_inf[3] = -std::numeric_limits<float>::infinity();
  rows.emplace_back("-inf", with_inf);
  // Halfway values: 2.5 steps round to even.
  rows.emplace_back("ties", std::vector<float>{0.0f, 255.0f, 2.5f, 3.5f, 100.5f, 254.5f});

  for (const auto& [name, x] : rows) {
    const Quantized want = quantize_reference(x);
    for (Isa isa : isas_here())
      expect_same(quantize_with(isa, x), want, name + " on " + isa_name(isa));
  }
}

TEST(Quantize, RoundTripIsWithinHalfAStep) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const std::vector<float> x = normal(300 + seed, seed, 1.0f + seed, seed % 3 == 0 ? 2.0f : 0.0f);
    const Quantized q = quantize_with(detected_isa(), x);
    float low = 0, high = 0;
    for (float v : x) low = std::min(low, v), high = std::max(high, v);
    EXPECT_NEAR(q.scale, (high - low) / 255.0f, 1e-6f * (high - low));
    for (size_t i = 0; i < x.size(); ++i) {
      const float back = q.scale * static_cast<float>(q.q[i] - q.zero_point);
      ASSERT_LE(std::fabs(back - x[i]), 0.5f * q.scale * (1 + 1e-5f))
          << "seed " << seed << " i " << i;
    }
    // 0 is exact: a zero activation contributes nothing.
    EXPECT_EQ(q.scale * static_cast<float>(q.zero_point - q.zero_point), 0.0f);
  }
  const Quantized zeros = quantize_with(detected_isa(), std::vector<float>(9, 0.0f));
  EXPECT_EQ(zeros.scale, 1.0f);
  EXPECT_EQ(zeros.zero_point, 0);
  EXPECT_EQ(zeros.q, std::vector<uint8_t>(9, 0));
  const Quantized positive = quantize_with(detected_isa(), {1.0f, 2.0f, 4.0f});
  EXPECT_EQ(positive.zero_point, 0);
  EXPECT_EQ(positive.q.back(), 255);
  const Quantized negative = quantize_with(detected_isa(), {-1.0f, -2.0f, -4.0f});
  EXPECT_EQ(negative.zero_point, 255);
  EXPECT_EQ(negative.q.back(), 0);
}

struct DequantizeCase {
  std::vector<int32_t> acc;
  float row_scale = 0.0f;
  int32_t zero_point = 0;
  std::vector<float> col_scale, col_sum, bias, y;
};

// Static quantization by the documented rule, one element at a time.
Quantized quantize_static_reference(const std::vector<float>& x, float scale, int32_t zero_point) {
  Quantized out;
  out.q.assign(x.size(), 0);
  out.zero_point = zero_point;
  for (float v : x) {
    if (!std::isfinite(v)) {
      out.scale = std::numeric_limits<float>::quiet_NaN();
      return out;
    }
  }
  const float inverse = 1.0f / scale;
  for (size_t i = 0; i < x.size(); ++i) {
    const float shifted = x[i] * inverse + static_cast<float>(zero_point);
    out.q[i] = static_cast<uint8_t>(std::nearbyint(std::clamp(shifted, 0.0f, 255.0f)));
  }
  out.scale = scale;
  return out;
}

TEST(Quantize, StaticRowsMatchTheReferenceOnEveryIsa) {
  std::vector<std::vector<float>> rows;
  uint32_t seed = 50;
  for (int64_t cols : {1, 5, 8, 17, 33, 384, 1537}) rows.push_back(normal(cols, seed++, 2.0f));
  // Beyond the calibrated range on both sides (clamped), ties, and non-finite rows.
  rows.push_back({-100.0f, 100.0f, 0.0f, 1e30f, -1e30f, 0.25f * 3.5f, 0.25f * 2.5f});
  std::vector<float> with_nan = normal(40, 77);
  with_nan[39] = std::numeric_limits<float>::quiet_NaN();
  rows.push_back(with_nan);
  std::vector<float> with_inf = normal(19, 78);
  with_inf[2] = std::numeric_limits<float>::infinity();
  rows.push_back(with_inf);
  for (const auto& [scale, zero_point] :
       {std::pair{0.25f, 0}, std::pair{0.02f, 128}, std::pair{1.0f / 255.0f, 255}}) {
    for (const std::vector<float>& x : rows) {
      const Quantized want = quantize_static_reference(x, scale, zero_point);
      for (Isa isa : isas_here()) {
        Quantized got;
        got.q.assign(x.size(), 0xAB);
        got.zero_point = zero_point;
        kernels::quantize_kernels(isa).quantize_row_static(
            {x.data(), static_cast<int64_t>(x.size()), got.q.data(), scale, zero_point,
             &got.scale});
        expect_same(got, want,
                    std::to_string(x.size()) + " columns, scale " + std::to_string(scale) + " on " +
                        isa_name(isa));
      }
    }
  }
}

// The documented formula, one element at a time.
std::vector<float> dequantize_reference(const DequantizeCase& c, FusedEpilogue epilogue) {
  std::vector<float> y = c.y;
  for (size_t i = 0; i < y.size(); ++i) {
    const float centered =
        static_cast<float>(c.acc[i]) - static_cast<float>(c.zero_point) * c.col_sum[i];
    const float result = std::fma(centered, c.row_scale * c.col_scale[i], c.bias[i]);
    if (epilogue == FusedEpilogue::gelu_erf)
      y[i] = static_cast<float>(0.5 * result * (1.0 + std::erf(result / std::sqrt(2.0))));
    else if (epilogue == FusedEpilogue::add_residual)
      y[i] += result;
    else
      y[i] = result;
  }
  return y;
}

TEST(Quantize, DequantizeMatchesTheReferenceOnEveryIsa) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> acc_dist(-20'000'000, 20'000'000), sum_dist(-90000, 90000);
  for (int64_t cols : {1, 7, 8, 9, 16, 23, 384, 1153}) {
    DequantizeCase c;
    for (int64_t i = 0; i < cols; ++i) {
      c.acc.push_back(acc_dist(rng));
      c.col_sum.push_back(static_cast<float>(sum_dist(rng)));
    }
    c.row_scale = 0.0137f;
    c.zero_point = 131;
    c.col_scale = normal(cols, 7, 1e-7f, 3e-7f);
    c.bias = normal(cols, 8);
    c.y = normal(cols, 9);
    for (FusedEpilogue epilogue :
         {FusedEpilogue::none, FusedEpilogue::add_residual, FusedEpilogue::gelu_erf}) {
      const std::vector<float> want = dequantize_reference(c, epilogue);
      for (Isa isa : isas_here()) {
        std::vector<float> y = c.y;
        kernels::quantize_kernels(isa).dequantize_row(
            {c.acc.data(), cols, c.row_scale, c.zero_point, c.col_scale.data(), c.col_sum.data(),
             c.bias.data(), y.data(), epilogue});
        for (int64_t i = 0; i < cols; ++i) {
          const std::string where = std::string(isa_name(isa)) + " cols " + std::to_string(cols) +
                                    " i " + std::to_string(i);
          if (epilogue == FusedEpilogue::gelu_erf) {
            // GELU's erf is a polynomial (absolute error < 1.5e-7 in erf).
            ASSERT_NEAR(y[i], want[i], 2e-7 * std::fabs(want[i]) + 1e-6) << where;
          } else {
            ASSERT_EQ(y[i], want[i]) << where;
          }
        }
      }
    }
  }
}

TEST(QuantizeWeights, PerRowSevenBitRoundTrip) {
  const int64_t out = 5, in = 37;
  std::vector<float> w = normal(out * in, 3);
  for (int64_t c = 0; c < in; ++c) w[static_cast<size_t>(2 * in + c)] = 0.0f;  // a zero row
  w[static_cast<size_t>(4 * in + 6)] = -50.0f;  // an outlier sets row 4's scale
  const model::QuantizedWeights q = model::quantize_weights(w, out, in, "layer");
  for (int64_t r = 0; r < out; ++r) {
    float largest = 0.0f;
    int32_t sum = 0;
    for (int64_t c = 0; c < in; ++c) {
      largest = std::max(largest, std::fabs(w[static_cast<size_t>(r * in + c)]));
      sum += q.q[static_cast<size_t>(r * in + c)];
    }
    const float scale = q.scale[static_cast<size_t>(r)];
    EXPECT_EQ(scale, largest > 0 ? largest / model::kInt8WeightMax : 1.0f) << r;
    EXPECT_EQ(q.row_sum[static_cast<size_t>(r)], static_cast<float>(sum)) << r;
    for (int64_t c = 0; c < in; ++c) {
      const int8_t v = q.q[static_cast<size_t>(r * in + c)];
      ASSERT_LE(std::abs(int{v}), model::kInt8WeightMax);
      ASSERT_LE(std::fabs(scale * v - w[static_cast<size_t>(r * in + c)]), 0.5f * scale * 1.0001f);
    }
  }
  EXPECT_EQ(q.q[static_cast<size_t>(4 * in + 6)], -model::kInt8WeightMax);

  w[11] = std::numeric_limits<float>::infinity();
  try {
    model::quantize_weights(w, out, in, "layer 3's feed-forward input");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 3's feed-forward input: weight [0, 11]"),
              std::string::npos)
        << e.what();
  }
}

// QuantizedLinear against exact integer arithmetic on the same quantized values.
// static_range: the rows quantized with the scale and zero point of that calibrated range.
std::vector<float> quantized_linear_reference(
    const std::vector<float>& x, int64_t rows, const std::vector<float>& w,
    const std::vector<float>& bias, int64_t out, int64_t in, const std::vector<float>& y0,
    FusedEpilogue epilogue, std::optional<std::pair<float, float>> static_range = std::nullopt) {
  const model::QuantizedWeights qw = model::quantize_weights(w, out, in, "reference");
  std::vector<float> y = y0;
  for (int64_t t = 0; t < rows; ++t) {
    const std::vector<float> x_row(x.begin() + t * in, x.begin() + (t + 1) * in);
    Quantized qx = quantize_reference(x_row);
    if (static_range) {
      // The range's own scale and zero point: those quantize_reference gives a row of
      // exactly its two ends.
      const Quantized ends = quantize_reference({static_range->first, static_range->second});
      qx = quantize_static_reference(x_row, ends.scale, ends.zero_point);
    }
    DequantizeCase c;
    c.row_scale = qx.scale;
    c.zero_point = qx.zero_point;
    for (int64_t o = 0; o < out; ++o) {
      int64_t acc = 0;
      for (int64_t k = 0; k < in; ++k)
        acc += int64_t{qx.q[static_cast<size_t>(k)]} * qw.q[static_cast<size_t>(o * in + k)];
      c.acc.push_back(static_cast<int32_t>(acc));
    }
    c.col_scale = qw.scale;
    c.col_sum = qw.row_sum;
    c.bias = bias;
    c.y.assign(y.begin() + t * out, y.begin() + (t + 1) * out);
    const std::vector<float> row = dequantize_reference(c, epilogue);
    std::copy(row.begin(), row.end(), y.begin() + t * out);
  }
  return y;
}

model::LinearEpilogue model_epilogue(FusedEpilogue e) {
  return e == FusedEpilogue::gelu_erf       ? model::LinearEpilogue::gelu_erf
         : e == FusedEpilogue::add_residual ? model::LinearEpilogue::add_residual
                                            : model::LinearEpilogue::none;
}

void check_linear(const std::vector<float>& x, int64_t rows, const std::vector<float>& w,
                  int64_t out, int64_t in, FusedEpilogue epilogue, const std::string& what,
                  std::optional<std::pair<float, float>> static_range = std::nullopt) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const std::vector<float> bias = normal(out, 17);
  const std::vector<float> y0 = normal(rows * out, 18);
  const std::vector<float> want =
      quantized_linear_reference(x, rows, w, bias, out, in, y0, epilogue, static_range);
  model::QuantizedLinear layer(engine, w, bias, out, in, model_epilogue(epilogue), what);
  if (static_range) layer.set_static_range(static_range->first, static_range->second);
  std::vector<float> first;
  for (Isa isa : isas_here()) {
    for (int threads : {1, 2, 3}) {
      std::vector<float> y = y0;
      layer.run(stream, x.data(), rows, y.data(), threads, isa);
      const std::string where =
          what + " on " + isa_name(isa) + ", " + std::to_string(threads) + " threads";
      for (size_t i = 0; i < y.size(); ++i) {
        if (epilogue == FusedEpilogue::gelu_erf)
          ASSERT_NEAR(y[i], want[i], 2e-7 * std::fabs(want[i]) + 1e-6) << where << " at " << i;
        else
          ASSERT_EQ(y[i], want[i]) << where << " at " << i;
      }
      // Any thread count, the same bits.
      if (first.empty()) first = y;
      if (isa == isas_here().front()) {
        EXPECT_EQ(y, first) << where;
      }
    }
  }
}

TEST(QuantizedLinear, StaticRangeMatchesExactIntegerArithmetic) {
  for (FusedEpilogue epilogue :
       {FusedEpilogue::none, FusedEpilogue::add_residual, FusedEpilogue::gelu_erf}) {
    // A range narrower than the data (values beyond it clamp) and one wider.
    check_linear(normal(13 * 40, 1), 13, normal(24 * 40, 2, 0.1f), 24, 40, epilogue, "narrow",
                 std::pair{-1.5f, 1.0f});
    check_linear(normal(13 * 40, 1), 13, normal(24 * 40, 2, 0.1f), 24, 40, epilogue, "wide",
                 std::pair{-8.0f, 9.0f});
  }
  check_linear(normal(70 * 384, 3, 2.0f, 0.5f), 70, normal(96 * 384, 4, 0.05f), 96, 384,
               FusedEpilogue::none, "positive range", std::pair{0.5f, 6.0f});
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const std::vector<float> w = normal(8 * 4, 1), bias(8, 0.0f);
  model::QuantizedLinear layer(engine, w, bias, 8, 4, model::LinearEpilogue::none, "layer 2's QKV");
  EXPECT_FALSE(layer.is_static());
  for (const auto& [lo, hi] :
       {std::pair{1.0f, -1.0f}, std::pair{-INFINITY, 1.0f}, std::pair{0.0f, NAN}}) {
    try {
      layer.set_static_range(lo, hi);
      FAIL() << "expected InvalidArgument for [" << lo << ", " << hi << "]";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("layer 2's QKV: calibrated input range"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(layer.is_static());
  layer.set_static_range(-1.0f, 1.0f);
  EXPECT_TRUE(layer.is_static());
  layer.set_dynamic();
  EXPECT_FALSE(layer.is_static());
}

TEST(QuantizedLinear, MatchesExactIntegerArithmetic) {
  for (FusedEpilogue epilogue :
       {FusedEpilogue::none, FusedEpilogue::add_residual, FusedEpilogue::gelu_erf}) {
    check_linear(normal(13 * 40, 1), 13, normal(24 * 40, 2, 0.1f), 24, 40, epilogue, "13x40x24");
  }
  check_linear(normal(70 * 384, 3, 2.0f, 0.5f), 70, normal(96 * 384, 4, 0.05f), 96, 384,
               FusedEpilogue::none, "70x384x96");
  check_linear(normal(1 * 9, 5), 1, normal(3 * 9, 6), 3, 9, FusedEpilogue::none, "1x9x3");
}

// Without VNNI the int8 GEMM sums u8·s8 pairs in int16, which saturates at 255·127·2: the
// 7-bit weights keep even the largest pairs exact.
TEST(QuantizedLinear, LargestProductsDoNotSaturate) {
  const int64_t rows = 33, in = 1536, out = 40;
  // Activations all at the top of their range (q = 255), weights at ±max.
  std::vector<float> x(static_cast<size_t>(rows * in), 7.0f);
  for (int64_t t = 0; t < rows; t += 2) x[static_cast<size_t>(t * in)] = 0.0f;  // zp = 0, q = 255
  std::vector<float> w(static_cast<size_t>(out * in));
  for (int64_t o = 0; o < out; ++o)
    for (int64_t k = 0; k < in; ++k) w[static_cast<size_t>(o * in + k)] = o % 2 ? 0.5f : -0.5f;
  check_linear(x, rows, w, out, in, FusedEpilogue::none, "saturation");

  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const std::vector<float> bias(static_cast<size_t>(out), 0.0f);
  const model::QuantizedLinear layer(engine, w, bias, out, in, model::LinearEpilogue::none, "s");
  std::vector<float> y(static_cast<size_t>(rows * out));
  layer.run(stream, x.data(), rows, y.data(), 2, Isa::automatic);
  // 1535 (or 1536) activations of 7 times ±0.5: the exact products, to float precision.
  EXPECT_NEAR(y[0], -0.5 * 7 * 1535, 1e-3);
  EXPECT_NEAR(y[1], 0.5 * 7 * 1535, 1e-3);
}

TEST(QuantizedLinear, NonFiniteActivationsGiveNaNRows) {
  const int64_t rows = 3, in = 20, out = 8;
  std::vector<float> x = normal(rows * in, 1);
  x[static_cast<size_t>(in + 4)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> w = normal(out * in, 2), bias = normal(out, 3);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const model::QuantizedLinear layer(engine, w, bias, out, in, model::LinearEpilogue::none, "n");
  std::vector<float> y(static_cast<size_t>(rows * out));
  layer.run(stream, x.data(), rows, y.data(), 2, Isa::automatic);
  for (int64_t o = 0; o < out; ++o) {
    EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(o)]));
    EXPECT_TRUE(std::isnan(y[static_cast<size_t>(out + o)]));
    EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(2 * out + o)]));
  }
}

}  // namespace
}  // namespace dfss
