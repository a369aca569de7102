// Interface between the key-selecting attention patterns (topk:K, dsa:K; src/attention/
// selected_*.cc) and their per-ISA kernels: Q·Kᵀ over blocks of rows (the attention
// kernels' register tile, so kept sets agree with the reference), the per-row passes over
// scores and the gathers of key and value rows. The selection itself is top-k's.
#pragma once

#include <cstdint>

#include "dfss/cpu.h"

namespace dfss::kernels {

struct SelectedKernels {
  const char* name;
  int lanes;  // keys per group in key_dots (16 on every ISA)
  // Dot products of `tiles` packed 6-row Q tiles ([d][6] f32 each) with key_blocks packed K
  // blocks ([d][128] f32): scores[(6t + r) * stride + key], fused multiply-adds in d order.
  void (*score_tiles)(const float* q_tiles, int64_t tiles, const float* k_packed, int64_t d,
                      int64_t key_blocks, float* scores, int64_t stride);
  // row[j] = fma(row[j], scale, bias[j]) for j in [begin, end), -inf elsewhere in [0, length).
  void (*finish_scores)(float* row, const float* bias, float scale, int64_t begin, int64_t end,
                        int64_t length);
  // dst[t] = fma(src[t], scale, bias[t]) for t < count.
  void (*scale_add_bias)(const float* src, const float* bias, float scale, int64_t count,
                         float* dst);
  // For `count` (query row, group of keys) pairs: the q·k dot products of query row
  // q[g] (elements q[g][c * q_stride], c < d) with the `lanes` keys starting at groups[g]
  // (a multiple of lanes) of K grouped by lanes, [Lk/lanes][d][lanes] f32 (a group's keys
  // are one contiguous run of memory): out[g][l] = Σ_c q_c k_{groups[g] + l, c}, fused
  // multiply-adds in c order (pairs ordered by group: a run of pairs of one group shares
  // each load of K).
  void (*key_dots)(const float* const* q, int64_t q_stride, const float* k_grouped, int64_t d,
                   const int32_t* groups, int64_t count, float* const* out);
  // Softmax weights of `count` kept scores: weights[j] = e^(s_j - max) (weights holds count
  // rounded up to 16 floats), *row_max and *row_sum = Σ weights. A NaN score makes every
  // weight NaN; all -inf gives weights 0 and sum 0.
  void (*softmax_weights)(const float* scores, int64_t count, float* weights, float* row_max,
                          float* row_sum);
  // o[dv_pad] += Σ_j weights[j] v_{keys[j]} in key order (V packed [keys][dv_pad] f32);
  // keys of weight 0 are skipped (a masked key's non-finite values stay out).
  void (*add_values)(const float* weights, const int32_t* keys, int64_t count,
                     const float* v_packed, int64_t dv_pad, float* o);
};

const SelectedKernels& selected_kernels(Isa isa);  // isa already resolved and supported
const SelectedKernels& selected_kernels_scalar();
const SelectedKernels& selected_kernels_avx2();
const SelectedKernels& selected_kernels_avx512();

}  // namespace dfss::kernels
