// Interface between the block-sparse linear driver (src/sparse_linear/) and its per-ISA
// kernels: one block of output rows (one shared N:M pattern) for a panel of tokens.
#pragma once

#include <cstdint>

#include "dfss/cpu.h"
#include "kernels/fused_epilogue.h"

namespace dfss::kernels {

using SparseGemmEpilogue = FusedEpilogue;

// y[t][r] (r < outputs) for t < tokens, of one block of `block_rows` output rows:
//   acc = bias[r]; acc = fma(x[t][columns[j]], values[j][r], acc) for j = 0 .. kept - 1
// then the epilogue (GELU of acc, or y[t][r] + acc). bias and values hold block_rows
// entries per row of the block (padded rows are 0); only the first `outputs` are stored.
// block_panel reads x [tokens][x_stride]; rows_panel reads the same tokens transposed,
// x_packed [cols][x_packed_stride] (x_packed_stride >= tokens rounded up to 16, the
// padding zero).
struct SparseGemmPanel {
  const float* x;
  int64_t x_stride;
  const float* x_packed;
  int64_t x_packed_stride;
  int64_t tokens;
  const int32_t* columns;
  int64_t kept;
  const float* values;  // [kept][block_rows]
  const float* bias;    // [block_rows]
  int block_rows;
  int outputs;  // 1 .. block_rows
  float* y;
  int64_t y_stride;
  SparseGemmEpilogue epilogue;
};

struct SparseGemmKernels {
  const char* name;
  int lanes;  // block_panel needs block_rows to be a multiple of this
  // Register-tiled: `tile_rows` tokens x block_rows outputs in vector accumulators.
  void (*block_panel)(const SparseGemmPanel& panel);
  // Any block_rows (a per-row pattern among them), one output at a time with tokens in the
  // vector lanes, from x_packed; the same operation order as block_panel.
  void (*rows_panel)(const SparseGemmPanel& panel);
};

const SparseGemmKernels& sparse_gemm_kernels(Isa isa);  // isa already resolved and supported
const SparseGemmKernels& sparse_gemm_kernels_scalar();
const SparseGemmKernels& sparse_gemm_kernels_avx2();
const SparseGemmKernels& sparse_gemm_kernels_avx512();

}  // namespace dfss::kernels
