// The block-sparse linear driver: argument checks, the choice of kernels, and the split of
// (token panel, block) work items between threads.
#include "dfss/sparse_linear.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_probe.h"
#include "dfss/attention.h"
#include "dfss/errors.h"
#include "kernels/sparse_gemm/sparse_gemm_kernels.h"

namespace dfss {
namespace {

using kernels::SparseGemmEpilogue;
using kernels::SparseGemmPanel;

[[noreturn]] void fail(const std::string& what) {
  throw InvalidArgument("sparse_linear: " + what);
}

void check_arguments(const BlockSparseMatrix& w, std::span<const float> bias, const float* x,
                     int64_t tokens, int64_t x_stride, const float* y, int64_t y_stride,
                     int threads) {
  if (tokens < 0) fail("tokens: expected >= 0, got " + std::to_string(tokens));
  if (x_stride < w.cols())
    fail("x_stride: expected >= the weight's cols (" + std::to_string(w.cols()) + "), got " +
         std::to_string(x_stride));
  if (y_stride < w.rows())
    fail("y_stride: expected >= the weight's rows (" + std::to_string(w.rows()) + "), got " +
         std::to_string(y_stride));
  if (!bias.empty() && static_cast<int64_t>(bias.size()) != w.rows())
    fail("bias: expected " + std::to_string(w.rows()) +
         " values (the weight's rows) or none, got " + std::to_string(bias.size()));
  if (threads < 0 || threads > kMaxThreads)
    fail("threads: expected 0 (OpenMP's default) .. " + std::to_string(kMaxThreads) + ", got " +
         std::to_string(threads));
  if (tokens > 0 && (x == nullptr || y == nullptr))
    fail("x and y must not be null when tokens > 0");
  if (tokens > std::numeric_limits<int64_t>::max() / std::max(x_stride, y_stride))
    fail("tokens * stride overflows: " + std::to_string(tokens) + " tokens");
  if (tokens > 0) {
    const float* x_end = x + (tokens - 1) * x_stride + w.cols();
    const float* y_end = y + (tokens - 1) * y_stride + w.rows();
    if (x < y_end && y < x_end) fail("x and y overlap: the output must be a separate buffer");
  }
}

SparseGemmEpilogue kernel_epilogue(SparseLinearEpilogue epilogue) {
  switch (epilogue) {
    case SparseLinearEpilogue::gelu_erf: return SparseGemmEpilogue::gelu_erf;
    case SparseLinearEpilogue::add_residual: return SparseGemmEpilogue::add_residual;
    default: return SparseGemmEpilogue::none;
  }
}

// Tokens per work item: the panel of x a thread reuses across all blocks stays within
// ~256 KB (L2 on every x86 core of the last decade), in whole register tiles of 12.
int64_t panel_tokens(int64_t cols) {
  const int64_t fit = (int64_t{256} << 10) / (cols * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(fit / 12 * 12, 12, 192);
}

// out[c][t] = x[t][c] for t < tokens, 0 for tokens <= t < out_stride.
void pack_transposed(const float* x, int64_t tokens, int64_t x_stride, int64_t cols, float* out,
                     int64_t out_stride) {
  for (int64_t c = 0; c < cols; ++c)
    std::fill_n(out + c * out_stride + tokens, out_stride - tokens, 0.0f);
  constexpr int64_t kTile = 16;  // a 16 x 16 tile at a time: both sides stay in cache lines
  for (int64_t t0 = 0; t0 < tokens; t0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t t = t0; t < std::min(tokens, t0 + kTile); ++t)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c)
          out[c * out_stride + t] = x[t * x_stride + c];
}

}  // namespace

Isa sparse_linear_isa(const BlockSparsePattern& pattern, Isa requested) {
  const Isa isa = resolve_isa(requested);
  const int v = pattern.block_rows;
  if (v % kernels::sparse_gemm_kernels(isa).lanes == 0) return isa;
  // 8-row blocks on an AVX-512 CPU tile on the 8-lane AVX2 kernels; other widths (a per-row
  // pattern) run one output at a time on the requested ISA's kernels.
  if (isa != Isa::scalar && v % kernels::sparse_gemm_kernels(Isa::avx2).lanes == 0)
    return Isa::avx2;
  return isa;
}

void sparse_linear(const BlockSparseMatrix& w, std::span<const float> bias, const float* x,
                   int64_t tokens, int64_t x_stride, float* y, int64_t y_stride,
                   const SparseLinearOptions& options) {
  check_arguments(w, bias, x, tokens, x_stride, y, y_stride, options.threads);
  resolve_isa(options.isa);  // an unsupported ISA is refused even with no tokens
  const int threads = options.threads > 0 ? options.threads : std::max(1, omp_get_max_threads());
  if (tokens == 0) return;

  const BlockSparsePattern& pattern = w.pattern();
  const int v = pattern.block_rows;
  const kernels::SparseGemmKernels& k =
      kernels::sparse_gemm_kernels(sparse_linear_isa(pattern, options.isa));
  const auto panel_kernel = v % k.lanes == 0 ? k.block_panel : k.rows_panel;

  // The bias padded to whole blocks, as the kernels read it.
  std::vector<float> padded_bias(static_cast<size_t>(w.blocks() * v), 0.0f);
  std::copy(bias.begin(), bias.end(), padded_bias.begin());

  const int64_t panel = panel_tokens(w.cols());
  const int64_t panels = (tokens + panel - 1) / panel, blocks = w.blocks();
  const int64_t items = panels * blocks;
  const int team = static_cast<int>(std::min<int64_t>(threads, items));
  detail::require_threads(team, "threads " + std::to_string(team));  // libgomp would exit
  const int64_t kept = w.kept_per_block();
  const SparseGemmEpilogue epilogue = kernel_epilogue(options.epilogue);
  const bool packed = panel_kernel == k.rows_panel;
  const int64_t packed_stride = (panel + 15) / 16 * 16;
  // Panel-major: a thread's consecutive items reuse one panel of x across the blocks (and
  // transpose it once, for the per-row kernels).
#pragma omp parallel num_threads(team)
  {
    std::vector<float> x_packed(packed ? static_cast<size_t>(w.cols() * packed_stride) : 0);
    int64_t packed_panel = -1;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t p = item / blocks, b = item % blocks;
      const int64_t t0 = p * panel, count = std::min(panel, tokens - t0);
      if (packed && p != packed_panel) {
        pack_transposed(x + t0 * x_stride, count, x_stride, w.cols(), x_packed.data(),
                        packed_stride);
        packed_panel = p;
      }
      SparseGemmPanel job;
      job.x = x + t0 * x_stride;
      job.x_stride = x_stride;
      job.x_packed = x_packed.data();
      job.x_packed_stride = packed_stride;
      job.tokens = count;
      job.columns = w.columns().data() + b * kept;
      job.kept = kept;
      job.values = w.values().data() + b * kept * v;
      job.bias = padded_bias.data() + b * v;
      job.block_rows = v;
      job.outputs = static_cast<int>(std::min<int64_t>(v, w.rows() - b * v));
      job.y = y + t0 * y_stride + b * v;
      job.y_stride = y_stride;
      job.epilogue = epilogue;
      panel_kernel(job);
    }
  }
}

void sparse_linear_reference(const BlockSparseMatrix& w, std::span<const float> bias,
                             const float* x, int64_t tokens, int64_t x_stride, float* y,
                             int64_t y_stride, SparseLinearEpilogue epilogue) {
  check_arguments(w, bias, x, tokens, x_stride, y, y_stride, 1);
  const std::vector<float> dense = w.to_dense();
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t o = 0; o < w.rows(); ++o) {
      double acc = bias.empty() ? 0.0 : bias[o];
      for (int64_t c = 0; c < w.cols(); ++c)
        acc += static_cast<double>(x[t * x_stride + c]) * dense[o * w.cols() + c];
      float& out = y[t * y_stride + o];
      switch (epilogue) {
        case SparseLinearEpilogue::gelu_erf:
          out = static_cast<float>(0.5 * acc * (1.0 + std::erf(acc / std::sqrt(2.0))));
          break;
        case SparseLinearEpilogue::add_residual: out = static_cast<float>(out + acc); break;
        default: out = static_cast<float>(acc);
      }
    }
  }
}

}  // namespace dfss
