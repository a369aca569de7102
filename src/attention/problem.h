// The validated attention problem handed from the public entry point to the
// implementations. Every field has been checked by validate_problem(); implementations
// trust it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "dfss/attention.h"

namespace dfss::detail {

struct AttentionProblem {
  ConstTensorView q, k, v;  // [B, H, Lq, d], [B, Hkv, Lk, d], [B, Hkv, Lk, dv]
  TensorView out;           // [B, H, Lq, dv]
  int64_t batch = 0, heads = 0, lq = 0, lk = 0, d = 0, dv = 0;
  int64_t kv_heads = 0;      // divides heads
  DType dtype = DType::f32;  // of q, k and v
  float scale = 1.0f;
  bool causal = false;
  const float* mask_additive = nullptr;  // [B, Lk] with row stride mask_stride, or null
  int64_t mask_stride = 0;
  const int64_t* valid_lengths = nullptr;  // [B] or null
  ConstTensorView score_mask{};            // f32 [B, H, Lq, Lk] (strides may be 0), or data == null
  int64_t window = 0;                      // > 0: row i sees keys j >= first_key(i)
  float* log_sum_exp = nullptr;            // optional output [B, H, Lq] contiguous
  int threads = 1;                         // resolved, >= 1
  Isa isa = Isa::scalar;                   // resolved, supported by this CPU
  SparsityPattern pattern;                 // dense, or N:M with 1 <= N < M <= 8

  // Index of the last key query row i may see under the causal rule (may be < 0).
  int64_t causal_last_key(int64_t i) const { return i + lk - lq; }
  // First key query row i may see under the sliding window (0 without one; may be > Lk).
  int64_t first_key(int64_t i) const {
    return window > 0 ? std::max<int64_t>(0, i + lk - lq - window + 1) : 0;
  }
  // The key/value head that query head h reads.
  int64_t kv_head(int64_t h) const { return h / (heads / kv_heads); }
  // Element offset of the score-mask entry (b, h, i, j).
  int64_t score_mask_offset(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return b * score_mask.stride[0] + h * score_mask.stride[1] + i * score_mask.stride[2] +
           j * score_mask.stride[3];
  }
  // The additive bias of score (b, h, i, j) for a present key: score_mask + the key-padding
  // additive mask, summed in fp32 in this order. Every implementation adds exactly this to
  // the scaled dot product (fma(dot, scale, bias) in fp32), so N:M selections agree.
  float bias(int64_t b, int64_t h, int64_t i, int64_t j) const {
    float sum = 0.0f;
    if (score_mask.data != nullptr)
      sum = static_cast<const float*>(score_mask.data)[score_mask_offset(b, h, i, j)];
    if (mask_additive != nullptr) {
      const float additive = mask_additive[b * mask_stride + j];
      sum = score_mask.data != nullptr ? sum + additive : additive;
    }
    return sum;
  }
};

// Implementations. Each writes every element of problem.out.
void run_reference(const AttentionProblem& problem);
void run_unfused(const AttentionProblem& problem);
void run_fused(const AttentionProblem& problem);

}  // namespace dfss::detail
