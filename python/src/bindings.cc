// dfss._C: the attention forward and backward on raw CPU buffers.
//
// The Python side (python/dfss/_ops.py) passes each tensor as a tuple (data pointer, dtype
// name, shape, strides in elements) taken from torch's data_ptr(), shape and stride(), so
// this module never includes a torch header and does not depend on the torch version. The
// GIL is released for the whole C++ call; the caller keeps the tensors alive meanwhile.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <tuple>

#include "dfss/attention.h"
#include "dfss/compressed_scores.h"
#include "dfss/cpu.h"
#include "dfss/errors.h"
#include "dfss/selected_keys.h"
#include "dfss/version.h"
#include "kernels/peak/peak.h"

namespace py = pybind11;

namespace {

// (data pointer, "f32" | "bf16", shape[4], strides[4]).
using Spec = std::tuple<uintptr_t, std::string, std::array<int64_t, 4>, std::array<int64_t, 4>>;

dfss::DType parse_dtype(const std::string& name, const char* argument) {
  if (name == "f32") return dfss::DType::f32;
  if (name == "bf16") return dfss::DType::bf16;
  throw dfss::InvalidArgument(std::string(argument) + ": expected dtype f32 or bf16, got " + name);
}

dfss::ConstTensorView const_view(const Spec& spec, const char* argument) {
  const auto& [data, dtype, shape, stride] = spec;
  return {reinterpret_cast<const void*>(data), parse_dtype(dtype, argument), shape, stride};
}

dfss::TensorView mutable_view(const Spec& spec, const char* argument) {
  const auto& [data, dtype, shape, stride] = spec;
  return {reinterpret_cast<void*>(data), parse_dtype(dtype, argument), shape, stride};
}

// Everything but the tensors themselves, shared by forward, backward and compressed_scores.
// key_padding: additive fp32 [B, Lk] rows at key_padding + b * key_padding_stride (0: none).
dfss::AttentionOptions make_options(uintptr_t key_padding, int64_t key_padding_stride,
                                    const std::optional<Spec>& score_mask,
                                    std::optional<float> scale, bool causal, int64_t window,
                                    int threads, const std::string& sparsity,
                                    const std::string& impl) {
  dfss::AttentionOptions options;
  options.scale = scale;
  if (key_padding != 0) {
    options.mask.additive = reinterpret_cast<const float*>(key_padding);
    options.mask.additive_batch_stride = key_padding_stride;
  }
  if (score_mask) options.score_mask = const_view(*score_mask, "attn_mask");
  options.causal = causal;
  options.window = window;
  options.threads = threads;
  options.pattern = dfss::parse_pattern(sparsity, "sparsity");
  options.impl = dfss::parse_impl(impl, "impl");
  return options;
}

void forward(const Spec& q, const Spec& k, const Spec& v, const Spec& out, uintptr_t key_padding,
             int64_t key_padding_stride, const std::optional<Spec>& score_mask,
             std::optional<float> scale, bool causal, int64_t window, uintptr_t log_sum_exp,
             int threads, const std::string& sparsity, const std::string& impl) {
  dfss::AttentionOptions options = make_options(key_padding, key_padding_stride, score_mask, scale,
                                                causal, window, threads, sparsity, impl);
  options.log_sum_exp = reinterpret_cast<float*>(log_sum_exp);
  dfss::attention(const_view(q, "q"), const_view(k, "k"), const_view(v, "v"),
                  mutable_view(out, "out"), options);
}

void backward(const Spec& q, const Spec& k, const Spec& v, const Spec& out, const Spec& d_out,
              uintptr_t log_sum_exp, const Spec& dq, const Spec& dk, const Spec& dv,
              uintptr_t key_padding, int64_t key_padding_stride,
              const std::optional<Spec>& score_mask, std::optional<float> scale, bool causal,
              int64_t window, int threads, const std::string& sparsity, const std::string& impl) {
  const dfss::AttentionOptions options = make_options(
      key_padding, key_padding_stride, score_mask, scale, causal, window, threads, sparsity, impl);
  dfss::attention_backward(const_view(q, "q"), const_view(k, "k"), const_view(v, "v"),
                           const_view(out, "out"), const_view(d_out, "d_out"),
                           reinterpret_cast<const float*>(log_sum_exp), mutable_view(dq, "dq"),
                           mutable_view(dk, "dk"), mutable_view(dv, "dv"), options);
}

// The N:M kept set as the library selects it: (kept per row, int32 columns [B, H, Lq, kept]
// and fp32 scores [B, H, Lq, kept], both as bytes). For tests and analysis.
py::tuple compressed_scores(const Spec& q, const Spec& k, const Spec& v, uintptr_t key_padding,
                            int64_t key_padding_stride, std::optional<float> scale, bool causal,
                            const std::string& sparsity) {
  dfss::CompressedScores scores;
  {
    py::gil_scoped_release release;
    const dfss::AttentionOptions options = make_options(
        key_padding, key_padding_stride, std::nullopt, scale, causal, 0, 0, sparsity, "unfused");
    scores = dfss::compressed_scores(const_view(q, "q"), const_view(k, "k"), const_view(v, "v"),
                                     options);
  }
  return py::make_tuple(scores.kept,
                        py::bytes(reinterpret_cast<const char*>(scores.columns.data()),
                                  scores.columns.size() * sizeof(int32_t)),
                        py::bytes(reinterpret_cast<const char*>(scores.values.data()),
                                  scores.values.size() * sizeof(float)));
}

// The kept keys of topk:K / dsa:K as the library selects them: (stride, int32 keys
// [B, H, Lq, stride] and int64 counts [B, H, Lq], both as bytes). For tests and analysis.
py::tuple selected_keys(const Spec& q, const Spec& k, const Spec& v, uintptr_t key_padding,
                        int64_t key_padding_stride, const std::optional<Spec>& score_mask,
                        std::optional<float> scale, bool causal, int64_t window, int threads,
                        const std::string& sparsity) {
  dfss::SelectedKeys kept;
  {
    py::gil_scoped_release release;
    const dfss::AttentionOptions options =
        make_options(key_padding, key_padding_stride, score_mask, scale, causal, window, threads,
                     sparsity, "fused");
    kept = dfss::selected_keys(const_view(q, "q"), const_view(k, "k"), const_view(v, "v"), options);
  }
  return py::make_tuple(kept.stride,
                        py::bytes(reinterpret_cast<const char*>(kept.keys.data()),
                                  kept.keys.size() * sizeof(int32_t)),
                        py::bytes(reinterpret_cast<const char*>(kept.counts.data()),
                                  kept.counts.size() * sizeof(int64_t)));
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "dfss attention kernels on raw CPU buffers (use the dfss package, not this module)";

  // Registered in this order, so the most derived class is matched first.
  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const dfss::InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const dfss::Unsupported& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const dfss::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "dfss: out of memory");
    }
  });

  using namespace pybind11::literals;
  m.def("forward", &forward, py::call_guard<py::gil_scoped_release>(), "q"_a, "k"_a, "v"_a, "out"_a,
        "key_padding"_a, "key_padding_stride"_a, "score_mask"_a, "scale"_a, "causal"_a, "window"_a,
        "log_sum_exp"_a, "threads"_a, "sparsity"_a, "impl"_a);
  m.def("backward", &backward, py::call_guard<py::gil_scoped_release>(), "q"_a, "k"_a, "v"_a,
        "out"_a, "d_out"_a, "log_sum_exp"_a, "dq"_a, "dk"_a, "dv"_a, "key_padding"_a,
        "key_padding_stride"_a, "score_mask"_a, "scale"_a, "causal"_a, "window"_a, "threads"_a,
        "sparsity"_a, "impl"_a);
  m.def("compressed_scores", &compressed_scores, "q"_a, "k"_a, "v"_a, "key_padding"_a,
        "key_padding_stride"_a, "scale"_a, "causal"_a, "sparsity"_a);
  m.def("selected_keys", &selected_keys, "q"_a, "k"_a, "v"_a, "key_padding"_a,
        "key_padding_stride"_a, "score_mask"_a, "scale"_a, "causal"_a, "window"_a, "threads"_a,
        "sparsity"_a);
  m.def(
      "parse_pattern",
      [](const std::string& text) { return dfss::parse_pattern(text, "sparsity").to_string(); },
      "text"_a,
      "Normalizes a sparsity string (\"dense\", \"N:M\", \"topk:K\", \"dsa:K[:block=B]\"); "
      "ValueError if invalid.");
  m.def(
      "kernel_name",
      [](const std::string& dtype, const std::string& sparsity) {
        return dfss::attention_kernel_name(dfss::AttentionImpl::fused, parse_dtype(dtype, "dtype"),
                                           dfss::Isa::automatic,
                                           dfss::parse_pattern(sparsity, "sparsity"));
      },
      "dtype"_a = "f32", "sparsity"_a = "dense");
  m.def("isa", [] { return std::string(dfss::isa_name(dfss::resolve_isa(dfss::Isa::automatic))); });
  m.def(
      "measure_peak_gflops",
      [](int threads, bool bf16) {
        return dfss::kernels::measure_fma_peak_gflops(dfss::Isa::automatic, bf16, threads);
      },
      py::call_guard<py::gil_scoped_release>(), "threads"_a, "bf16"_a = false,
      "Multiply-add rate of this CPU (GFLOP/s) on `threads` threads, as dfss bench measures it.");
  m.attr("__version__") = dfss::version();
}
