// Interface between the int8 linear layer with block-sparse weights (src/model/quantized_linear.*)
// and its per-ISA kernels: the int32 products of one block of output rows (one shared N:M
// pattern) with a panel of u8 activations.
//
// Why tokens in the vector lanes: the multiply-add of u8 by s8 (vpmaddubsw + vpmaddwd, or
// vpdpbusd) sums 4 consecutive bytes into each 32-bit lane. With the block's kept columns
// taken 4 at a time ("quads"), each lane holds one token's 4 activations of a quad and the
// weight operand is one broadcast 32-bit word: W[r][quad], the same for every token. The
// activations of a block are gathered once into that layout and reused by all its rows.
#pragma once

#include <cstdint>

#include "dfss/cpu.h"

namespace dfss::kernels {

// Tokens are processed (and activations padded) in multiples of this.
inline constexpr int64_t kInt8SparseTokenTile = 16;

// acc[t][r] = Σ_j x_t[columns[j]][t] · values[j / 4][r][j % 4]  over j < 4 · quads
// for t < tokens, r < outputs (exact int32: |values| <= 63, so no step saturates).
//   x_t       [cols][x_t_stride]: the panel's activations, transposed (token t of column c at
//             c · x_t_stride + t); x_t_stride >= tokens rounded up to kInt8SparseTokenTile,
//             the padding readable (its results are not stored)
//   columns   [4 · quads]: the block's kept columns (a quad may repeat a column with weight 0)
//   values    [quads][block_rows][4]
//   gathered  scratch of 4 · quads · x_t_stride bytes
//   acc       [tokens][acc_stride] int32, at the block's first output row
struct SparseGemmInt8Panel {
  const uint8_t* x_t;
  int64_t x_t_stride;
  int64_t tokens;
  const int32_t* columns;
  int64_t quads;
  const int8_t* values;
  int block_rows;
  int outputs;  // 1 .. block_rows
  uint8_t* gathered;
  int32_t* acc;
  int64_t acc_stride;
};

// x_t[c][t] = x[t][c] for t < rows, c < cols, and x_t[c][t] = 0 for rows <= t < rows rounded
// up to 16: the panel's activations in the layout SparseGemmInt8Panel reads.
// x_t_stride >= rows rounded up to 16.
struct TransposeU8 {
  const uint8_t* x;
  int64_t x_stride;
  int64_t rows;
  int64_t cols;
  uint8_t* x_t;
  int64_t x_t_stride;
};

struct SparseGemmInt8Kernels {
  const char* name;
  void (*block_panel)(const SparseGemmInt8Panel& panel);
  void (*transpose)(const TransposeU8& job);
};

// `isa` already resolved and supported. AVX-512 CPUs run the avx2 kernels for now.
const SparseGemmInt8Kernels& sparse_gemm_int8_kernels(Isa isa);
const SparseGemmInt8Kernels& sparse_gemm_int8_kernels_scalar();
const SparseGemmInt8Kernels& sparse_gemm_int8_kernels_avx2();

}  // namespace dfss::kernels
