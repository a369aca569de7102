#include "attention/validate.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>

#include "core/thread_probe.h"
#include "dfss/errors.h"

namespace dfss::detail {
namespace {

constexpr int64_t kMaxHeadDim = 256;

[[noreturn]] void fail(const std::string& argument, const std::string& message) {
  throw InvalidArgument(argument + ": " + message);
}

// "[2, 12, *, 64]": the shape an argument must have, '*' where any size is accepted.
std::string shape_pattern(const std::array<std::optional<int64_t>, 4>& dims) {
  std::string text = "[";
  for (size_t axis = 0; axis < dims.size(); ++axis) {
    if (axis > 0) text += ", ";
    text += dims[axis] ? std::to_string(*dims[axis]) : "*";
  }
  return text + "]";
}

std::string address_string(uintptr_t address) {
  std::ostringstream text;
  text << "0x" << std::hex << address;
  return text.str();
}

std::string float_string(float value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

// Half-open byte range [begin, end) that a view may touch; empty when it has no elements.
struct ByteRange {
  uintptr_t begin = 0;
  uintptr_t end = 0;

  bool empty() const { return begin == end; }
  bool overlaps(const ByteRange& other) const {
    return !empty() && !other.empty() && begin < other.end && other.begin < end;
  }
  // Streamed rather than concatenated: GCC 12 warns falsely (-Wrestrict) on "[" + string.
  std::string to_string() const {
    std::ostringstream text;
    text << std::hex << "[0x" << begin << ", 0x" << end << ")";
    return text.str();
  }
};

// Bytes [data, data + (last_offset + 1) * element_size), rejecting ranges that overflow or
// wrap around the address space (such views cannot describe real memory).
ByteRange byte_range(const std::string& name, const void* data, int64_t last_offset,
                     int64_t element_size) {
  int64_t count = 0, bytes = 0;
  const auto begin = reinterpret_cast<uintptr_t>(data);
  if (__builtin_add_overflow(last_offset, 1, &count) ||
      __builtin_mul_overflow(count, element_size, &bytes) ||
      static_cast<uint64_t>(bytes) > UINTPTR_MAX - begin) {
    fail(name, "expected a span of fewer than 2^63 bytes inside the address space, got " +
                   std::to_string(last_offset) + " + 1 elements of " +
                   std::to_string(element_size) + " bytes from " + address_string(begin));
  }
  return {begin, begin + static_cast<uintptr_t>(bytes)};
}

bool known_dtype(DType dtype) {
  return dtype == DType::f32 || dtype == DType::bf16;
}

// Checks what a view must satisfy on its own and returns the bytes it spans.
template <typename Pointer>
ByteRange check_view(const BasicTensorView<Pointer>& view, const std::string& name) {
  if (!known_dtype(view.dtype)) {
    fail(name, "expected dtype f32 or bf16, got dtype code " +
                   std::to_string(static_cast<int>(view.dtype)));
  }
  if (std::any_of(view.shape.begin(), view.shape.end(), [](int64_t n) { return n < 0; })) {
    fail(name, "expected non-negative dimensions, got shape " + shape_string(view.shape));
  }
  if (std::any_of(view.stride.begin(), view.stride.end(), [](int64_t s) { return s < 0; })) {
    fail(name, "expected non-negative strides, got strides " + shape_string(view.stride));
  }
  // An empty view touches no memory, whatever its pointer and strides; checking this first
  // also keeps the element count below from overflowing on [huge, huge, 0, 1].
  if (std::find(view.shape.begin(), view.shape.end(), 0) != view.shape.end()) return {};
  int64_t numel = 1;
  int64_t last_offset = 0;
  for (size_t axis = 0; axis < 4; ++axis) {
    int64_t step = 0;
    if (__builtin_mul_overflow(numel, view.shape[axis], &numel) ||
        __builtin_mul_overflow(view.shape[axis] - 1, view.stride[axis], &step) ||
        __builtin_add_overflow(last_offset, step, &last_offset)) {
      fail(name, "expected shape and strides addressing fewer than 2^63 elements, got shape " +
                     shape_string(view.shape) + " with strides " + shape_string(view.stride));
    }
  }
  if (view.data == nullptr) {
    fail(name, "expected non-null data for shape " + shape_string(view.shape) + " (" +
                   std::to_string(numel) + " elements), got nullptr");
  }
  const int64_t element_size = dtype_size(view.dtype);
  const auto address = reinterpret_cast<uintptr_t>(view.data);
  if (address % static_cast<uintptr_t>(element_size) != 0) {
    fail(name, "expected data aligned to " + std::to_string(element_size) + " bytes for dtype " +
                   dtype_name(view.dtype) + ", got address " + address_string(address));
  }
  return byte_range(name, view.data, last_offset, element_size);
}

// A sufficient condition for distinct indices to address distinct elements (exact
// detection is a knapsack problem): taken in order of increasing stride, each axis of size
// > 1 must step past the largest offset the smaller-stride axes reach. Every permutation
// or slice of a contiguous tensor passes.
void check_no_self_overlap(const TensorView& out, const std::string& name = "out") {
  if (out.numel() == 0) return;
  std::array<size_t, 4> axes{0, 1, 2, 3};
  std::stable_sort(axes.begin(), axes.end(),
                   [&](size_t a, size_t b) { return out.stride[a] < out.stride[b]; });
  int64_t reach = 0;
  for (size_t axis : axes) {
    if (out.shape[axis] <= 1) continue;
    if (out.stride[axis] <= reach) {
      fail(name, "expected strides giving every element its own memory, got strides " +
                     shape_string(out.stride) + " for shape " + shape_string(out.shape) +
                     " (axis " + std::to_string(axis) + " revisits memory of other axes)");
    }
    reach += (out.shape[axis] - 1) * out.stride[axis];  // bounded by check_view
  }
}

void check_head_dim(const ConstTensorView& view, const std::string& name, const char* what) {
  const int64_t size = view.shape[3];
  if (size < 1 || size > kMaxHeadDim) {
    fail(name, std::string("expected ") + what + " (shape[3]) in [1, " +
                   std::to_string(kMaxHeadDim) + "], got " + std::to_string(size) + " in shape " +
                   shape_string(view.shape));
  }
}

template <typename Pointer>
void check_shape(const BasicTensorView<Pointer>& view, const std::string& name,
                 const std::array<std::optional<int64_t>, 4>& expected, const char* why) {
  for (size_t axis = 0; axis < 4; ++axis) {
    if (expected[axis] && view.shape[axis] != *expected[axis]) {
      fail(name, "expected shape " + shape_pattern(expected) + " (" + why + "), got " +
                     shape_string(view.shape));
    }
  }
}

void check_same_dtype(const ConstTensorView& view, const std::string& name, DType expected) {
  if (view.dtype != expected) {
    fail(name, std::string("expected dtype ") + dtype_name(expected) + " (same as q), got " +
                   dtype_name(view.dtype));
  }
}

// Resolves the additive mask's row stride and returns the bytes the mask spans.
ByteRange check_additive_mask(const KeyPaddingMask& mask, int64_t batch, int64_t lk,
                              int64_t* row_stride) {
  *row_stride = 0;
  if (mask.additive == nullptr) return {};
  const int64_t stride = mask.additive_batch_stride;
  if (stride < 0 && stride != -1) {
    fail("options.mask.additive_batch_stride",
         "expected -1 (contiguous) or a non-negative stride, got " + std::to_string(stride));
  }
  *row_stride = stride == -1 ? lk : stride;
  // Rows must not overlap when there are several: a shorter stride is almost surely a bug.
  if (batch > 1 && *row_stride < lk) {
    fail("options.mask.additive_batch_stride",
         "expected -1 (contiguous) or >= Lk = " + std::to_string(lk) +
             " when B = " + std::to_string(batch) + " > 1, got " + std::to_string(stride));
  }
  if (batch == 0 || lk == 0) return {};
  int64_t last_offset = 0;
  if (__builtin_mul_overflow(batch - 1, *row_stride, &last_offset) ||
      __builtin_add_overflow(last_offset, lk - 1, &last_offset)) {
    fail("options.mask.additive", "expected B x Lk = " + std::to_string(batch) + " x " +
                                      std::to_string(lk) + " values with batch stride " +
                                      std::to_string(*row_stride) +
                                      " to address fewer than 2^63 elements");
  }
  return byte_range("options.mask.additive", mask.additive, last_offset, sizeof(float));
}

ByteRange check_valid_lengths(const int64_t* valid_lengths, int64_t batch, int64_t lk) {
  if (valid_lengths == nullptr || batch == 0) return {};
  for (int64_t b = 0; b < batch; ++b) {
    if (valid_lengths[b] < 0 || valid_lengths[b] > lk) {
      fail("options.mask.valid_lengths", "expected entries in [0, Lk] = [0, " + std::to_string(lk) +
                                             "], got valid_lengths[" + std::to_string(b) +
                                             "] = " + std::to_string(valid_lengths[b]));
    }
  }
  return byte_range("options.mask.valid_lengths", valid_lengths, batch - 1, sizeof(int64_t));
}

// "[1, 0, 3, 2]"
std::string index_string(std::initializer_list<int64_t> index) {
  std::string text = "[";
  for (int64_t i : index) text += (text.size() > 1 ? ", " : "") + std::to_string(i);
  return text + "]";
}

// A mask value may be finite (a bias) or -inf (masked); NaN and +inf would make the rows
// they touch NaN without any error.
bool usable_mask_value(float value) {
  return std::isfinite(value) || value == -INFINITY;
}

void fail_mask_value(const std::string& name, const std::string& index, float value) {
  fail(name,
       "expected finite values or -inf (masked), got " + float_string(value) + " at " + index);
}

void check_additive_mask_values(const KeyPaddingMask& mask, int64_t batch, int64_t lk,
                                int64_t row_stride) {
  if (mask.additive == nullptr) return;
  for (int64_t b = 0; b < batch; ++b) {
    const float* row = mask.additive + b * row_stride;
    for (int64_t j = 0; j < lk; ++j) {
      if (!usable_mask_value(row[j]))
        fail_mask_value("options.mask.additive", index_string({b, j}), row[j]);
    }
  }
}

// Broadcast axes (stride 0) are visited once: every value in memory is checked once.
void check_score_mask_values(const ConstTensorView& mask) {
  if (mask.data == nullptr || mask.numel() == 0) return;
  const auto* data = static_cast<const float*>(mask.data);
  std::array<int64_t, 4> extent{};
  for (size_t axis = 0; axis < 4; ++axis)
    extent[axis] = mask.stride[axis] == 0 ? 1 : mask.shape[axis];
  for (int64_t i0 = 0; i0 < extent[0]; ++i0) {
    for (int64_t i1 = 0; i1 < extent[1]; ++i1) {
      for (int64_t i2 = 0; i2 < extent[2]; ++i2) {
        const float* row = data + i0 * mask.stride[0] + i1 * mask.stride[1] + i2 * mask.stride[2];
        for (int64_t i3 = 0; i3 < extent[3]; ++i3) {
          const float value = row[i3 * mask.stride[3]];
          if (!usable_mask_value(value))
            fail_mask_value("options.score_mask", index_string({i0, i1, i2, i3}), value);
        }
      }
    }
  }
}

void check_kv_heads(int64_t heads, int64_t kv_heads) {
  if (kv_heads < 1 && heads > 0) {
    fail("k", "expected at least one key/value head (shape[1] >= 1) for Hq = " +
                  std::to_string(heads) + ", got 0");
  }
  if (kv_heads > 0 && heads % kv_heads != 0) {
    fail("k", "expected a number of key/value heads (shape[1]) that divides the " +
                  std::to_string(heads) + " query heads of q, got " + std::to_string(kv_heads));
  }
}

// The general mask: f32, [B, Hq, Lq, Lk] (broadcast by zero strides).
ByteRange check_score_mask(const ConstTensorView& mask, const AttentionProblem& problem) {
  if (mask.data == nullptr) return {};
  if (mask.dtype != DType::f32) {
    fail("options.score_mask",
         std::string("expected dtype f32 (additive), got ") + dtype_name(mask.dtype));
  }
  check_shape(mask, "options.score_mask", {problem.batch, problem.heads, problem.lq, problem.lk},
              "B, Hq, Lq of q and Lk of k; broadcast with zero strides");
  return check_view(mask, "options.score_mask");
}

void check_impl(AttentionImpl impl) {
  switch (impl) {
    case AttentionImpl::reference:
    case AttentionImpl::unfused:
    case AttentionImpl::fused: return;
  }
  fail("options.impl", "expected reference, unfused or fused, got enum value " +
                           std::to_string(static_cast<int>(impl)));
}

void check_pattern(const SparsityPattern& pattern) {
  if (pattern.selects_keys()) {
    const int64_t b = pattern.block;
    if (pattern.n != 0 || pattern.m != 0 || pattern.keep < 0) {
      fail("options.pattern", "expected keep >= 1 with n = m = 0 (topk:K, dsa:K), got keep = " +
                                  std::to_string(pattern.keep) + ", n = " +
                                  std::to_string(pattern.n) + ", m = " + std::to_string(pattern.m));
    }
    if (!pattern.predicted && b != 1)
      fail("options.pattern", "expected block = 1 for topk:K, got " + std::to_string(b));
    if (b < 1 || b > kDsaMaxBlock || (b & (b - 1)) != 0 || pattern.keep % b != 0) {
      fail("options.pattern", "expected block a power of two <= " + std::to_string(kDsaMaxBlock) +
                                  " dividing keep = " + std::to_string(pattern.keep) + ", got " +
                                  std::to_string(b));
    }
    return;
  }
  const bool dense = pattern.n == 0 && pattern.m == 0;
  if (!dense && !(1 <= pattern.n && pattern.n < pattern.m && pattern.m <= 8)) {
    fail("options.pattern", "expected dense (n = m = 0) or N:M with 1 <= N < M <= 8, got n = " +
                                std::to_string(pattern.n) + ", m = " + std::to_string(pattern.m));
  }
}

// Like resolve_isa, but with messages naming options.isa.
Isa resolve_option_isa(Isa requested) {
  switch (requested) {
    case Isa::automatic: return resolve_isa(requested);  // may consult DFSS_ISA
    case Isa::scalar:
    case Isa::avx2:
    case Isa::avx512:
    case Isa::avx512_bf16:
      if (!isa_supported(requested)) {
        throw Unsupported(std::string("options.isa: expected an ISA this CPU supports (best: ") +
                          isa_name(detected_isa()) + "), got " + isa_name(requested));
      }
      return requested;
  }
  fail("options.isa", "expected auto, scalar, avx2, avx512 or avx512_bf16, got enum value " +
                          std::to_string(static_cast<int>(requested)));
}

void check_out_disjoint(const ByteRange& out, const ByteRange& other, const std::string& name) {
  if (out.overlaps(other)) {
    fail("out", "expected memory disjoint from " + name + ", got out bytes " + out.to_string() +
                    " overlapping " + name + " bytes " + other.to_string());
  }
}

}  // namespace

AttentionProblem validate_problem(const ConstTensorView& q, const ConstTensorView& k,
                                  const ConstTensorView& v, const TensorView& out,
                                  const AttentionOptions& options, bool check_out) {
  const ByteRange q_bytes = check_view(q, "q");
  const ByteRange k_bytes = check_view(k, "k");
  const ByteRange v_bytes = check_view(v, "v");
  const ByteRange out_bytes = check_out ? check_view(out, "out") : ByteRange{};

  check_head_dim(q, "q", "head dimension d");
  check_head_dim(v, "v", "value dimension dv");
  AttentionProblem problem;
  problem.batch = q.shape[0];
  problem.heads = q.shape[1];
  problem.lq = q.shape[2];
  problem.d = q.shape[3];
  problem.lk = k.shape[2];
  problem.dv = v.shape[3];
  problem.kv_heads = k.shape[1];
  const int64_t batch = problem.batch, heads = problem.heads;
  check_shape(k, "k", {batch, std::nullopt, std::nullopt, problem.d}, "B and d of q");
  check_kv_heads(heads, problem.kv_heads);
  check_shape(v, "v", {batch, problem.kv_heads, problem.lk, std::nullopt},
              "B of q, Hkv and Lk of k");
  check_same_dtype(k, "k", q.dtype);
  check_same_dtype(v, "v", q.dtype);
  if (check_out) {
    check_shape(out, "out", {batch, heads, problem.lq, problem.dv}, "B, H, Lq of q and dv of v");
    check_no_self_overlap(out);
  }

  const ByteRange mask_bytes =
      check_additive_mask(options.mask, batch, problem.lk, &problem.mask_stride);
  const ByteRange lengths_bytes =
      check_valid_lengths(options.mask.valid_lengths, batch, problem.lk);
  const ByteRange score_mask_bytes = check_score_mask(options.score_mask, problem);
  if (options.window < 0) {
    fail("options.window",
         "expected >= 0 (0 = no sliding window), got " + std::to_string(options.window));
  }
  // Nonzero only when q is non-empty, whose element count check_view has bounded.
  const int64_t lse_count = shape_numel({batch, heads, problem.lq, 1});
  const ByteRange lse_bytes =
      options.log_sum_exp == nullptr || lse_count == 0
          ? ByteRange{}
          : byte_range("options.log_sum_exp", options.log_sum_exp, lse_count - 1, sizeof(float));
  if (options.scale && !std::isfinite(*options.scale)) {
    fail("options.scale", "expected a finite value, got " + float_string(*options.scale));
  }
  if (options.threads < 0 || options.threads > kMaxThreads) {
    fail("options.threads", "expected 0 (OpenMP default) to " + std::to_string(kMaxThreads) +
                                ", got " + std::to_string(options.threads));
  }
  check_impl(options.impl);
  check_pattern(options.pattern);
  problem.isa = resolve_option_isa(options.isa);

  // The implementations read inputs after writing parts of out, so any aliasing would make
  // results depend on the schedule.
  check_out_disjoint(out_bytes, q_bytes, "q");
  check_out_disjoint(out_bytes, k_bytes, "k");
  check_out_disjoint(out_bytes, v_bytes, "v");
  check_out_disjoint(out_bytes, mask_bytes, "options.mask.additive");
  check_out_disjoint(out_bytes, lengths_bytes, "options.mask.valid_lengths");
  check_out_disjoint(out_bytes, score_mask_bytes, "options.score_mask");
  check_out_disjoint(out_bytes, lse_bytes, "options.log_sum_exp");
  for (const auto& [bytes, name] : {std::pair{q_bytes, "q"},
                                    {k_bytes, "k"},
                                    {v_bytes, "v"},
                                    {mask_bytes, "options.mask.additive"},
                                    {score_mask_bytes, "options.score_mask"}}) {
    if (lse_bytes.overlaps(bytes)) {
      fail("options.log_sum_exp", std::string("expected memory disjoint from ") + name +
                                      ", got bytes " + lse_bytes.to_string() + " overlapping " +
                                      name + " bytes " + bytes.to_string());
    }
  }

  problem.q = q;
  problem.k = k;
  problem.v = v;
  problem.out = out;
  problem.dtype = q.dtype;
  problem.scale =
      options.scale.value_or(static_cast<float>(1.0 / std::sqrt(static_cast<double>(problem.d))));
  problem.causal = options.causal;
  problem.mask_additive = options.mask.additive;
  problem.valid_lengths = options.mask.valid_lengths;
  problem.score_mask = options.score_mask;
  problem.window = options.window;
  problem.log_sum_exp = options.log_sum_exp;
  problem.pattern = options.pattern;
  problem.threads = options.threads > 0 ? options.threads : std::max(1, omp_get_max_threads());
  // Values last: every shape and span they depend on is known to be sound.
  check_additive_mask_values(options.mask, batch, problem.lk, problem.mask_stride);
  check_score_mask_values(options.score_mask);
  // libgomp would exit the process if it could not start the region's threads.
  require_threads(
      problem.threads,
      "options.threads = " + std::to_string(options.threads) +
          (options.threads == 0 ? " (OpenMP's default, " + std::to_string(problem.threads) + ")"
                                : ""));
  return problem;
}

MemorySpan check_tensor_argument(const ConstTensorView& view, const std::string& name,
                                 const std::array<int64_t, 4>& expected, const char* why) {
  const ByteRange bytes = check_view(view, name);
  check_shape(view, name, {expected[0], expected[1], expected[2], expected[3]}, why);
  return {bytes.begin, bytes.end};
}

MemorySpan check_output_argument(const TensorView& view, const std::string& name,
                                 const std::array<int64_t, 4>& expected, const char* why) {
  const ByteRange bytes = check_view(view, name);
  check_shape(view, name, {expected[0], expected[1], expected[2], expected[3]}, why);
  check_no_self_overlap(view, name);
  return {bytes.begin, bytes.end};
}

MemorySpan float_span(const std::string& name, const float* data, int64_t count) {
  if (count == 0 || data == nullptr) return {};
  const ByteRange bytes = byte_range(name, data, count - 1, sizeof(float));
  return {bytes.begin, bytes.end};
}

}  // namespace dfss::detail
