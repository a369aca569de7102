// Argument checking for dfss::attention: turns the public views and options into a
// detail::AttentionProblem that the implementations can trust without further checks.
#pragma once

#include <array>
#include <cstdint>
#include <string>

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

// The bytes [begin, end) a view may touch; empty when it has no elements.
struct MemorySpan {
  uintptr_t begin = 0;
  uintptr_t end = 0;

  bool overlaps(const MemorySpan& other) const {
    return begin != end && other.begin != other.end && begin < other.end && other.begin < end;
  }
};

// For arguments beyond q, k, v and out (the backward's): the checks validate_problem
// makes of an input (dtype f32 or bf16, strides, pointer, alignment, span) plus the shape
// `expected` (`why` says where it comes from); outputs also need every element to have its
// own memory. Return the bytes the view spans.
MemorySpan check_tensor_argument(const ConstTensorView& view, const std::string& name,
                                 const std::array<int64_t, 4>& expected, const char* why);
MemorySpan check_output_argument(const TensorView& view, const std::string& name,
                                 const std::array<int64_t, 4>& expected, const char* why);
// The bytes of `count` floats at `data` (empty for count 0 or null).
MemorySpan float_span(const std::string& name, const float* data, int64_t count);

}  // namespace dfss::detail
