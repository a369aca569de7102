// Linear layers with block-structured N:M weight sparsity: y = x Wᵀ + b where W [out, in]
// keeps, in every block of `block_rows` consecutive output rows and every group of `m`
// consecutive input columns, the same `n` columns for all rows of the block.
//
// Why blocks: a pattern shared by a block of output rows lets the kernel load each kept
// activation once per block and keep a dense FMA body over the block's rows (a per-row
// pattern, block_rows = 1, gathers per row and is the strict comparison).
//
// Compressed layout (BlockSparseMatrix): blocks = ceil(out / block_rows), kept = in / m * n.
//   columns [blocks][kept]              int32, the kept input columns of each block,
//                                        increasing (n per group of m)
//   values  [blocks][kept][block_rows]  f32, W[b * block_rows + r][columns[b][j]] at
//                                        [b][j][r]; rows past `out` in the last block are 0
//
// Results are bit-identical for any thread count, and the products on every ISA (the same
// fused multiply-adds in the same order: bias first, then the kept columns in increasing
// order); the GELU epilogue's exponential is each ISA's own and agrees to ~1e-6 relative.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dfss/cpu.h"

namespace dfss {

struct BlockSparsePattern {
  int n = 2;            // kept columns per group, 1 <= n <= m
  int m = 4;            // group width along the input dimension, 1 <= m <= 64, divides in
  int block_rows = 16;  // output rows sharing one pattern, 1 .. 64

  // Fraction of the weights that are zero: 1 - n / m.
  double sparsity() const { return 1.0 - static_cast<double>(n) / m; }
};

// Parses "N:M" or "N:Mx V" written without the space ("2:4x16"; V defaults to 16). Throws
// InvalidArgument naming `argument_name` and the expected form otherwise.
BlockSparsePattern parse_block_sparse_pattern(const std::string& text,
                                              const std::string& argument_name);
std::string block_sparse_pattern_name(const BlockSparsePattern& pattern);  // "2:4x16"

class BlockSparseMatrix {
 public:
  // Prunes the dense W [rows, cols] (C order) to `pattern`: in each block and group the n
  // columns of largest importance are kept (ties to the lower column), where a column's
  // importance is Σ over the block's rows of |W[r][c]|, times column_scale[c] if given
  // (activation-aware pruning passes the activation norms ‖X_c‖₂ here: Wanda's |W|·‖X‖).
  static BlockSparseMatrix prune(std::span<const float> weight, int64_t rows, int64_t cols,
                                 const BlockSparsePattern& pattern,
                                 std::span<const float> column_scale = {});

  // Takes an already compressed matrix (layout above), checking every size and that the
  // columns of each group are n distinct, increasing columns of that group. Throws
  // InvalidArgument naming what is wrong.
  static BlockSparseMatrix from_compressed(int64_t rows, int64_t cols,
                                           const BlockSparsePattern& pattern,
                                           std::vector<int32_t> columns, std::vector<float> values);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const BlockSparsePattern& pattern() const { return pattern_; }
  int64_t blocks() const { return (rows_ + pattern_.block_rows - 1) / pattern_.block_rows; }
  int64_t kept_per_block() const { return cols_ / pattern_.m * pattern_.n; }
  const std::vector<int32_t>& columns() const { return columns_; }
  const std::vector<float>& values() const { return values_; }

  // W [rows, cols] with the pruned entries 0.
  std::vector<float> to_dense() const;

 private:
  BlockSparseMatrix(int64_t rows, int64_t cols, const BlockSparsePattern& pattern,
                    std::vector<int32_t> columns, std::vector<float> values);

  int64_t rows_ = 0, cols_ = 0;
  BlockSparsePattern pattern_;
  std::vector<int32_t> columns_;
  std::vector<float> values_;
};

enum class SparseLinearEpilogue {
  none,          // y = x Wᵀ + b
  gelu_erf,      // y = gelu(x Wᵀ + b), the exact-erf GELU of BERT
  add_residual,  // y += x Wᵀ + b (y holds the residual on entry)
};

struct SparseLinearOptions {
  Isa isa = Isa::automatic;
  int threads = 0;  // 0: OpenMP's default; otherwise exactly this many (<= kMaxThreads)
  SparseLinearEpilogue epilogue = SparseLinearEpilogue::none;
};

// y [tokens, W.rows()] (row stride y_stride) from x [tokens, W.cols()] (row stride x_stride)
// and bias [W.rows()] (may be empty: no bias). x and y must not overlap. Throws
// InvalidArgument naming the argument on a bad size, stride or null pointer, before writing.
void sparse_linear(const BlockSparseMatrix& weight, std::span<const float> bias, const float* x,
                   int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                   const SparseLinearOptions& options = {});

// The same product by plain loops in double precision on W.to_dense(): the oracle.
void sparse_linear_reference(const BlockSparseMatrix& weight, std::span<const float> bias,
                             const float* x, int64_t tokens, int64_t x_stride, float* y,
                             int64_t y_stride, SparseLinearEpilogue epilogue);

// The ISA whose kernels sparse_linear runs for `pattern` when asked for `requested`: block
// rows that are not a multiple of the ISA's vector width run on a narrower ISA's kernels.
Isa sparse_linear_isa(const BlockSparsePattern& pattern, Isa requested = Isa::automatic);

}  // namespace dfss
