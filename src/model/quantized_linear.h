// An int8 linear layer y = x Wᵀ + b: W quantized once at load to signed 7-bit integers with
// one scale per output row; x quantized at every call to u8 with one scale and zero point per
// token (dynamic quantization); oneDNN's u8·s8 → s32 GEMM in between, or dfss's int8
// block-sparse kernels when W is block-sparse; bias and the epilogue fused into the
// dequantization, in fp32.
//
// Why 7 bits for the weights: without VNNI (AVX2, AVX-512 before Cascade Lake), the int8
// GEMM multiplies u8 by s8 in pairs summed into int16 (vpmaddubsw), which saturates for
// 255·127·2; with |Wq| <= 63 it cannot. The int32 results are then exact on every CPU, so
// an int8 model gives the same embeddings on every x86-64 machine.
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dfss/cpu.h"
#include "dfss/sparse_linear.h"
#include "model/int8_block_sparse.h"
#include "model/linear.h"

namespace dfss::model {

inline constexpr int kInt8WeightMax = 63;

// Weights [out_features, in_features] quantized per output row: row r is
// scale[r] · q[r][·] with scale[r] = max |W[r][·]| / kInt8WeightMax (1 for a zero row) and
// q = round(W / scale) (half to even). Throws InvalidArgument naming `name` for a
// non-finite weight.
struct QuantizedWeights {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<float> row_sum;  // Σ q[r][·], for the activations' zero points
};
QuantizedWeights quantize_weights(std::span<const float> weight, int64_t out_features,
                                  int64_t in_features, const std::string& name);

class QuantizedLinear {
 public:
  // As Linear's constructor; `weight` is quantized here and not kept, `bias` must outlive
  // the layer. With `sparse` (of the layer's shape), the layer's weights are sparse's pruned
  // matrix instead of `weight` (ignored then), quantized the same way and run on the int8
  // block-sparse kernels: the results are the same bits as the dense int8 layer of the
  // pruned matrix (integer sums are exact either way).
  QuantizedLinear(const dnnl::engine& engine, std::span<const float> weight,
                  std::span<const float> bias, int64_t out_features, int64_t in_features,
                  LinearEpilogue epilogue, std::string name,
                  const BlockSparseMatrix* sparse = nullptr);

  QuantizedLinear(QuantizedLinear&&) = delete;  // gemm_ points into weights_

  // As Linear::run; `threads` (0: OpenMP's default) run it, `isa` (Isa::automatic: the
  // best) picks the quantize and dequantize kernels. `stream` is unused: each thread runs
  // oneDNN on a stream of its own.
  void run(dnnl::stream& stream, const float* x, int64_t rows, float* y, int threads,
           Isa isa) const;

  // Static quantization: from now on every row of x is quantized with the one scale and
  // zero point that cover [min(lo, 0), max(hi, 0)] (the rule of kernels::QuantizeRow
  // applied to that range); values outside it are clamped. Throws InvalidArgument for a
  // non-finite or inverted range.
  void set_static_range(float lo, float hi);
  void set_dynamic() { static_scale_ = 0.0f; }  // back to per-token scales
  bool is_static() const { return static_scale_ > 0.0f; }
  bool is_sparse() const { return !gemm_.has_value(); }

 private:
  // acc [rows, out_features] = x [rows, in_features] · Wqᵀ on the block-sparse kernels;
  // x_t [in_features][rows padded to 16] and gathered [4 · quads][rows padded to 16] are the
  // calling thread's scratch.
  void multiply_sparse(const uint8_t* x, int64_t rows, int32_t* acc, uint8_t* x_t,
                       uint8_t* gathered, Isa isa) const;

  QuantizedWeights weights_;  // q is empty for a sparse layer (sparse_ holds its values)
  Int8BlockSparseWeights sparse_;
  std::span<const float> bias_;
  int64_t out_features_, in_features_;
  LinearEpilogue epilogue_;
  std::string name_;
  dnnl::engine engine_;
  std::optional<Linear> gemm_;  // the dense layer's oneDNN GEMM; none for a sparse one
  float static_scale_ = 0.0f;   // 0: dynamic, per token
  int32_t static_zero_point_ = 0;
};

}  // namespace dfss::model
