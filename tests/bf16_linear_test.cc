// The bf16 linear layers: the rounding kernel of every ISA here against float_to_bf16 (bit
// for bit), and Bf16Linear (oneDNN's bf16 GEMM) against double-precision sums of the same
// bf16 products.
#include "model/bf16_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <vector>

#include "dfss/cpu.h"
#include "dfss/tensor.h"
#include "kernel_test_util.h"
#include "kernels/quantize/quantize_kernels.h"

namespace dfss {
namespace {

using test::isas_here;
using test::normal;

float from_bits(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

TEST(RoundRowToBf16, MatchesFloatToBf16OnEveryIsa) {
  std::vector<std::vector<float>> rows;
  for (int64_t cols : {1, 7, 8, 15, 16, 17, 33, 384, 1537}) rows.push_back(normal(cols, cols));
  // Ties both ways (the low half exactly 0x8000 with the kept bit even, then odd), values
  // just either side of a tie, overflow to infinity, subnormals, signed zeros, every NaN kind.
  rows.push_back(
      {from_bits(0x3F808000), from_bits(0x3F818000), from_bits(0x3F807FFF), from_bits(0x3F808001),
       std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(), from_bits(0x00000001),
       from_bits(0x807F8000), 0.0f, -0.0f, std::numeric_limits<float>::infinity(),
       -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
       from_bits(0x7F800001), from_bits(0xFFBFFFFF), from_bits(0x7FFFFFFF), from_bits(0xFF800001)});
  for (const std::vector<float>& x : rows) {
    std::vector<uint16_t> want(x.size());
    for (size_t i = 0; i < x.size(); ++i) want[i] = float_to_bf16(x[i]);
    for (Isa isa : isas_here()) {
      std::vector<uint16_t> got(x.size() + 1, 0xABCD);  // one past the end must stay
      kernels::quantize_kernels(isa).round_row_to_bf16(
          {x.data(), static_cast<int64_t>(x.size()), got.data()});
      EXPECT_EQ(got.back(), 0xABCD) << isa_name(isa) << ": wrote past the row";
      got.pop_back();
      EXPECT_EQ(got, want) << x.size() << " columns on " << isa_name(isa);
    }
  }
  // The NaN rule itself: NaN stays NaN, quiet, sign kept.
  EXPECT_EQ(float_to_bf16(from_bits(0x7F800001)), 0x7FC0);
  EXPECT_EQ(float_to_bf16(from_bits(0xFF800001)), 0xFFC0);
  EXPECT_EQ(float_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie, kept bit even: down
  EXPECT_EQ(float_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie, kept bit odd: up
}

double gelu(double v) {
  return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}

void check_layer(int64_t rows, int64_t out, int64_t in, model::LinearEpilogue epilogue,
                 const std::string& what) {
  const std::vector<float> x = normal(rows * in, 1, 2.0f), w = normal(out * in, 2, 0.05f);
  const std::vector<float> bias = normal(out, 3), y0 = normal(rows * out, 4);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const model::Bf16Linear layer(engine, w, bias, out, in, epilogue, what);
  // The exact sums of the bf16 products, and of the fp32 ones (which bf16 must not give).
  std::vector<double> want(y0.size()), fp32(y0.size()), bound(y0.size());
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = bias[static_cast<size_t>(o)], plain = sum, magnitude = std::fabs(sum);
      for (int64_t k = 0; k < in; ++k) {
        const float a = x[static_cast<size_t>(t * in + k)], b = w[static_cast<size_t>(o * in + k)];
        const double product =
            double{bf16_to_float(float_to_bf16(a))} * bf16_to_float(float_to_bf16(b));
        sum += product;
        plain += double{a} * b;
        magnitude += std::fabs(product);
      }
      const size_t i = static_cast<size_t>(t * out + o);
      const double residual = epilogue == model::LinearEpilogue::add_residual ? y0[i] : 0.0;
      const bool has_gelu = epilogue == model::LinearEpilogue::gelu_erf;
      want[i] = (has_gelu ? gelu(sum) : sum) + residual;
      fp32[i] = (has_gelu ? gelu(plain) : plain) + residual;
      // fp32 summation of in + 2 terms in any order, then the epilogue's own rounding.
      bound[i] =
          (in + 2) * 0x1p-24 * (magnitude + std::fabs(residual)) + 2e-6 * std::fabs(want[i]) + 1e-6;
    }
  }
  std::vector<float> first;
  for (Isa isa : isas_here()) {
    for (int threads : {1, 2, 3}) {
      std::vector<float> y = y0;
      layer.run(stream, x.data(), rows, y.data(), threads, isa);
      const std::string where =
          what + " on " + isa_name(isa) + ", " + std::to_string(threads) + " threads";
      double furthest_from_fp32 = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], want[i], bound[i]) << where << " at " << i;
        furthest_from_fp32 = std::max(furthest_from_fp32, std::fabs(y[i] - fp32[i]) - bound[i]);
      }
      EXPECT_GT(furthest_from_fp32, 0.0) << where << ": the inputs were not rounded to bf16";
      // Any thread count and rounding kernel, the same bits.
      if (first.empty()) first = y;
      EXPECT_EQ(y, first) << where;
    }
  }
}

TEST(Bf16Linear, MatchesExactSumsOfBf16Products) {
  if (!model::onednn_has_bf16_gemm()) GTEST_SKIP() << "oneDNN has no bf16 GEMM on this CPU";
  for (model::LinearEpilogue epilogue :
       {model::LinearEpilogue::none, model::LinearEpilogue::add_residual,
        model::LinearEpilogue::gelu_erf}) {
    check_layer(13, 24, 40, epilogue, "13x40x24");
  }
  check_layer(70, 96, 384, model::LinearEpilogue::none, "70x384x96");
  check_layer(300, 1536, 384, model::LinearEpilogue::gelu_erf, "300x384x1536");
  check_layer(1, 3, 9, model::LinearEpilogue::none, "1x9x3");
}

TEST(Bf16Linear, NonFiniteActivationsGiveNonFiniteRows) {
  if (!model::onednn_has_bf16_gemm()) GTEST_SKIP() << "oneDNN has no bf16 GEMM on this CPU";
  const int64_t rows = 3, in = 20, out = 8;
  std::vector<float> x = normal(rows * in, 1);
  x[static_cast<size_t>(in + 4)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> w = normal(out * in, 2), bias = normal(out, 3);
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const model::Bf16Linear layer(engine, w, bias, out, in, model::LinearEpilogue::none, "n");
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
