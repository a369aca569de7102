// Block-sparse linear layers: pruning and the compressed format, the kernels of every ISA
// this CPU has against the double-precision reference (patterns, odd sizes, tails, strides,
// epilogues), bit-identical results across thread counts and ISAs, and argument errors.
#include "dfss/sparse_linear.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "kernel_test_util.h"

namespace dfss {
namespace {

using test::isas_here;
using test::normal;

TEST(BlockSparsePattern, ParsesAndNames) {
  const BlockSparsePattern p = parse_block_sparse_pattern("2:4x16", "--w");
  EXPECT_EQ(p.n, 2);
  EXPECT_EQ(p.m, 4);
  EXPECT_EQ(p.block_rows, 16);
  EXPECT_EQ(parse_block_sparse_pattern("1:8", "--w").block_rows, 16);
  EXPECT_EQ(block_sparse_pattern_name(parse_block_sparse_pattern("3:7x1", "--w")), "3:7x1");
  EXPECT_DOUBLE_EQ(p.sparsity(), 0.5);
  for (const char* bad : {"", "2", "2:", ":4", "2:4x", "2:4x0", "5:4", "0:4", "2:4y16", "2:4x16 ",
                          "1:65", "2:4x65", "-1:4", "2:4:16"}) {
    try {
      parse_block_sparse_pattern(bad, "--weight-sparsity");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("--weight-sparsity"), std::string::npos) << e.what();
    }
  }
}

TEST(BlockSparseMatrix, PruneKeepsTheLargestColumnsOfEachBlockAndGroup) {
  // 3 rows x 8 columns, blocks of 2 rows, 1:4: the block's column importance is Σ|w|.
  const std::vector<float> w = {
      1, -5, 0,  2,  /**/ 0, 0,  0, 0,  //
      1, 1,  -4, 0,  /**/ 3, -3, 0, 0,  // block 0: group 0 sums 2,6,4,2 -> column 1
      7, 0,  0,  -8, /**/ 0, 0,  0, 0,  // block 1 (one row): columns 3 and 4 (tie: lower)
  };
  const BlockSparseMatrix m = BlockSparseMatrix::prune(w, 3, 8, {1, 4, 2});
  EXPECT_EQ(m.blocks(), 2);
  EXPECT_EQ(m.kept_per_block(), 2);
  EXPECT_EQ(m.columns(), (std::vector<int32_t>{1, 4, 3, 4}));
  // values [block][kept][row]; the padding row of block 1 is 0.
  EXPECT_EQ(m.values(), (std::vector<float>{-5, 1, 0, 3, -8, 0, 0, 0}));
  const std::vector<float> dense = m.to_dense();
  const std::vector<float> want = {0, -5, 0, 0,  0, 0, 0, 0,  //
                                   0, 1,  0, 0,  3, 0, 0, 0,  //
                                   0, 0,  0, -8, 0, 0, 0, 0};
  EXPECT_EQ(dense, want);
}

TEST(BlockSparseMatrix, ColumnScaleMakesPruningActivationAware) {
  const std::vector<float> w = {1, 2, 3, 4};
  EXPECT_EQ(BlockSparseMatrix::prune(w, 1, 4, {1, 4, 1}).columns(), (std::vector<int32_t>{3}));
  const std::vector<float> scale = {10, 1, 1, 1};  // |w|·‖x‖: 10, 2, 3, 4
  EXPECT_EQ(BlockSparseMatrix::prune(w, 1, 4, {1, 4, 1}, scale).columns(),
            (std::vector<int32_t>{0}));
  EXPECT_THROW(BlockSparseMatrix::prune(w, 1, 4, {1, 4, 1}, std::vector<float>{1, 1}),
               InvalidArgument);
  EXPECT_THROW(BlockSparseMatrix::prune(w, 1, 4, {1, 4, 1}, std::vector<float>{1, -1, 1, 1}),
               InvalidArgument);
}

TEST(BlockSparseMatrix, NanWeightsAreKept) {
  const std::vector<float> w = {1, NAN, 3, 4};
  EXPECT_EQ(BlockSparseMatrix::prune(w, 1, 4, {1, 4, 1}).columns(), (std::vector<int32_t>{1}));
}

TEST(BlockSparseMatrix, PruneRefusesBadShapes) {
  const std::vector<float> w(24, 1.0f);
  EXPECT_THROW(BlockSparseMatrix::prune(w, 4, 6, {2, 4, 4}), InvalidArgument);  // 6 % 4
  EXPECT_THROW(BlockSparseMatrix::prune(w, 4, 8, {2, 4, 4}), InvalidArgument);  // size
  EXPECT_THROW(BlockSparseMatrix::prune(w, 0, 24, {2, 4, 4}), InvalidArgument);
  EXPECT_THROW(BlockSparseMatrix::prune(w, 3, 8, {2, 4, 0}), InvalidArgument);
}

TEST(BlockSparseMatrix, FromCompressedChecksTheFormat) {
  const std::vector<float> w = normal(5 * 8, 1);
  const BlockSparseMatrix m = BlockSparseMatrix::prune(w, 5, 8, {2, 4, 4});
  const BlockSparseMatrix same =
      BlockSparseMatrix::from_compressed(5, 8, {2, 4, 4}, m.columns(), m.values());
  EXPECT_EQ(same.to_dense(), m.to_dense());

  auto refuses = [&](std::vector<int32_t> columns, std::vector<float> values, const char* what) {
    try {
      BlockSparseMatrix::from_compressed(5, 8, {2, 4, 4}, std::move(columns), std::move(values));
      ADD_FAILURE() << "accepted: " << what;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  std::vector<int32_t> columns = m.columns();
  columns.pop_back();
  refuses(columns, m.values(), "columns: expected");
  std::vector<float> values = m.values();
  values.push_back(0);
  refuses(m.columns(), values, "values: expected");
  columns = m.columns();
  columns[0] = 5;  // not in group 0
  refuses(columns, m.values(), "columns[0][0] = 5");
  columns = m.columns();
  std::swap(columns[2], columns[3]);  // decreasing within group 1
  refuses(columns, m.values(), "columns[0][");
  values = m.values();
  values.back() = 1.0f;  // rows 5..7 of block 1 do not exist
  refuses(m.columns(), values, "padding rows");
}

struct LinearCase {
  BlockSparsePattern pattern;
  int64_t rows, cols, tokens;
};

std::string case_name(const LinearCase& c) {
  return block_sparse_pattern_name(c.pattern) + " " + std::to_string(c.rows) + "x" +
         std::to_string(c.cols) + " tokens " + std::to_string(c.tokens);
}

const char* epilogue_name(SparseLinearEpilogue e) {
  switch (e) {
    case SparseLinearEpilogue::gelu_erf: return "gelu";
    case SparseLinearEpilogue::add_residual: return "residual";
    default: return "none";
  }
}

// Runs the kernels and the reference on one case with row strides larger than the rows, so
// that a write past a row shows; returns the worst error in units of the allowed error.
void check_case(const LinearCase& c, Isa isa, SparseLinearEpilogue epilogue, int threads) {
  const std::vector<float> weight = normal(c.rows * c.cols, 11);
  const BlockSparseMatrix w = BlockSparseMatrix::prune(weight, c.rows, c.cols, c.pattern);
  const std::vector<float> bias = normal(c.rows, 12);
  const int64_t x_stride = c.cols + 3, y_stride = c.rows + 5;
  const std::vector<float> x = normal(c.tokens * x_stride, 13);
  const std::vector<float> y0 = normal(c.tokens * y_stride, 14);  // residual / sentinels
  std::vector<float> got = y0, want = y0;
  sparse_linear(w, bias, x.data(), c.tokens, x_stride, got.data(), y_stride,
                {isa, threads, epilogue});
  sparse_linear_reference(w, bias, x.data(), c.tokens, x_stride, want.data(), y_stride, epilogue);
  const std::vector<float> dense = w.to_dense();
  for (int64_t t = 0; t < c.tokens; ++t) {
    for (int64_t o = 0; o < y_stride; ++o) {
      const size_t at = static_cast<size_t>(t * y_stride + o);
      if (o >= c.rows) {
        ASSERT_EQ(std::memcmp(&got[at], &y0[at], sizeof(float)), 0)
            << case_name(c) << ": wrote past row " << t << " at column " << o;
        continue;
      }
      // fp32 fused multiply-adds over `cols` terms: relative to the sum of |terms|.
      double magnitude = std::fabs(bias[o]);
      for (int64_t k = 0; k < c.cols; ++k)
        magnitude += std::fabs(static_cast<double>(x[t * x_stride + k]) * dense[o * c.cols + k]);
      if (epilogue == SparseLinearEpilogue::add_residual) magnitude += std::fabs(y0[at]);
      const double allowed = 2e-6 * magnitude + 1e-6;
      ASSERT_LE(std::fabs(static_cast<double>(got[at]) - want[at]), allowed)
          << case_name(c) << " " << isa_name(isa) << " " << epilogue_name(epilogue) << " token "
          << t << " output " << o;
    }
  }
}

TEST(SparseLinear, MatchesTheReferenceOnEveryIsa) {
  const std::vector<LinearCase> cases = {
      {{2, 4, 16}, 64, 96, 29},  {{1, 4, 16}, 37, 32, 13}, {{2, 8, 16}, 48, 64, 1},
      {{1, 8, 16}, 16, 384, 40}, {{4, 8, 8}, 21, 40, 7},   {{2, 4, 32}, 70, 24, 25},
      {{2, 4, 1}, 19, 36, 11},   {{1, 2, 4}, 10, 18, 9},   {{3, 7, 24}, 50, 35, 6},
      {{4, 4, 16}, 33, 20, 14},  {{1, 1, 48}, 100, 5, 3},  {{2, 4, 16}, 5, 8, 200},
  };
  for (const LinearCase& c : cases)
    for (Isa isa : isas_here())
      for (SparseLinearEpilogue e : {SparseLinearEpilogue::none, SparseLinearEpilogue::gelu_erf,
                                     SparseLinearEpilogue::add_residual})
        check_case(c, isa, e, 2);
}

TEST(SparseLinear, DenseWhenNEqualsM) {
  // 4:4 keeps everything: the plain dense product.
  const int64_t rows = 24, cols = 16, tokens = 9;
  const std::vector<float> weight = normal(rows * cols, 3), x = normal(tokens * cols, 4);
  const BlockSparseMatrix w = BlockSparseMatrix::prune(weight, rows, cols, {4, 4, 8});
  EXPECT_EQ(w.to_dense(), weight);
  std::vector<float> y(static_cast<size_t>(tokens * rows));
  sparse_linear(w, {}, x.data(), tokens, cols, y.data(), rows);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < rows; ++o) {
      double acc = 0;
      for (int64_t k = 0; k < cols; ++k) acc += double{x[t * cols + k]} * weight[o * cols + k];
      EXPECT_NEAR(y[t * rows + o], acc, 1e-5) << t << " " << o;
    }
}

// The same fused multiply-adds in the same order on every ISA and thread count.
TEST(SparseLinear, BitIdenticalForAnyThreadCountAndIsa) {
  for (const BlockSparsePattern pattern :
       {BlockSparsePattern{2, 4, 16}, BlockSparsePattern{1, 8, 8}, BlockSparsePattern{2, 4, 1}}) {
    const int64_t rows = 75, cols = 128, tokens = 301;
    const BlockSparseMatrix w =
        BlockSparseMatrix::prune(normal(rows * cols, 5), rows, cols, pattern);
    const std::vector<float> bias = normal(rows, 6), x = normal(tokens * cols, 7);
    for (SparseLinearEpilogue e : {SparseLinearEpilogue::none, SparseLinearEpilogue::gelu_erf}) {
      std::vector<float> first;
      for (Isa isa : isas_here()) {
        for (int threads : {1, 2, 3, 7}) {
          std::vector<float> y(static_cast<size_t>(tokens * rows));
          sparse_linear(w, bias, x.data(), tokens, cols, y.data(), rows, {isa, threads, e});
          if (first.empty()) first = y;
          // GELU's exponential is each ISA's own; the products are not.
          if (e == SparseLinearEpilogue::none || isa == isas_here().front()) {
            ASSERT_EQ(std::memcmp(y.data(), first.data(), y.size() * sizeof(float)), 0)
                << block_sparse_pattern_name(pattern) << " " << isa_name(isa) << " threads "
                << threads;
          }
        }
      }
    }
  }
}

TEST(SparseLinear, NarrowBlocksRunOnATilingIsa) {
  EXPECT_EQ(sparse_linear_isa({2, 4, 16}, Isa::scalar), Isa::scalar);
  if (isa_supported(Isa::avx2)) {
    EXPECT_EQ(sparse_linear_isa({2, 4, 16}, Isa::avx2), Isa::avx2);
    EXPECT_EQ(sparse_linear_isa({2, 4, 1}, Isa::avx2), Isa::avx2);  // one output at a time
  }
  if (isa_supported(Isa::avx512)) {
    EXPECT_EQ(sparse_linear_isa({2, 4, 16}, Isa::avx512), Isa::avx512);
    EXPECT_EQ(sparse_linear_isa({2, 4, 8}, Isa::avx512), Isa::avx2);
  }
}

TEST(SparseLinear, NoTokensWritesNothing) {
  const BlockSparseMatrix w = BlockSparseMatrix::prune(normal(16 * 8, 1), 16, 8, {2, 4, 16});
  sparse_linear(w, {}, nullptr, 0, 8, nullptr, 16);
}

TEST(SparseLinear, RefusesBadArguments) {
  const BlockSparseMatrix w = BlockSparseMatrix::prune(normal(16 * 8, 1), 16, 8, {2, 4, 16});
  std::vector<float> x(4 * 8), y(4 * 16);
  auto refuses = [&](auto call, const char* what) {
    try {
      call();
      ADD_FAILURE() << "accepted: " << what;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refuses([&] { sparse_linear(w, {}, x.data(), 4, 7, y.data(), 16); }, "x_stride");
  refuses([&] { sparse_linear(w, {}, x.data(), 4, 8, y.data(), 15); }, "y_stride");
  refuses([&] { sparse_linear(w, std::vector<float>(3), x.data(), 4, 8, y.data(), 16); }, "bias");
  refuses([&] { sparse_linear(w, {}, x.data(), -1, 8, y.data(), 16); }, "tokens");
  refuses([&] { sparse_linear(w, {}, nullptr, 4, 8, y.data(), 16); }, "null");
  refuses([&] { sparse_linear(w, {}, y.data(), 2, 8, y.data() + 8, 16); }, "overlap");
  refuses(
      [&] {
        sparse_linear(w, {}, x.data(), 4, 8, y.data(), 16, {Isa::automatic, -1});
      },
      "threads");
}

}  // namespace
}  // namespace dfss
