// A linear layer of the encoder: oneDNN's dense GEMM, dfss's block-sparse kernels when the
// layer has a block-sparse form (pruned at load or read from dfss_block_sparse.safetensors),
// the int8 layer (QuantizedLinear, on its int8 block-sparse kernels for a block-sparse layer)
// or the bf16 layer (Bf16Linear) when the model loads at that precision.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "dfss/bert.h"
#include "dfss/sparse_linear.h"
#include "model/bf16_linear.h"
#include "model/linear.h"
#include "model/quantized_linear.h"

namespace dfss::model {

class AnyLinear {
 public:
  AnyLinear(const dnnl::engine& engine, std::span<const float> weight, std::span<const float> bias,
            int64_t out_features, int64_t in_features, LinearEpilogue epilogue, std::string name,
            std::optional<BlockSparseMatrix> sparse, Precision precision)
      : dense_(engine, weight, bias, out_features, in_features, epilogue, name),
        bias_(bias),
        epilogue_(epilogue),
        sparse_(std::move(sparse)),
        int8_(precision == Precision::int8 ? std::make_unique<QuantizedLinear>(
                                                 engine, weight, bias, out_features, in_features,
                                                 epilogue, name, sparse_ ? &*sparse_ : nullptr)
                                           : nullptr),
        bf16_(precision == Precision::bf16
                  ? std::make_unique<Bf16Linear>(engine, weight, bias, out_features, in_features,
                                                 epilogue, name)
                  : nullptr) {}

  const std::optional<BlockSparseMatrix>& sparse() const { return sparse_; }
  QuantizedLinear* int8() { return int8_.get(); }  // null unless the layer runs int8
  const QuantizedLinear* int8() const { return int8_.get(); }

  // As Linear::run; `threads` and `isa` are the encode call's (0: OpenMP's default).
  void run(dnnl::stream& stream, const float* x, int64_t rows, float* y, int threads,
           Isa isa) const {
    if (int8_) return int8_->run(stream, x, rows, y, threads, isa);
    if (bf16_) return bf16_->run(stream, x, rows, y, threads, isa);
    if (!sparse_) return dense_.run(stream, x, rows, y);
    SparseLinearOptions options;
    options.isa = isa;
    options.threads = threads;
    options.epilogue = epilogue_ == LinearEpilogue::gelu_erf ? SparseLinearEpilogue::gelu_erf
                       : epilogue_ == LinearEpilogue::add_residual
                           ? SparseLinearEpilogue::add_residual
                           : SparseLinearEpilogue::none;
    sparse_linear(*sparse_, bias_, x, rows, sparse_->cols(), y, sparse_->rows(), options);
  }

 private:
  Linear dense_;
  std::span<const float> bias_;
  LinearEpilogue epilogue_;
  std::optional<BlockSparseMatrix> sparse_;
  std::unique_ptr<QuantizedLinear> int8_;
  std::unique_ptr<Bf16Linear> bf16_;
};

}  // namespace dfss::model
