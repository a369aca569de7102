// A dense linear layer y = x Wᵀ + b on oneDNN's matmul, with the epilogues BERT needs fused
// into the GEMM (exact GELU; residual add into the output).
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <string>
#include <vector>

#include "model/row_count_cache.h"

namespace dfss::model {

enum class LinearEpilogue {
  none,          // y = x Wᵀ + b
  gelu_erf,      // y = gelu(x Wᵀ + b), GELU with the exact erf
  add_residual,  // y += x Wᵀ + b (y holds the residual on entry)
};

// oneDNN 2.x builds its f32 GEMM kernels lazily, inside the first GEMM that needs them,
// under a once-flag, possibly on an OpenMP worker thread, and with allocations it does not
// check: out of memory there is a segfault or an abort, and leaves the kernels half built
// for the rest of the process. This builds them on the calling thread, with one OpenMP
// thread, after checking that memory is available (require_onednn_headroom), by running
// small GEMMs of the shapes that take each of oneDNN's GEMM paths. Done once per process;
// Linear::run() calls it first. Throws OutOfMemory if memory is short (and retries on the
// next call).
void build_onednn_gemm_kernels(const dnnl::engine& engine);

// Whether oneDNN runs bf16 GEMMs on this CPU: it needs AVX-512 (AVX512-BF16 for speed; on
// plain AVX-512 it converts in software). Honors DNNL_MAX_CPU_ISA.
bool onednn_has_bf16_gemm();

class Linear {
 public:
  // `weight` [out_features, in_features] in C order (PyTorch nn.Linear) and `bias`
  // [out_features]; both must outlive the layer. The weights are repacked into oneDNN's
  // preferred layout on first use. `name` ("layer 3's QKV projection") is for messages.
  Linear(const dnnl::engine& engine, std::span<const float> weight, std::span<const float> bias,
         int64_t out_features, int64_t in_features, LinearEpilogue epilogue, std::string name);

  // The integer GEMM of an int8 layer (QuantizedLinear): y [rows, out_features] int32 =
  // x [rows, in_features] u8 · weightᵀ, weight [out_features, in_features] s8; no bias, no
  // epilogue. x and y of run() are then uint8_t and int32_t.
  Linear(const dnnl::engine& engine, std::span<const int8_t> weight, int64_t out_features,
         int64_t in_features, std::string name);

  // The bf16 GEMM of a bf16 layer (Bf16Linear): y [rows, out_features] fp32 =
  // epilogue(x [rows, in_features] bf16 · weightᵀ + bias), weight [out_features,
  // in_features] bf16, accumulated in fp32. x of run() is then uint16_t (bf16 bits).
  Linear(const dnnl::engine& engine, std::span<const uint16_t> weight, std::span<const float> bias,
         int64_t out_features, int64_t in_features, LinearEpilogue epilogue, std::string name);

  Linear(Linear&&) = delete;  // the cache holds a mutex; layers live in place
  friend void build_onednn_gemm_kernels(const dnnl::engine& engine);

  // Whether oneDNN runs bf16 GEMMs on this CPU: it needs AVX-512 (AVX512-BF16 for speed; on
  // plain AVX-512 it converts in software). Honors DNNL_MAX_CPU_ISA.
  bool onednn_has_bf16_gemm();

  int64_t out_features() const { return out_features_; }
  int64_t in_features() const { return in_features_; }

  // x [rows, in_features] and y [rows, out_features], C order, not overlapping. Throws
  // OutOfMemory naming the layer and what it was allocating if memory runs out.
  void run(dnnl::stream& stream, const float* x, int64_t rows, float* y) const {
    run_any(stream, x, rows, y);
  }
  void run(dnnl::stream& stream, const uint8_t* x, int64_t rows, int32_t* y) const {
    run_any(stream, x, rows, y);
  }
  void run(dnnl::stream& stream, const uint16_t* x, int64_t rows, float* y) const {
    run_any(stream, x, rows, y);
  }

 private:
  struct Prepared {
    dnnl::matmul primitive;
    dnnl::memory weights;           // packed for this primitive
    dnnl::memory::desc scratchpad;  // allocated per run: entries are shared by threads
  };
  Prepared prepare(int64_t rows) const;
  void run_any(dnnl::stream& stream, const void* x, int64_t rows, void* y) const;
  // run() without the kernel build and the memory check (the kernel build runs this).
  void execute(dnnl::stream& stream, const void* x, int64_t rows, void* y) const;
  dnnl::memory allocate_scratchpad(const dnnl::memory::desc& layout) const;

  dnnl::engine engine_;
  const void* weight_;
  std::span<const float> bias_;  // empty for the integer GEMM
  dnnl::memory::data_type x_type_, weight_type_, y_type_;
  int64_t out_features_, in_features_;
  LinearEpilogue epilogue_;
  std::string name_;

  mutable RowCountCache<Prepared> by_rows_;
  // Packed weights by layout, shared by the primitives of every row count that asks for
  // it; only touched under by_rows_'s lock (from prepare()).
  mutable std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> packed_;
};

}  // namespace dfss::model
