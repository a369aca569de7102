// Packing for the attention backward kernels (kernels/attention_backward/backward_kernels.h):
// per key/value head Kᵀ and Vᵀ blocks for the score tiles and K rows for dQ; per query head
// Q and dO as 6-row tiles and as rows, with the log-sum-exp and D = dO · O per row. All
// fp32: bf16 inputs are widened here. O(L·d) per head, against the kernels' O(L²·d).
#pragma once

#include <cstdint>

#include "attention/backward_problem.h"

namespace dfss::detail {

struct BackwardGeometry {
  int64_t block_keys;  // keys per key block (whole N:M groups), packed in 128 columns
  int64_t key_blocks;  // ceil(Lk / block_keys)
  int64_t d, dv;
  int64_t d_pad, dv_pad;  // d and dv rounded up to kValueAlign (row layouts)
  int64_t lq_pad;         // Lq rounded up to kBackwardRows (at least one block)
  int64_t kv_floats;      // floats of one packed key/value head
  int64_t head_floats;    // floats of one packed query head
};
BackwardGeometry backward_geometry(const AttentionProblem& problem);

// Views into the packed buffers.
struct PackedKeyHead {
  float* k_blocks;  // [key_blocks][d][128]: Kᵀ
  float* k_rows;    // [key_blocks * 128][d_pad]: K, block by block
  float* v_blocks;  // [key_blocks][dv][128]: Vᵀ
};
struct PackedQueryHead {
  float* q_tiles;   // [lq_pad / 6][d][6]
  float* q_rows;    // [lq_pad][d_pad]
  float* do_tiles;  // [lq_pad / 6][dv][6]
  float* do_rows;   // [lq_pad][dv_pad]
  float* lse;       // [lq_pad], -inf for padding rows
  float* delta;     // [lq_pad]
};
PackedKeyHead key_head_at(const BackwardGeometry& g, float* base);
PackedQueryHead query_head_at(const BackwardGeometry& g, float* base);

void pack_key_head(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                   int64_t kv_head, const PackedKeyHead& dst);
void pack_query_head(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                     int64_t h, const PackedQueryHead& dst);
// [key_blocks][128]: the additive key mask per block column, -inf for absent keys.
void build_backward_key_bias(const AttentionProblem& problem, const BackwardGeometry& g, int64_t b,
                             float* bias);

// dk, dv of keys [key0, key0 + block_keys) ∩ [0, Lk) of (b, kv_head) from accumulators
// [128+][d_pad] and [128+][dv_pad]; dk is multiplied by `scale`.
void store_key_gradients(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                         int64_t kv_head, int64_t key0, const float* dk, const float* dv);
// dq rows [row0, row0 + rows) of (b, h) = scale * acc[rows][d_pad].
void store_query_gradients(const BackwardProblem& problem, const BackwardGeometry& g, int64_t b,
                           int64_t h, int64_t row0, int64_t rows, const float* dq);

}  // namespace dfss::detail
