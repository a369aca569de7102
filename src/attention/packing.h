// Packing of Q, K and V into the kernels' layouts (see kernels/attention/flash_kernels.h),
// the per-batch key bias, and the write-back of results. O(L·d) work per head, against
// the kernels' O(L²·d), so plain C++ is enough here.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "attention/problem.h"
#include "kernels/attention/flash_kernels.h"

namespace dfss::detail {

inline int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// Geometry of one (batch, head) as packed for a kernel.
struct PackedGeometry {
  kernels::PackFormat format;
  int64_t lk_pad;        // keys rounded up to the key block
  int64_t dv_pad;        // value columns rounded up to kValueAlign
  int64_t k_elems;       // packed K elements per head
  int64_t v_elems;       // packed V elements per head
  int64_t q_tile_elems;  // packed elements per 6-row Q tile
  int64_t elem_bytes;    // 4 (f32) or 2 (bf16 pairs)
};
PackedGeometry packed_geometry(const AttentionProblem& problem, kernels::PackFormat format);

// Keys of batch item b that exist for the kernels: Lk, or valid_lengths[b] when given
// (keys past it are never read).
int64_t keys_present(const AttentionProblem& problem, int64_t b);

void pack_keys(const AttentionProblem& problem, const PackedGeometry& geometry, int64_t b,
               int64_t h, void* dst);
void pack_values(const AttentionProblem& problem, const PackedGeometry& geometry, int64_t b,
                 int64_t h, void* dst);
// Rows [row0, row0 + rows) of Q as ceil(rows/6) tiles; missing rows of the last tile are 0.
void pack_queries(const AttentionProblem& problem, const PackedGeometry& geometry, int64_t b,
                  int64_t h, int64_t row0, int64_t rows, void* dst);
// [lk_pad] floats: the additive mask, -inf for keys that are absent or padding.
void build_key_bias(const AttentionProblem& problem, const PackedGeometry& geometry, int64_t b,
                    float* bias);
// With a score mask: the additive bias of query rows [row0, row0 + rows) of (b, h) as
// [rows_out][lk_pad] floats (problem.bias(); -inf for keys that are absent or padding; rows
// past `rows` are zeros). A score mask broadcast over query rows (stride 0) gives one row.
// Returns the row stride for the kernels: lk_pad, or 0 for the single row.
int64_t build_score_bias(const AttentionProblem& problem, const PackedGeometry& geometry, int64_t b,
                         int64_t h, int64_t row0, int64_t rows, int64_t rows_out, float* bias);
// log_sum_exp[b, h, row0 + i] = row_max[i] + log(row_sum[i]) (natural units), -inf where
// the sum is 0 (the row sees no key); nothing when the output was not requested.
void store_log_sum_exp(const AttentionProblem& problem, int64_t b, int64_t h, int64_t row0,
                       int64_t rows, const float* row_max, const float* row_sum);
// out[b, h, row0 + i, :] = o[i, :dv] / row_sum[i] (row_sum null: already normalized);
// a row whose sum is 0 (nothing visible) is written as zeros.
void store_rows(const AttentionProblem& problem, int64_t b, int64_t h, int64_t row0, int64_t rows,
                const float* o, int64_t dv_pad, const float* row_sum);
// Zeros in every row of out (for Lk = 0).
void store_zeros(const AttentionProblem& problem);

// 64-byte aligned scratch memory.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<float[], FreeDeleter>;
AlignedBuffer allocate_aligned(int64_t bytes);

}  // namespace dfss::detail
