// The validated attention backward problem, handed from dfss::attention_backward to the
// implementations, which trust every field.
#pragma once

#include "attention/problem.h"
#include "dfss/attention.h"

namespace dfss::detail {

struct BackwardProblem {
  AttentionProblem forward;  // q, k, v and the options; forward.out and log_sum_exp unused
  ConstTensorView out;       // [B, Hq, Lq, dv], the forward's output
  ConstTensorView d_out;     // [B, Hq, Lq, dv], dtype of q
  const float* log_sum_exp = nullptr;  // [B, Hq, Lq] contiguous; null only when empty
  TensorView dq, dk, dv;               // shapes of q, k, v; f32 or bf16
};

// Checks everything attention_backward receives; throws InvalidArgument (Unsupported for
// an ISA the CPU lacks) naming the argument and the expected vs actual value.
BackwardProblem validate_backward(const ConstTensorView& q, const ConstTensorView& k,
                                  const ConstTensorView& v, const ConstTensorView& out,
                                  const ConstTensorView& d_out, const float* log_sum_exp,
                                  const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                  const AttentionOptions& options);

// How the fused backward visits the tiles: automatic picks by the parallelism and memory;
// the others force a schedule (tests: both give the same bits).
enum class BackwardSchedule { automatic, single_pass, two_pass };

// Implementations; each writes every element of dq, dk and dv.
void run_backward_reference(const BackwardProblem& problem);
void run_backward_fused(const BackwardProblem& problem,
                        BackwardSchedule schedule = BackwardSchedule::automatic);

}  // namespace dfss::detail
