// Interface between the attention backward driver (src/attention/backward.cc) and its
// per-ISA kernels. As for the forward, kernels never allocate, thread or fail; operands are
// fp32 (bf16 inputs are widened while packing) and accumulation is fp32.
#pragma once

#include <cstdint>

#include "dfss/cpu.h"
#include "kernels/attention/flash_kernels.h"

namespace dfss::kernels {

// Query rows per block of the backward: 8 register tiles of kTileRows.
inline constexpr int64_t kBackwardRows = 8 * kTileRows;
// Row stride of the P and dS tiles: a key block plus 4 columns, so that the key-side
// micro-GEMM (keys as rows, 6 at a time) covers 132 = 22 x 6 rows; the extra columns are 0.
inline constexpr int64_t kBackwardStride = kKeyBlock + 4;

// Keys per backward key block: whole N:M groups (so that every group is selected from one
// block), 128 when M divides it, else floor(128 / M) * M, packed in 128 columns.
static inline int64_t backward_block_keys(int pattern_m) {
  return pattern_m == 0 || kKeyBlock % pattern_m == 0 ? kKeyBlock
                                                      : kKeyBlock / pattern_m * pattern_m;
}

// One block of query rows of one query head against one key block.
struct BackwardTileArgs {
  const float* q_tiles = nullptr;   // ceil(rows/6) tiles [d][6]
  const float* do_tiles = nullptr;  // ceil(rows/6) tiles [dv][6] of dO
  const float* lse = nullptr;       // [rows_pad] log-sum-exp; -inf: the row contributes nothing
  const float* delta = nullptr;     // [rows_pad] D_i = dO_i · O_i
  const float* k_block = nullptr;   // Kᵀ [d][128], columns past the block's keys 0
  const float* v_block = nullptr;   // Vᵀ [dv][128], likewise
  const float* key_bias = nullptr;  // [128] additive key mask of the block (any value past it)
  // Score mask entry (first_row, key0) and its row and column strides, or null.
  const float* score_mask = nullptr;
  int64_t score_mask_row_stride = 0, score_mask_col_stride = 0;
  int64_t rows = 0;          // query rows in the block
  int64_t first_row = 0;     // query index of the first row
  int64_t key0 = 0;          // key index of the block's first column
  int64_t block_keys = 0;    // keys the block holds (backward_block_keys)
  int64_t keys_present = 0;  // Lk, or valid_lengths[b]: keys at or past it are hidden
  int64_t lk = 0;            // columns of the score mask
  int64_t d = 0, dv = 0;
  float scale = 1.0f;
  bool causal = false;
  int64_t causal_offset = 0;  // Lk - Lq: row i sees keys j <= i + causal_offset
  int64_t window = 0;         // > 0: row i sees keys j > i + causal_offset - window
  int pattern_n = 0, pattern_m = 0;
  // Outputs, [rows_pad][kBackwardStride]: P_ij = exp(s_ij - lse_i) on the attended (kept)
  // entries, 0 elsewhere, and dS_ij = P_ij (dO_i · V_j - D_i).
  float* p = nullptr;
  float* ds = nullptr;
};

// c[r][0, cols) += Σ_k a[r * a_row_stride + k * a_k_stride] · b[k * ldb + 0, cols), where
// one of the two A strides is 1 (A or Aᵀ row-major),
// for r < rows (a multiple of 6) and cols a multiple of kValueAlign: one register-tiled
// micro-GEMM for dV += Pᵀ dO, dK += dSᵀ Q and dQ += dS K.
struct BackwardGemmArgs {
  const float* a = nullptr;
  int64_t a_row_stride = 0, a_k_stride = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
  int64_t rows = 0, cols = 0, depth = 0;
};

struct BackwardKernels {
  const char* name;
  void (*tiles)(const BackwardTileArgs& args);
  void (*gemm)(const BackwardGemmArgs& args);
  // The N:M pruning of one tile row (tests): x[0, 128) holds whole groups of m up to
  // backward_block_keys(m) and -inf past them; entries not kept become -inf.
  void (*prune)(float* x, int n, int m);
};

// The kernels for an ISA (already resolved and supported).
const BackwardKernels& backward_kernels(Isa isa);
const BackwardKernels& backward_kernels_scalar();
const BackwardKernels& backward_kernels_avx2();
const BackwardKernels& backward_kernels_avx512();

}  // namespace dfss::kernels
