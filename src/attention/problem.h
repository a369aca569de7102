// The validated attention problem handed from the public entry point to the
// implementations. Every field has been checked by validate_problem(); implementations
// trust it.
#pragma once

#include <cstdint>

#include "dfss/attention.h"

namespace dfss::detail {

struct AttentionProblem {
  ConstTensorView q, k, v;  // [B, H, Lq, d], [B, H, Lk, d], [B, H, Lk, dv]
  TensorView out;           // [B, H, Lq, dv]
  int64_t batch = 0, heads = 0, lq = 0, lk = 0, d = 0, dv = 0;
  DType dtype = DType::f32;  // of q, k and v
  float scale = 1.0f;
  bool causal = false;
  const float* mask_additive = nullptr;  // [B, Lk] with row stride mask_stride, or null
  int64_t mask_stride = 0;
  const int64_t* valid_lengths = nullptr;  // [B] or null
  int threads = 1;                         // resolved, >= 1
  Isa isa = Isa::scalar;                   // resolved, supported by this CPU
  SparsityPattern pattern;                 // dense, or N:M with 1 <= N < M <= 8

  // Index of the last key query row i may see under the causal rule (may be < 0).
  int64_t causal_last_key(int64_t i) const { return i + lk - lq; }
};

// Implementations. Each writes every element of problem.out.
void run_reference(const AttentionProblem& problem);
void run_unfused(const AttentionProblem& problem);
void run_fused(const AttentionProblem& problem);

}  // namespace dfss::detail
