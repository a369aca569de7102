// Argument checking for dfss::attention_backward: q, k, v and the options as for the
// forward, then the forward's results, the output gradient and the three gradients.
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <utility>

#include "attention/backward_problem.h"
#include "attention/validate.h"
#include "dfss/errors.h"

namespace dfss::detail {
namespace {

[[noreturn]] void fail(const std::string& argument, const std::string& message) {
  throw InvalidArgument(argument + ": " + message);
}

std::string span_string(const MemorySpan& span) {
  char text[64];
  std::snprintf(text, sizeof text, "[0x%jx, 0x%jx)", static_cast<uintmax_t>(span.begin),
                static_cast<uintmax_t>(span.end));
  return text;
}

}  // namespace

BackwardProblem validate_backward(const ConstTensorView& q, const ConstTensorView& k,
                                  const ConstTensorView& v, const ConstTensorView& out,
                                  const ConstTensorView& d_out, const float* log_sum_exp,
                                  const TensorView& dq, const TensorView& dk, const TensorView& dv,
                                  const AttentionOptions& options) {
  // The forward's own log_sum_exp option is an output there; here the argument is the input.
  AttentionOptions forward_options = options;
  forward_options.log_sum_exp = nullptr;
  BackwardProblem problem;
  problem.forward = validate_problem(q, k, v, TensorView{}, forward_options, /*check_out=*/false);
  const AttentionProblem& p = problem.forward;

  const MemorySpan out_bytes =
      check_tensor_argument(out, "out", {p.batch, p.heads, p.lq, p.dv}, "B, Hq, Lq of q, dv of v");
  const MemorySpan d_out_bytes = check_tensor_argument(
      d_out, "d_out", {p.batch, p.heads, p.lq, p.dv}, "B, Hq, Lq of q, dv of v");
  if (d_out.dtype != q.dtype) {
    fail("d_out", std::string("expected dtype ") + dtype_name(q.dtype) + " (same as q), got " +
                      dtype_name(d_out.dtype));
  }
  // Checked: with Lq = 0, B * Hq alone may overflow.
  const int64_t rows = shape_numel({p.batch, p.heads, p.lq, 1});
  if (log_sum_exp == nullptr && rows > 0) {
    fail("log_sum_exp", "expected the forward's [B, Hq, Lq] = [" + std::to_string(p.batch) + ", " +
                            std::to_string(p.heads) + ", " + std::to_string(p.lq) +
                            "] log-sum-exp values, got nullptr");
  }
  const MemorySpan lse_bytes = float_span("log_sum_exp", log_sum_exp, rows);
  const MemorySpan dq_bytes =
      check_output_argument(dq, "dq", {p.batch, p.heads, p.lq, p.d}, "shape of q");
  const MemorySpan dk_bytes =
      check_output_argument(dk, "dk", {p.batch, p.kv_heads, p.lk, p.d}, "shape of k");
  const MemorySpan dv_bytes =
      check_output_argument(dv, "dv", {p.batch, p.kv_heads, p.lk, p.dv}, "shape of v");

  // Inputs are read after parts of the gradients are written, so no output may share
  // memory with an input or another output.
  const auto view_span = [](const ConstTensorView& view, const char* name) {
    return view.data == nullptr ? MemorySpan{}
                                : check_tensor_argument(view, name, view.shape, "as given");
  };
  const std::pair<MemorySpan, const char*> inputs[] = {
      {view_span(q, "q"), "q"},
      {view_span(k, "k"), "k"},
      {view_span(v, "v"), "v"},
      {out_bytes, "out"},
      {d_out_bytes, "d_out"},
      {lse_bytes, "log_sum_exp"},
      {float_span(
           "options.mask.additive", p.mask_additive,
           p.mask_additive && p.batch > 0 && p.lk > 0 ? (p.batch - 1) * p.mask_stride + p.lk : 0),
       "options.mask.additive"},
      {view_span(p.score_mask, "options.score_mask"), "options.score_mask"},
  };
  const std::pair<MemorySpan, const char*> outputs[] = {
      {dq_bytes, "dq"}, {dk_bytes, "dk"}, {dv_bytes, "dv"}};
  for (size_t o = 0; o < std::size(outputs); ++o) {
    const auto& [bytes, name] = outputs[o];
    for (const auto& [other, other_name] : inputs) {
      if (bytes.overlaps(other)) {
        fail(name, std::string("expected memory disjoint from ") + other_name + ", got " + name +
                       " bytes " + span_string(bytes) + " overlapping " + other_name + " bytes " +
                       span_string(other));
      }
    }
    for (size_t e = 0; e < o; ++e) {
      if (bytes.overlaps(outputs[e].first)) {
        fail(name, std::string("expected memory disjoint from ") + outputs[e].second + ", got " +
                       name + " bytes " + span_string(bytes) + " overlapping " + outputs[e].second +
                       " bytes " + span_string(outputs[e].first));
      }
    }
  }
  if (p.valid_lengths && p.batch > 0) {
    const MemorySpan lengths{reinterpret_cast<uintptr_t>(p.valid_lengths),
                             reinterpret_cast<uintptr_t>(p.valid_lengths + p.batch)};
    for (const auto& [bytes, name] : outputs) {
      if (bytes.overlaps(lengths)) {
        fail(name, std::string("expected memory disjoint from options.mask.valid_lengths, got ") +
                       name + " bytes " + span_string(bytes) + " overlapping " +
                       span_string(lengths));
      }
    }
  }

  problem.out = out;
  problem.d_out = d_out;
  problem.log_sum_exp = log_sum_exp;
  problem.dq = dq;
  problem.dk = dk;
  problem.dv = dv;
  return problem;
}

}  // namespace dfss::detail
