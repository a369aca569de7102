// The public entry point of the backward: validate everything, then hand the problem to
// one implementation.
#include "attention/backward_problem.h"
#include "attention/selected.h"
#include "dfss/attention.h"

namespace dfss {

void attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                        const ConstTensorView& v, const ConstTensorView& out,
                        const ConstTensorView& d_out, const float* log_sum_exp,
                        const TensorView& dq, const TensorView& dk, const TensorView& dv,
                        const AttentionOptions& options) {
  const detail::BackwardProblem problem =
      detail::validate_backward(q, k, v, out, d_out, log_sum_exp, dq, dk, dv, options);
  if (dq.numel() == 0 && dk.numel() == 0 && dv.numel() == 0) return;
  if (problem.forward.pattern.selects_keys()) {
    if (options.impl == AttentionImpl::reference)
      return detail::run_selected_backward_reference(problem);
    return detail::run_selected_backward(problem);
  }
  switch (options.impl) {
    case AttentionImpl::reference: detail::run_backward_reference(problem); return;
    // No separate unfused backward: it would only add an Lq x Lk buffer.
    case AttentionImpl::unfused:
    case AttentionImpl::fused: detail::run_backward_fused(problem); return;
  }
}

}  // namespace dfss
