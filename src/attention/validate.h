// Argument checking for dfss::attention: turns the public views and options into a
// detail::AttentionProblem that the implementations can trust without further checks.
#pragma once

#include "attention/problem.h"
#include "dfss/attention.h"

namespace dfss::detail {

// Checks shapes, strides, dtypes, pointers, aliasing and options; resolves the defaults
// (scale, threads, isa). Throws InvalidArgument (or Unsupported for an ISA this CPU
// lacks) naming the argument and the expected vs actual value. Reads but never writes.
// check_out = false skips every check of `out`, for callers that never write it (the
// compressed-score export); the problem still carries `out` as given.
AttentionProblem validate_problem(const ConstTensorView& q, const ConstTensorView& k,
                                  const ConstTensorView& v, const TensorView& out,
                                  const AttentionOptions& options, bool check_out = true);

}  // namespace dfss::detail
