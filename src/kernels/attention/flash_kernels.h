// Interface between the attention ops layer (src/attention) and the per-ISA attention
// kernels. Kernels never allocate, never thread and never fail: the ops layer packs the
// operands into the layouts below, owns the scratch memory and splits the work.
#pragma once

#include <cstdint>

#include "dfss/attention.h"

namespace dfss::kernels {

// Tile geometry shared by every ISA, so that the packed layouts do not depend on it.
inline constexpr int kTileRows = 6;     // query rows per register tile
inline constexpr int kKeyBlock = 128;   // keys per block
inline constexpr int kValueAlign = 16;  // value columns are padded to a multiple of this

// How Q, K and V are packed for a kernel.
//   f32:        Q tile [d][6] f32; K block [d][128] f32 (K transposed); V [Lk_pad + 1][dv_pad]
//               f32, whose extra last row is zeros (what a kept padding column points at).
//   bf16_pairs: Q tile [d2][6][2] bf16; K block [d2][128][2] bf16; V [Lk_pad/2][dv_pad][2]
//               bf16, with d2 = ceil(d/2): consecutive pairs feed one vdpbf16ps lane.
//   bf16_pair_combos (N:M 2:4 and 1:2 only): Q as bf16_pairs; K as bf16_pairs with the
//               columns of each 64 keys permuted (pair_combos_key_column: key 4i + c at
//               column 16c + i, so that a quad's 4 scores share a lane of 4 vectors); V per
//               quad of keys (4j .. 4j+3) as one pair row [dv_pad][2] bf16 for each pair of
//               keys the pattern can keep in the quad (kPairCombos),
//               [Lk_pad/4][combos][dv_pad][2]: one vdpbf16ps then multiplies exactly the
//               two kept keys of a quad.
enum class PackFormat { f32, bf16_pairs, bf16_pair_combos };

// The pairs of keys (in a quad) that 2:4 and 1:2 can keep: every pair for 2:4; one key of
// each half for 1:2 (its groups 2j and 2j+1 make a quad). Combo c of quad j is the pair
// row j * combos + c of the packed V.
struct PairCombos {
  int count;
  int keys[6][2];
};
inline constexpr PairCombos kPairCombos2of4{6, {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}}};
inline constexpr PairCombos kPairCombos1of2{4, {{0, 2}, {0, 3}, {1, 2}, {1, 3}}};
// Helpers here are static: every per-ISA file includes this header, and an out-of-line copy
// compiled with AVX-512 flags must never be the one baseline code calls.
// Column of key j (in its key block) in a bf16_pair_combos K block.
static inline int64_t pair_combos_key_column(int64_t j) {
  return j / 64 * 64 + j % 4 * 16 + j % 64 / 4;
}
// The combos for a pattern, or null when bf16_pair_combos does not serve it.
static inline const PairCombos* pair_combos(int n, int m) {
  if (n == 2 && m == 4) return &kPairCombos2of4;
  if (n == 1 && m == 2) return &kPairCombos1of2;
  return nullptr;
}

// One block of query rows of one (batch, head) against all of its keys.
struct FlashBlockArgs {
  const void* q_packed = nullptr;  // ceil(rows/6) tiles of the block, in pack format
  int64_t rows = 0;                // query rows in the block
  int64_t first_row = 0;           // query index of the block's first row
  const void* k_packed = nullptr;  // Lk_pad/128 key blocks
  const void* v_packed = nullptr;
  // The additive mask of row r of the block: [Lk_pad] floats at key_bias + r * bias_row_stride
  // (keys at or past lk are set to -inf by the kernels). Stride 0: one row shared by every
  // query row (the per-batch key-padding mask), the common case.
  const float* key_bias = nullptr;
  int64_t bias_row_stride = 0;
  int64_t lk = 0, lk_pad = 0, d = 0, dv_pad = 0;
  float scale = 1.0f;
  bool causal = false;
  int64_t causal_offset = 0;  // row i sees keys j <= i + causal_offset (= Lk - Lq)
  // Sliding window (> 0): row i sees keys j > i + causal_offset - window.
  int64_t window = 0;
  int pattern_n = 0, pattern_m = 0;  // N:M sparsity (sparse kernels only)
  // Outputs: unnormalized accumulators o [rows_pad][dv_pad] and row sums [rows_pad].
  float* o = nullptr;
  float* row_sum = nullptr;
  // Workspace: running max [rows_pad], per-lane partial sums [rows_pad][16].
  float* row_max = nullptr;
  float* row_sum_lanes = nullptr;
  float* scratch = nullptr;  // >= kFlashScratchFloats floats, 64-byte aligned
};
// Keys scored at once by the sparse kernels: a whole number of M-groups whose kept entries
// fill whole 16-lane vectors, and small enough that the rows of V they gather stay in L1
// (64 keys x 64 columns = 16 KiB). Half a key block, M half blocks when M does not divide
// 64, doubled when the kept count would not be a multiple of 16 (odd N with M = 8).
inline constexpr int64_t kSparseSpanUnit = kKeyBlock / 2;
static inline int64_t sparse_span_keys(int n, int m) {
  const int64_t span = kSparseSpanUnit % m == 0 ? kSparseSpanUnit : int64_t{m} * kSparseSpanUnit;
  return span / m * n % 16 == 0 ? span : 2 * span;
}
// Scores, kept values and kept columns of a 6-row tile over the largest span (M = 7), plus
// a block-sized area for the kernels' own conversions.
inline constexpr int64_t kFlashScratchFloats =
    kTileRows * (3 * 7 * kSparseSpanUnit + kKeyBlock) + 64;

// The unfused path: S = scale*QKᵀ + bias, row softmax, then P·V, on a materialized
// [rows_pad][lk_pad] score matrix.
struct UnfusedArgs {
  const void* q_packed = nullptr;  // ceil(rows/6) tiles
  int64_t rows = 0;
  int64_t first_row = 0;
  const void* k_packed = nullptr;
  const void* v_packed = nullptr;
  const float* key_bias = nullptr;  // as in FlashBlockArgs, row r of the whole Lq
  int64_t bias_row_stride = 0;
  int64_t lk = 0, lk_pad = 0, d = 0, dv_pad = 0;
  float scale = 1.0f;
  bool causal = false;
  int64_t causal_offset = 0;
  int64_t window = 0;
  int pattern_n = 0, pattern_m = 0;
  // Optional (null: not wanted), [rows_pad]: each row's max score and its sum of
  // e^(x - max), written by the softmax phases (the log-sum-exp output).
  float* row_max = nullptr;
  float* row_sum = nullptr;
  float* scores = nullptr;  // dense: [rows_pad][lk_pad]; rows_pad = ceil(rows/6)*6
  // N:M: the compressed score matrix, [rows_pad][kept_stride] kept scores (scale*q·k + mask,
  // natural units, increasing column order; softmax turns them into probabilities in place)
  // and their key columns. kept_stride = spans * kept per span (sparse_span_keys).
  float* kept_values = nullptr;
  int32_t* kept_columns = nullptr;
  int64_t kept_stride = 0;
  float* o = nullptr;        // [rows_pad][dv_pad], normalized output
  float* scratch = nullptr;  // >= kFlashScratchFloats floats, 64-byte aligned
};

// What the sparse kernels store per kept entry: min(column, limit) * scale, i.e. the key
// column itself, or the element offset of its row in packed V (padding columns past the
// packed keys then point at V's zero row).
struct KeptIndex {
  int64_t limit;
  int64_t scale;
  static KeptIndex columns() { return {int64_t{1} << 31, 1}; }
  static KeptIndex offsets_in_v(int64_t lk_pad, int64_t dv_pad) { return {lk_pad, dv_pad}; }
};

// The direct decode kernel (few query rows per key/value head): one segment of keys
// [key_begin, key_end) of one (batch, key/value head), read in place from K and V, for
// `rows` query rows. Writes the segment's unnormalized accumulators o [rows][dv], running
// max row_max [rows] and sum of e^(x - max) row_sum [rows], which the ops layer merges
// over segments in a fixed order.
inline constexpr int64_t kDecodeChunkKeys = 64;  // keys scored at once (multiple of 16)
struct DecodeArgs {
  const float* q = nullptr;  // [rows][d] fp32
  int64_t rows = 0;
  // Key j (absolute) at k + j * k_stride, value j at v + j * v_stride (elements; the
  // last dimension contiguous), f32 or bf16 (uint16_t).
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t k_stride = 0, v_stride = 0;
  bool bf16 = false;
  int64_t d = 0, dv = 0;
  int64_t key_begin = 0, key_end = 0;
  // Row r sees the keys [row_begin[r], row_end[r]) (causal, window, keys present).
  const int64_t* row_begin = nullptr;
  const int64_t* row_end = nullptr;
  // Additive bias of row r, key j: bias[r * bias_row_stride + j - key_begin]; null: 0.
  const float* bias = nullptr;
  int64_t bias_row_stride = 0;
  float scale = 1.0f;
  float* o = nullptr;
  float* row_max = nullptr;
  float* row_sum = nullptr;
  // kDecodeChunkKeys * (1 + d + dv) floats.
  float* scratch = nullptr;
};

struct AttentionKernels {
  const char* fused_name;
  const char* unfused_name;
  PackFormat format;
  void (*fused_block)(const FlashBlockArgs& args);
  // Unfused phases, each over a range of 6-row tiles [tile_begin, tile_end).
  void (*unfused_scores)(const UnfusedArgs& args, int64_t tile_begin, int64_t tile_end);
  void (*unfused_softmax)(const UnfusedArgs& args, int64_t tile_begin, int64_t tile_end);
  void (*unfused_values)(const UnfusedArgs& args, int64_t tile_begin, int64_t tile_end);
  // N:M sparse versions (PackFormat::f32 tables, and the fused block of the
  // bf16_pair_combos table; null otherwise). The unfused phases
  // are: scores with the pruning in their epilogue, softmax of the compressed rows, and
  // the sparse x dense product with V.
  const char* sparse_fused_name;
  const char* sparse_unfused_name;
  void (*sparse_fused_block)(const FlashBlockArgs& args);
  void (*sparse_unfused_scores)(const UnfusedArgs& args, int64_t tile_begin, int64_t tile_end);
  void (*sparse_unfused_softmax)(const UnfusedArgs& args, int64_t tile_begin, int64_t tile_end);
  void (*sparse_unfused_values)(const UnfusedArgs& args, int64_t tile_begin, int64_t tile_end);
  // Direct decode (dense only; null where a table has none).
  void (*decode_segment)(const DecodeArgs& args) = nullptr;
};

// The kernels for an ISA (already resolved and supported), input dtype and pattern.
const AttentionKernels& attention_kernels(Isa isa, DType dtype, bool sparse = false);
// The fused N:M kernels: the bf16_pair_combos kernels (AVX512-BF16, bf16 inputs, 2:4 and
// 1:2), else attention_kernels(isa, dtype, true).
const AttentionKernels& sparse_fused_kernels(Isa isa, DType dtype, SparsityPattern pattern);

// Per-ISA tables, defined in attention_<isa>.cc.
const AttentionKernels& attention_kernels_scalar();
const AttentionKernels& attention_kernels_avx2();
const AttentionKernels& attention_kernels_avx512();
const AttentionKernels& attention_kernels_avx512bf16();
const AttentionKernels& attention_kernels_avx512bf16_pair_combos();  // fused N:M only

}  // namespace dfss::kernels
