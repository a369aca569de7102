// The public entry point: validate everything, then hand the problem to one implementation.
#include "dfss/attention.h"

#include "attention/problem.h"
#include "attention/selected.h"
#include "attention/sparse_reference.h"
#include "attention/validate.h"

namespace dfss {

void attention(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v,
               const TensorView& out, const AttentionOptions& options) {
  const detail::AttentionProblem problem = detail::validate_problem(q, k, v, out, options);
  // An empty output needs no work, so implementations never see B, H or Lq = 0.
  if (problem.out.numel() == 0) return;
  if (problem.pattern.selects_keys()) {
    if (options.impl == AttentionImpl::reference) return detail::run_selected_reference(problem);
    return detail::run_selected(problem);  // one fast path: it never materializes Lq x Lk
  }
  switch (options.impl) {
    case AttentionImpl::reference:
      if (problem.pattern.dense()) {
        detail::run_reference(problem);
      } else {
        detail::run_sparse_reference(problem);
      }
      return;
    case AttentionImpl::unfused: detail::run_unfused(problem); return;
    case AttentionImpl::fused: detail::run_fused(problem); return;
  }
}

}  // namespace dfss
