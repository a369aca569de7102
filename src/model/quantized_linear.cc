#include "model/quantized_linear.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/thread_probe.h"
#include "dfss/errors.h"
#include "kernels/quantize/quantize_kernels.h"
#include "model/memory_guard.h"

namespace dfss::model {
namespace {

kernels::FusedEpilogue kernel_epilogue(LinearEpilogue epilogue) {
  switch (epilogue) {
    case LinearEpilogue::gelu_erf: return kernels::FusedEpilogue::gelu_erf;
    case LinearEpilogue::add_residual: return kernels::FusedEpilogue::add_residual;
    default: return kernels::FusedEpilogue::none;
  }
}

}  // namespace

QuantizedWeights quantize_weights(std::span<const float> weight, int64_t out_features,
                                  int64_t in_features, const std::string& name) {
  QuantizedWeights out;
  out.q.resize(static_cast<size_t>(out_features * in_features));
  out.scale.resize(static_cast<size_t>(out_features));
  out.row_sum.resize(static_cast<size_t>(out_features));
  for (int64_t r = 0; r < out_features; ++r) {
    const float* row = weight.data() + r * in_features;
    float largest = 0.0f;
    for (int64_t c = 0; c < in_features; ++c) {
      if (!std::isfinite(row[c])) {
        throw InvalidArgument(name + ": weight [" + std::to_string(r) + ", " + std::to_string(c) +
                              "] is " + std::to_string(row[c]) + ", expected a finite number");
      }
      largest = std::max(largest, std::fabs(row[c]));
    }
    const float scale = largest > 0.0f ? largest / kInt8WeightMax : 1.0f;
    int32_t sum = 0;
    for (int64_t c = 0; c < in_features; ++c) {
      const float v =
          std::clamp(std::nearbyint(row[c] / scale), float{-kInt8WeightMax}, float{kInt8WeightMax});
      out.q[static_cast<size_t>(r * in_features + c)] = static_cast<int8_t>(v);
      sum += static_cast<int32_t>(v);
    }
    out.scale[static_cast<size_t>(r)] = scale;
    out.row_sum[static_cast<size_t>(r)] = static_cast<float>(sum);
  }
  return out;
}

QuantizedLinear::QuantizedLinear(const dnnl::engine& engine, std::span<const float> weight,
                                 std::span<const float> bias, int64_t out_features,
                                 int64_t in_features, LinearEpilogue epilogue, std::string name)
    : weights_(quantize_weights(weight, out_features, in_features, name)),
      bias_(bias),
      out_features_(out_features),
      in_features_(in_features),
      epilogue_(epilogue),
      name_(name),
      gemm_(engine, weights_.q, out_features, in_features, std::move(name)) {}

void QuantizedLinear::run(dnnl::stream& stream, const float* x, int64_t rows, float* y, int threads,
                          Isa isa) const {
  if (rows == 0) return;
  const auto allocate = [&](const char* what, size_t bytes, auto make) {
    return naming_allocation_failures(
        std::string("allocating the ") + what + " of " + name_ + " (" + megabytes(bytes) + ")",
        make);
  };
  const auto cells = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  std::vector<uint8_t> x_q = allocate("quantized activations", cells(rows, in_features_), [&] {
    return std::vector<uint8_t>(cells(rows, in_features_));
  });
  std::vector<int32_t> acc =
      allocate("int32 results", cells(rows, out_features_) * sizeof(int32_t),
               [&] { return std::vector<int32_t>(cells(rows, out_features_)); });
  std::vector<float> row_scale(static_cast<size_t>(rows));
  std::vector<int32_t> row_zero_point(static_cast<size_t>(rows));

  const kernels::QuantizeKernels& kernels = kernels::quantize_kernels(resolve_isa(isa));
  const int wanted = threads > 0 ? threads : std::max(1, omp_get_max_threads());
  const int team = static_cast<int>(std::min<int64_t>(wanted, rows));
  detail::require_threads(team, "threads " + std::to_string(team));  // libgomp would exit

#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    kernels.quantize_row({x + t * in_features_, in_features_, x_q.data() + t * in_features_,
                          &row_scale[static_cast<size_t>(t)],
                          &row_zero_point[static_cast<size_t>(t)]});
  }
  gemm_.run(stream, x_q.data(), rows, acc.data());
  const kernels::FusedEpilogue epilogue = kernel_epilogue(epilogue_);
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    kernels.dequantize_row(
        {acc.data() + t * out_features_, out_features_, row_scale[static_cast<size_t>(t)],
         row_zero_point[static_cast<size_t>(t)], weights_.scale.data(), weights_.row_sum.data(),
         bias_.data(), y + t * out_features_, epilogue});
  }
}

}  // namespace dfss::model
