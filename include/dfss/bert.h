// A BERT encoder for sentence embeddings (e.g. all-MiniLM-L6-v2), run in C++ with dense or
// N:M sparse attention per layer.
//
// The forward pass is Hugging Face's BertModel followed by sentence-transformers' mean
// pooling and L2 normalization: embeddings (word + position + token type 0) and LayerNorm;
// per layer, self-attention through dfss::attention with the layer's pattern, output
// projection + residual + LayerNorm, feed-forward with the exact (erf) GELU + residual +
// LayerNorm; then the mean of the last hidden states over each text's tokens, divided by
// its L2 norm. Texts of one batch are packed back to back (no padding): the linear layers
// run on all their tokens at once (oneDNN matmul), attention on each text separately.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dfss/attention.h"
#include "dfss/sparse_linear.h"
#include "dfss/tokenizer.h"

namespace dfss {

// Parses the --attention argument: one pattern ("dense", "2:4", ...) for every layer, or a
// comma-separated list with exactly one per layer. Throws InvalidArgument naming
// `argument_name`, the entry at fault and what is accepted.
std::vector<SparsityPattern> parse_layer_patterns(const std::string& text, int64_t num_layers,
                                                  const std::string& argument_name);

// "dense", "2:4", or the comma list if the layers differ.
std::string layer_patterns_string(std::span<const SparsityPattern> patterns);

struct EncodeOptions {
  // One per layer; empty means dense everywhere.
  std::vector<SparsityPattern> attention;
  int threads = 0;  // 0: OpenMP's default
  Isa isa = Isa::automatic;
  // Number format of attention's Q, K and V, independent of the linear layers' precision.
  // bf16: the QKV layer's fp32 output is rounded to bf16 (nearest even) and attention runs
  // on its bf16 kernels (vdpbf16ps on AVX512-BF16; other ISAs widen bf16 to fp32 and gain
  // nothing); the attention output stays fp32.
  DType attention_dtype = DType::f32;
};

// Wall time spent in each part of encode(), summed over calls (for benchmarks).
struct EncodeProfile {
  double embeddings_s = 0;
  double linear_s = 0;     // QKV, output projection, feed-forward (GEMMs and their epilogues)
  double attention_s = 0;  // dfss::attention calls
  double norm_s = 0;       // LayerNorms and pooling
};

// The linear layers' arithmetic (docs/quantization.md). fp32: oneDNN's fp32 GEMM. bf16:
// weights rounded to bf16 at load, activations at every call, oneDNN's bf16 GEMM with fp32
// accumulation (needs AVX-512). int8: weights quantized at load to 7-bit integers per output
// row, activations to u8 per token at every call, oneDNN's u8·s8 → s32 GEMM (dfss's int8
// block-sparse kernels for block-sparse layers). Bias and
// epilogue in fp32; LayerNorm, attention, softmax, GELU and residuals stay fp32 in every case.
enum class Precision { fp32, bf16, int8 };

// "fp32", "bf16" or "int8"; anything else throws InvalidArgument naming `argument_name`.
Precision parse_precision(const std::string& text, const std::string& argument_name);
const char* precision_name(Precision precision);

struct LoadOptions {
  // Prunes every linear layer at load (one-shot, by magnitude) to this block-sparse pattern
  // and runs it on the block-sparse kernels; a dfss_block_sparse.safetensors is then ignored.
  std::optional<BlockSparsePattern> prune_weights;
  // Ignores dfss_block_sparse.safetensors: every layer runs dense (on model.safetensors).
  bool dense_weights = false;
  // bf16 needs dense weights: with block-sparse layers load() throws Unsupported; on a CPU
  // without AVX-512 too. int8 runs block-sparse layers on its own int8 sparse kernels.
  Precision precision = Precision::fp32;
};

class BertEncoder {
 public:
  // Loads config.json, model.safetensors and vocab.txt from `model_dir`, and
  // dfss_block_sparse.safetensors if the folder has one (the block-sparse layers). Throws
  // IoError or FormatError naming the file at fault.
  static BertEncoder load(const std::string& model_dir, const LoadOptions& options = {});

  BertEncoder(BertEncoder&&) noexcept;
  BertEncoder& operator=(BertEncoder&&) noexcept;
  ~BertEncoder();

  int64_t hidden_size() const;
  int64_t num_layers() const;
  int64_t intermediate_size() const;  // width of the feed-forward layer
  int64_t max_positions() const;      // longest input the position embeddings allow
  // "dense", or the block-sparse patterns of the linear layers and how many of them have
  // each ("2:4x16 (36/36 linears)"; Q, K and V count as three).
  std::string weight_sparsity() const;
  Precision precision() const;
  const tokenizer::WordPieceTokenizer& tokenizer() const;

  // Embeddings of already tokenized texts (each normally [CLS] ... [SEP]), written to
  // `out` [texts.size(), hidden_size()] in C order, one L2-normalized row per text. All the
  // texts go through the model as one batch. Throws InvalidArgument if a text is empty or
  // longer than max_positions(), an id is outside the vocabulary, `out` has the wrong size,
  // or options.attention has neither 0 nor num_layers() entries.
  void encode(std::span<const std::vector<int32_t>> texts, std::span<float> out,
              const EncodeOptions& options = {}, EncodeProfile* profile = nullptr) const;

  // Static int8 quantization (docs/quantization.md): runs `texts` through the model (in
  // batches of 64, with `options`), records the range every int8 layer's input takes, and
  // from then on each layer quantizes its inputs with the one scale and zero point covering
  // that range instead of per token. Calling it again recalibrates from scratch. Throws
  // InvalidArgument unless precision() is int8, for no texts, and as encode() for bad texts.
  void calibrate_int8(std::span<const std::vector<int32_t>> texts,
                      const EncodeOptions& options = {});
  // Whether calibrate_int8() has run.
  bool int8_calibrated() const;

 private:
  struct Impl;
  explicit BertEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfss
