#include "model/quantized_linear.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "core/thread_probe.h"
#include "dfss/errors.h"
#include "kernels/quantize/quantize_kernels.h"
#include "kernels/sparse_gemm_int8/sparse_gemm_int8_kernels.h"
#include "model/memory_guard.h"
#include "model/thread_count_scope.h"

namespace dfss::model {
namespace {

constexpr int64_t kPanelRows = 128;
// The block-sparse kernels gather each block's activations per panel at a cost proportional
// to its tokens whatever the panel size, so they take smaller panels: the int32 results of a
// panel (tokens x out_features) then stay in L2 for the dequantization.
constexpr int64_t kSparsePanelRows = 64;

int64_t padded_tokens(int64_t rows) {
  const int64_t tile = kernels::kInt8SparseTokenTile;
  return (rows + tile - 1) / tile * tile;
}

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

namespace {

QuantizedWeights quantize_layer(std::span<const float> weight, int64_t out_features,
                                int64_t in_features, const std::string& name,
                                const BlockSparseMatrix* sparse) {
  if (!sparse) return quantize_weights(weight, out_features, in_features, name);
  if (sparse->rows() != out_features || sparse->cols() != in_features) {
    throw InvalidArgument(name + ": block-sparse weights are " + std::to_string(sparse->rows()) +
                          " x " + std::to_string(sparse->cols()) + ", expected " +
                          std::to_string(out_features) + " x " + std::to_string(in_features));
  }
  return quantize_weights(sparse->to_dense(), out_features, in_features, name);
}

}  // namespace

QuantizedLinear::QuantizedLinear(const dnnl::engine& engine, std::span<const float> weight,
                                 std::span<const float> bias, int64_t out_features,
                                 int64_t in_features, LinearEpilogue epilogue, std::string name,
                                 const BlockSparseMatrix* sparse)
    : weights_(quantize_layer(weight, out_features, in_features, name, sparse)),
      bias_(bias),
      out_features_(out_features),
      in_features_(in_features),
      epilogue_(epilogue),
      name_(name),
      engine_(engine) {
  if (sparse) {
    sparse_ = pack_int8_block_sparse(*sparse, weights_.q);
    std::vector<int8_t>().swap(weights_.q);  // released: the kept values are in sparse_
  } else {
    gemm_.emplace(engine, weights_.q, out_features, in_features, std::move(name));
  }
}

void QuantizedLinear::multiply_sparse(const uint8_t* x, int64_t rows, int32_t* acc, uint8_t* x_t,
                                      uint8_t* gathered, Isa isa) const {
  const int64_t stride = padded_tokens(rows);
  const kernels::SparseGemmInt8Kernels& k = kernels::sparse_gemm_int8_kernels(isa);
  // Transposed, tokens contiguous, as the kernels gather them.
  k.transpose({x, in_features_, rows, in_features_, x_t, stride});

  const int v = sparse_.block_rows;
  kernels::SparseGemmInt8Panel job;
  job.x_t = x_t;
  job.x_t_stride = stride;
  job.tokens = rows;
  job.quads = sparse_.quads;
  job.block_rows = v;
  job.gathered = gathered;
  job.acc_stride = out_features_;
  for (int64_t b = 0; b < sparse_.blocks; ++b) {
    job.columns = sparse_.columns.data() + b * 4 * sparse_.quads;
    job.values = sparse_.values.data() + b * sparse_.quads * v * 4;
    job.outputs = static_cast<int>(std::min<int64_t>(v, out_features_ - b * v));
    job.acc = acc + b * v;
    k.block_panel(job);
  }
}

void QuantizedLinear::set_static_range(float lo, float hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
    throw InvalidArgument(name_ + ": calibrated input range [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "] is not a finite interval");
  }
  const float low = std::min(lo, 0.0f), high = std::max(hi, 0.0f);
  float scale = high / 255.0f - low / 255.0f;
  if (!(scale >= std::numeric_limits<float>::min())) scale = 1.0f;
  static_scale_ = scale;
  static_zero_point_ =
      static_cast<int32_t>(std::clamp(std::nearbyint(-low * (1.0f / scale)), 0.0f, 255.0f));
}

void QuantizedLinear::run(dnnl::stream& /*stream*/, const float* x, int64_t rows, float* y,
                          int threads, Isa isa) const {
  if (rows == 0) return;
  const int wanted = threads > 0 ? threads : std::max(1, omp_get_max_threads());
  // Each thread takes panels of rows through all three steps on its own: quantize, a
  // one-thread oneDNN GEMM, dequantize. A panel's u8 activations and int32 results stay in
  // that core's cache, and no step waits for the others' threads. (On 2 Zen 3 cores, each
  // step over a whole 4096-row batch made the layer 1.0-1.55x oneDNN's fp32 GEMM; in
  // panels, 1.5-1.8x.)
  const int64_t panel = std::clamp<int64_t>((rows + wanted - 1) / wanted, 1,
                                            is_sparse() ? kSparsePanelRows : kPanelRows);
  const int64_t panels = (rows + panel - 1) / panel;
  const int team = static_cast<int>(std::min<int64_t>(wanted, panels));
  detail::require_threads(team, "threads " + std::to_string(team));  // libgomp would exit
  const auto cells = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  // Per thread, not zero-filled: every entry is written before it is read.
  const size_t x_cells = cells(panel, in_features_), acc_cells = cells(panel, out_features_);
  const auto allocate = [&](const char* what, size_t bytes, auto make) {
    return naming_allocation_failures(
        std::string("allocating the ") + what + " of " + name_ + " (" + megabytes(bytes) + ")",
        make);
  };
  const auto x_q = allocate("quantized activations", x_cells * team, [&] {
    return std::unique_ptr<uint8_t[]>(new uint8_t[x_cells * team]);
  });
  const auto acc = allocate("int32 results", acc_cells * team * sizeof(int32_t), [&] {
    return std::unique_ptr<int32_t[]>(new int32_t[acc_cells * team]);
  });
  // The sparse kernels' scratch: the panel transposed, and one block's gathered columns.
  const int64_t stride = padded_tokens(panel);
  const size_t x_t_cells = is_sparse() ? cells(in_features_, stride) : 0;
  const size_t gathered_cells = is_sparse() ? cells(4 * sparse_.quads, stride) : 0;
  const auto sparse_scratch = allocate(
      "block-sparse scratch", (x_t_cells + gathered_cells) * team,
      [&] { return std::unique_ptr<uint8_t[]>(new uint8_t[(x_t_cells + gathered_cells) * team]); });
  std::vector<float> row_scale(cells(panel, team));
  std::vector<int32_t> row_zero_point(cells(panel, team));

  const Isa resolved = resolve_isa(isa);
  const kernels::QuantizeKernels& kernels = kernels::quantize_kernels(resolved);
  const kernels::FusedEpilogue epilogue = kernel_epilogue(epilogue_);
  // An exception must not leave an OpenMP construct (a thread missing the loop's barrier
  // would hang the others): each panel catches its own, the first is rethrown after the
  // region, and the panels after it are skipped.
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::atomic<bool> failed = false;
#pragma omp parallel num_threads(team)
  {
    const int thread = omp_get_thread_num();
    uint8_t* q = x_q.get() + x_cells * thread;
    int32_t* a = acc.get() + acc_cells * thread;
    float* scale = row_scale.data() + panel * thread;
    int32_t* zero_point = row_zero_point.data() + panel * thread;
    uint8_t* x_t = sparse_scratch.get() + (x_t_cells + gathered_cells) * thread;
    uint8_t* gathered = x_t + x_t_cells;
    // oneDNN inside this region: one thread, on a stream of this thread's own.
    const ThreadCountScope one_thread(1);
    std::optional<dnnl::stream> stream;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      if (failed.load(std::memory_order_relaxed)) continue;
      try {
        if (!stream && !is_sparse()) stream.emplace(engine_);
        const int64_t first = p * panel, count = std::min(panel, rows - first);
        for (int64_t t = 0; t < count; ++t) {
          const float* row = x + (first + t) * in_features_;
          if (is_static()) {
            zero_point[t] = static_zero_point_;
            kernels.quantize_row_static({row, in_features_, q + t * in_features_, static_scale_,
                                         static_zero_point_, scale + t});
          } else {
            kernels.quantize_row(
                {row, in_features_, q + t * in_features_, scale + t, zero_point + t});
          }
        }
        if (is_sparse())
          multiply_sparse(q, count, a, x_t, gathered, resolved);
        else
          gemm_->run(*stream, q, count, a);
        for (int64_t t = 0; t < count; ++t) {
          kernels.dequantize_row({a + t * out_features_, out_features_, scale[t], zero_point[t],
                                  weights_.scale.data(), weights_.row_sum.data(), bias_.data(),
                                  y + (first + t) * out_features_, epilogue});
        }
      } catch (...) {
        const std::lock_guard lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        failed = true;
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace dfss::model
