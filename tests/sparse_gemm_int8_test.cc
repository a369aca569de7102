// The int8 linear layer on block-sparse weights: the int8 block-sparse kernels of every ISA
// here against plain int32 loops (exact), their packing, and QuantizedLinear on a block-sparse
// matrix against the dense int8 layer of the same pruned matrix (the same bits: both sums are
// exact integers, dequantized alike).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dfss/errors.h"
#include "dfss/sparse_linear.h"
#include "kernel_test_util.h"
#include "kernels/sparse_gemm_int8/sparse_gemm_int8_kernels.h"
#include "model/int8_block_sparse.h"
#include "model/quantized_linear.h"

namespace dfss {
namespace {

using test::isas_here;
using test::normal;

struct KernelCase {
  int64_t tokens, rows, cols;
  BlockSparsePattern pattern;
  bool zero_block = false;  // the first block's weights all 0
};

std::string name(const KernelCase& c) {
  return std::to_string(c.tokens) + " tokens, " + std::to_string(c.rows) + " x " +
         std::to_string(c.cols) + ", " + block_sparse_pattern_name(c.pattern);
}

// Runs every block of `w` on `kernels` the way QuantizedLinear does, for u8 activations
// x [tokens][cols]; returns acc [tokens][rows].
std::vector<int32_t> run_blocks(const kernels::SparseGemmInt8Kernels& kernels,
                                const model::Int8BlockSparseWeights& w,
                                const std::vector<uint8_t>& x, int64_t tokens, int64_t rows,
                                int64_t cols) {
  const int64_t stride = (tokens + 15) / 16 * 16;
  // Padding tokens hold 0xAB: their results must not be stored anywhere.
  std::vector<uint8_t> x_t(static_cast<size_t>(cols * stride), 0xAB);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < cols; ++c) x_t[c * stride + t] = x[t * cols + c];
  std::vector<uint8_t> gathered(static_cast<size_t>(4 * w.quads * stride));
  // One spare column on each side, with a sentinel, to catch stores outside the block.
  const int64_t acc_stride = rows + 2;
  std::vector<int32_t> acc(static_cast<size_t>(tokens * acc_stride), -7);
  for (int64_t b = 0; b < w.blocks; ++b) {
    kernels::SparseGemmInt8Panel job;
    job.x_t = x_t.data();
    job.x_t_stride = stride;
    job.tokens = tokens;
    job.columns = w.columns.data() + b * 4 * w.quads;
    job.quads = w.quads;
    job.values = w.values.data() + b * w.quads * w.block_rows * 4;
    job.block_rows = w.block_rows;
    job.outputs = static_cast<int>(std::min<int64_t>(w.block_rows, rows - b * w.block_rows));
    job.gathered = gathered.data();
    job.acc = acc.data() + 1 + b * w.block_rows;
    job.acc_stride = acc_stride;
    kernels.block_panel(job);
  }
  std::vector<int32_t> out(static_cast<size_t>(tokens * rows));
  for (int64_t t = 0; t < tokens; ++t) {
    EXPECT_EQ(acc[t * acc_stride], -7) << "a store left of the outputs, token " << t;
    EXPECT_EQ(acc[t * acc_stride + rows + 1], -7) << "a store right of the outputs, token " << t;
    std::copy_n(acc.begin() + t * acc_stride + 1, rows, out.begin() + t * rows);
  }
  return out;
}

TEST(SparseGemmInt8, KernelsMatchPlainIntegerSums) {
  const std::vector<KernelCase> cases = {
      {1, 4, 8, {2, 4, 4}},           {16, 4, 16, {1, 4, 4}},         {17, 12, 24, {2, 4, 4}},
      {40, 16, 64, {2, 4, 16}},       {33, 10, 40, {1, 8, 4}},        {5, 7, 12, {3, 4, 4}},
      {23, 9, 30, {1, 5, 1}},         {50, 32, 64, {1, 1, 16}},       {31, 6, 48, {2, 8, 3}},
      {129, 20, 96, {2, 4, 4}, true}, {64, 64, 128, {1, 4, 64}, true}};
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255), weight(-63, 63);
  for (const KernelCase& c : cases) {
    const std::vector<float> dense = normal(c.rows * c.cols, 3);
    const BlockSparseMatrix w = BlockSparseMatrix::prune(dense, c.rows, c.cols, c.pattern);
    // Random 7-bit weights, extremes included, at every position the pattern keeps.
    std::vector<int8_t> q(static_cast<size_t>(c.rows * c.cols));
    for (int8_t& v : q) v = static_cast<int8_t>(weight(rng));
    q[0] = 63;
    q[1] = -63;
    if (c.zero_block)
      std::fill_n(q.begin(), std::min<int64_t>(c.pattern.block_rows, c.rows) * c.cols, 0);
    const model::Int8BlockSparseWeights packed = model::pack_int8_block_sparse(w, q);
    std::vector<uint8_t> x(static_cast<size_t>(c.tokens * c.cols));
    for (uint8_t& v : x) v = static_cast<uint8_t>(byte(rng));
    x[0] = 255;

    const std::vector<float> kept = w.to_dense();  // nonzero exactly where kept
    std::vector<int32_t> want(static_cast<size_t>(c.tokens * c.rows), 0);
    for (int64_t t = 0; t < c.tokens; ++t)
      for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t k = 0; k < c.cols; ++k)
          if (kept[r * c.cols + k] != 0.0f)
            want[t * c.rows + r] += int32_t{x[t * c.cols + k]} * q[r * c.cols + k];
    for (Isa isa : isas_here()) {
      const std::vector<int32_t> got =
          run_blocks(kernels::sparse_gemm_int8_kernels(isa), packed, x, c.tokens, c.rows, c.cols);
      EXPECT_EQ(got, want) << name(c) << " on " << isa_name(isa);
    }
  }
}

TEST(SparseGemmInt8, TransposeMatchesPlainLoopsAndZeroPadsTokens) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {16, 16}, {17, 40}, {64, 384}, {5, 33}, {48, 1536}, {31, 16}}) {
    const int64_t x_stride = cols + 3, stride = (rows + 15) / 16 * 16 + 16;
    std::vector<uint8_t> x(static_cast<size_t>(rows * x_stride));
    for (uint8_t& v : x) v = static_cast<uint8_t>(byte(rng));
    // Past each column's padded tokens: untouched.
    std::vector<uint8_t> want(static_cast<size_t>(cols * stride), 0xCD);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t t = 0; t < (rows + 15) / 16 * 16; ++t)
        want[c * stride + t] = t < rows ? x[t * x_stride + c] : 0;
    for (Isa isa : isas_here()) {
      std::vector<uint8_t> got(want.size(), 0xCD);
      kernels::sparse_gemm_int8_kernels(isa).transpose(
          {x.data(), x_stride, rows, cols, got.data(), stride});
      EXPECT_EQ(got, want) << rows << " x " << cols << " on " << isa_name(isa);
    }
  }
}

TEST(SparseGemmInt8, LargestProductsDoNotSaturate) {
  // 255 · 63 in every product: pairs reach 32130 in int16 (below 32767), sums stay exact.
  const int64_t tokens = 20, rows = 8, cols = 256;
  const BlockSparsePattern pattern{4, 4, 4};
  const BlockSparseMatrix w =
      BlockSparseMatrix::prune(std::vector<float>(rows * cols, 1.0f), rows, cols, pattern);
  for (const int8_t extreme : {int8_t{63}, int8_t{-63}}) {
    const std::vector<int8_t> q(static_cast<size_t>(rows * cols), extreme);
    const std::vector<uint8_t> x(static_cast<size_t>(tokens * cols), 255);
    const model::Int8BlockSparseWeights packed = model::pack_int8_block_sparse(w, q);
    const std::vector<int32_t> want(static_cast<size_t>(tokens * rows), 255 * extreme * cols);
    for (Isa isa : isas_here())
      EXPECT_EQ(run_blocks(kernels::sparse_gemm_int8_kernels(isa), packed, x, tokens, rows, cols),
                want)
          << isa_name(isa) << ", weight " << int{extreme};
  }
}

TEST(SparseGemmInt8, PackingPadsTheLastQuadWithAZeroWeight) {
  // 3:4 of 8 columns keeps 6 per block: two quads, the second half padding.
  const int64_t rows = 5, cols = 8;
  const BlockSparseMatrix w =
      BlockSparseMatrix::prune(normal(rows * cols, 5), rows, cols, {3, 4, 4});
  std::vector<int8_t> q(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(i % 50 + 1);
  const model::Int8BlockSparseWeights packed = model::pack_int8_block_sparse(w, q);
  ASSERT_EQ(packed.blocks, 2);
  ASSERT_EQ(packed.quads, 2);
  ASSERT_EQ(packed.columns.size(), 16u);
  ASSERT_EQ(packed.values.size(), 2u * 2 * 4 * 4);
  for (int64_t b = 0; b < 2; ++b) {
    const int32_t* columns = packed.columns.data() + b * 8;
    const int32_t last = w.columns()[static_cast<size_t>(b * 6 + 5)];
    EXPECT_EQ(columns[6], last);
    EXPECT_EQ(columns[7], last);
    for (int r = 0; r < 4; ++r) {
      const int8_t* second_quad = packed.values.data() + ((b * 2 + 1) * 4 + r) * 4;
      EXPECT_EQ(second_quad[2], 0);
      EXPECT_EQ(second_quad[3], 0);
      const bool real_row = b * 4 + r < rows;
      EXPECT_EQ(second_quad[0], real_row ? q[(b * 4 + r) * cols + columns[4]] : 0);
    }
  }
}

model::LinearEpilogue epilogue_at(int i) {
  const model::LinearEpilogue all[] = {model::LinearEpilogue::none, model::LinearEpilogue::gelu_erf,
                                       model::LinearEpilogue::add_residual};
  return all[i % 3];
}

TEST(QuantizedLinear, BlockSparseLayerIsTheDenseInt8LayerOfThePrunedWeights) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  struct Shape {
    int64_t tokens, out, in;
    BlockSparsePattern pattern;
  };
  const std::vector<Shape> shapes = {{300, 48, 64, {2, 4, 16}},
                                     {37, 20, 48, {1, 4, 4}},
                                     {129, 30, 40, {1, 8, 4}},
                                     {3, 9, 24, {3, 4, 1}}};
  int i = 0;
  for (const Shape& s : shapes) {
    for (const bool calibrated : {false, true}) {
      const model::LinearEpilogue epilogue = epilogue_at(i++);
      const std::vector<float> weight = normal(s.out * s.in, 21);
      const std::vector<float> bias = normal(s.out, 22);
      const std::vector<float> x = normal(s.tokens * s.in, 23, 2.0f, 0.5f);
      const std::vector<float> y0 = normal(s.tokens * s.out, 24);
      const BlockSparseMatrix sparse = BlockSparseMatrix::prune(weight, s.out, s.in, s.pattern);
      const std::vector<float> pruned = sparse.to_dense();
      const std::string what = std::to_string(s.out) + " x " + std::to_string(s.in) + " " +
                               block_sparse_pattern_name(s.pattern) +
                               (calibrated ? ", calibrated" : "");
      // The unpruned weight is passed: the layer must take the pruned matrix from `sparse`.
      model::QuantizedLinear layer(engine, weight, bias, s.out, s.in, epilogue, "sparse", &sparse);
      model::QuantizedLinear dense(engine, pruned, bias, s.out, s.in, epilogue, "dense");
      EXPECT_TRUE(layer.is_sparse());
      EXPECT_FALSE(dense.is_sparse());
      if (calibrated) {
        layer.set_static_range(-3.0f, 4.0f);
        dense.set_static_range(-3.0f, 4.0f);
      }
      for (Isa isa : isas_here()) {
        // The same ISA's dequantize kernels: their GELU's exponential is each ISA's own.
        std::vector<float> want = y0;
        dense.run(stream, x.data(), s.tokens, want.data(), 1, isa);
        for (int threads : {1, 2, 3}) {
          std::vector<float> y = y0;
          layer.run(stream, x.data(), s.tokens, y.data(), threads, isa);
          EXPECT_EQ(y, want) << what << " on " << isa_name(isa) << ", " << threads << " threads";
        }
      }
    }
  }
}

TEST(QuantizedLinear, BlockSparseWeightsOfAnotherShapeAreRefused) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const std::vector<float> weight = normal(8 * 16, 1), bias(8, 0.0f);
  const BlockSparseMatrix sparse = BlockSparseMatrix::prune(weight, 8, 16, {2, 4, 4});
  try {
    model::QuantizedLinear layer(engine, normal(16 * 8, 1), bias, 16, 8,
                                 model::LinearEpilogue::none, "layer 1's output", &sparse);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "layer 1's output: block-sparse weights are 8 x 16, expected 16 x 8");
  }
}

}  // namespace
}  // namespace dfss
