#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dfss/bert.h"
#include "dfss/cpu.h"
#include "dfss/errors.h"
#include "io/safetensors.h"
#include "kernels/quantize/quantize_kernels.h"
#include "model/any_linear.h"
#include "model/bert_weights.h"
#include "model/block_sparse_weights.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "model/memory_guard.h"
#include "model/pooling.h"
#include "model/thread_count_scope.h"

namespace dfss {
namespace {

using model::AnyLinear;
using model::LayerNorm;
using model::LinearEpilogue;
using model::megabytes;
using model::naming_allocation_failures;
using model::ThreadCountScope;

std::vector<float> concat(std::initializer_list<std::span<const float>> parts,
                          const std::string& what) {
  size_t count = 0;
  for (std::span<const float> part : parts) count += part.size();
  return naming_allocation_failures(
      "concatenating " + what + " (" + megabytes(count * sizeof(float)) + ")", [&] {
        std::vector<float> out;
        out.reserve(count);
        for (std::span<const float> part : parts) out.insert(out.end(), part.begin(), part.end());
        return out;
      });
}

// "layer 3's " (numbered from 0, as in the tensor names), for messages.
std::string layer_name(int64_t index) {
  return "layer " + std::to_string(index) + "'s ";
}

// The block-sparse forms of the linear layers, by Hugging Face name ("encoder.layer.0.
// attention.self.query", ...), as LoadOptions asks.
using SparseLayers = std::map<std::string, BlockSparseMatrix>;

std::string linear_name(int64_t layer, const char* part) {
  return "encoder.layer." + std::to_string(layer) + "." + part;
}

// Q, K and V as one block-sparse matrix (their rows stacked), if they are block-sparse.
std::optional<BlockSparseMatrix> stacked_qkv(const SparseLayers& sparse, int64_t index,
                                             const std::string& file) {
  const char* parts[] = {"attention.self.query", "attention.self.key", "attention.self.value"};
  int found = 0;
  for (const char* part : parts) found += sparse.count(linear_name(index, part)) > 0;
  if (found == 0) return std::nullopt;
  const BlockSparseMatrix& q = sparse.at(linear_name(index, parts[0]));
  std::vector<int32_t> columns;
  std::vector<float> values;
  for (const char* part : parts) {
    const auto at = sparse.find(linear_name(index, part));
    // Stacked rows share blocks only if every block lies within one of Q, K, V.
    if (found != 3 || at->second.rows() % q.pattern().block_rows != 0 ||
        block_sparse_pattern_name(at->second.pattern()) != block_sparse_pattern_name(q.pattern()))
      throw FormatError(file + ": layer " + std::to_string(index) +
                        ": query, key and value must all be block-sparse, with one pattern whose "
                        "block rows divide the hidden size");
    columns.insert(columns.end(), at->second.columns().begin(), at->second.columns().end());
    values.insert(values.end(), at->second.values().begin(), at->second.values().end());
  }
  return BlockSparseMatrix::from_compressed(3 * q.rows(), q.cols(), q.pattern(), std::move(columns),
                                            std::move(values));
}

std::optional<BlockSparseMatrix> find_sparse(const SparseLayers& sparse, const std::string& name) {
  const auto at = sparse.find(name);
  if (at == sparse.end()) return std::nullopt;
  return at->second;
}

// The linear layers and LayerNorms of one encoder layer. Q, K and V share one
// [3·hidden, hidden] matrix, so a token's projections come out side by side: q | k | v.
struct LayerOps {
  LayerOps(const dnnl::engine& engine, const model::BertLayerWeights& w, int64_t index,
           int64_t hidden, int64_t intermediate_size, double eps, const SparseLayers& sparse,
           const std::string& sparse_file, Precision precision)
      : qkv_weight(concat({w.query.weight, w.key.weight, w.value.weight},
                          layer_name(index) + "Q, K and V weights")),
        qkv_bias(concat({w.query.bias, w.key.bias, w.value.bias},
                        layer_name(index) + "Q, K and V biases")),
        qkv(engine, qkv_weight, qkv_bias, 3 * hidden, hidden, LinearEpilogue::none,
            layer_name(index) + "QKV projection", stacked_qkv(sparse, index, sparse_file),
            precision),
        attention_output(engine, w.attention_output.weight, w.attention_output.bias, hidden, hidden,
                         LinearEpilogue::add_residual, layer_name(index) + "attention output",
                         find_sparse(sparse, linear_name(index, "attention.output.dense")),
                         precision),
        intermediate(engine, w.intermediate.weight, w.intermediate.bias, intermediate_size, hidden,
                     LinearEpilogue::gelu_erf, layer_name(index) + "feed-forward input",
                     find_sparse(sparse, linear_name(index, "intermediate.dense")), precision),
        output(engine, w.output.weight, w.output.bias, hidden, intermediate_size,
               LinearEpilogue::add_residual, layer_name(index) + "feed-forward output",
               find_sparse(sparse, linear_name(index, "output.dense")), precision),
        attention_norm(engine, w.attention_norm, hidden, eps,
                       layer_name(index) + "attention LayerNorm"),
        output_norm(engine, w.output_norm, hidden, eps, layer_name(index) + "output LayerNorm") {}

  std::vector<float> qkv_weight, qkv_bias;
  AnyLinear qkv, attention_output, intermediate, output;
  LayerNorm attention_norm, output_norm;
};

// Every linear layer of the model by Hugging Face name, with its dense weight.
std::vector<model::DenseLinear> dense_linears(const model::BertWeights& weights) {
  const model::BertConfig& c = weights.config;
  std::vector<model::DenseLinear> out;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const model::BertLayerWeights& w = weights.layers[l];
    const int64_t h = c.hidden_size, f = c.intermediate_size;
    out.push_back({linear_name(l, "attention.self.query"), h, h, w.query.weight});
    out.push_back({linear_name(l, "attention.self.key"), h, h, w.key.weight});
    out.push_back({linear_name(l, "attention.self.value"), h, h, w.value.weight});
    out.push_back({linear_name(l, "attention.output.dense"), h, h, w.attention_output.weight});
    out.push_back({linear_name(l, "intermediate.dense"), f, h, w.intermediate.weight});
    out.push_back({linear_name(l, "output.dense"), h, f, w.output.weight});
  }
  return out;
}

// The block-sparse layers LoadOptions asks for: all pruned now, those of the folder's
// dfss_block_sparse.safetensors, or none.
SparseLayers sparse_layers(const model::BertWeights& weights, const std::string& model_dir,
                           const LoadOptions& options, std::string& file) {
  const std::vector<model::DenseLinear> linears = dense_linears(weights);
  SparseLayers out;
  if (options.prune_weights) {
    for (const model::DenseLinear& linear : linears) {
      if (linear.in % options.prune_weights->m != 0)
        throw InvalidArgument(
            "prune_weights: " + block_sparse_pattern_name(*options.prune_weights) +
            " needs the in_features of " + linear.name + " (" + std::to_string(linear.in) +
            ") to be a multiple of M");
      out.emplace(linear.name, BlockSparseMatrix::prune(linear.weight, linear.out, linear.in,
                                                        *options.prune_weights));
    }
    return out;
  }
  file = (std::filesystem::path(model_dir) / model::kBlockSparseFileName).string();
  if (options.dense_weights || !std::filesystem::exists(file)) return out;
  const io::SafetensorsFile sparse_file = io::SafetensorsFile::open(file);
  return model::read_block_sparse_layers(sparse_file, linears);
}

// Adds the seconds since the last lap to a profile field (or nothing without a profile).
class Stopwatch {
 public:
  explicit Stopwatch(EncodeProfile* profile) : profile_(profile) {}
  void lap(double EncodeProfile::*field) {
    const auto now = std::chrono::steady_clock::now();
    if (profile_ != nullptr) profile_->*field += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  EncodeProfile* profile_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// oneDNN reports failures with its own exception type; callers of dfss get dfss's. (Steps
// that know what they allocate have already turned out-of-memory into a precise message.)
[[noreturn]] void rethrow_onednn_error(const dnnl::error& e, const std::string& step) {
  if (e.status == dnnl_out_of_memory) throw OutOfMemory("out of memory while " + step);
  throw Error("BertEncoder: oneDNN failed while " + step + ": " + e.what());
}

}  // namespace

struct BertEncoder::Impl {
  Impl(model::BertWeights weights_in, tokenizer::WordPieceTokenizer tokenizer_in,
       const SparseLayers& sparse, const std::string& sparse_file, Precision precision_in)
      : weights(std::move(weights_in)),
        precision(precision_in),
        tokenizer(std::move(tokenizer_in)),
        engine(dnnl::engine::kind::cpu, 0),
        embeddings_norm(engine, weights.embeddings_norm, weights.config.hidden_size,
                        weights.config.layer_norm_eps, "the embeddings' LayerNorm") {
    const model::BertConfig& c = weights.config;
    for (size_t i = 0; i < weights.layers.size(); ++i) {
      layers.push_back(std::make_unique<LayerOps>(
          engine, weights.layers[i], static_cast<int64_t>(i), c.hidden_size, c.intermediate_size,
          c.layer_norm_eps, sparse, sparse_file, precision));
    }
  }

  void validate(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                const EncodeOptions& options) const;
  // Sees each linear layer's input [rows, cols] just before the layer runs.
  using InputObserver =
      std::function<void(const AnyLinear& layer, const float* x, int64_t rows, int64_t cols)>;
  // The whole encoder, after validate().
  void forward(std::span<const std::vector<int32_t>> texts, std::span<float> out,
               const EncodeOptions& options, EncodeProfile* profile,
               const InputObserver* observe = nullptr) const;
  void embed_tokens(std::span<const std::vector<int32_t>> texts, float* x) const;
  // qkv [tokens, 3 · hidden] of `qkv_dtype` (f32, or bf16 bits).
  void attend(std::span<const std::vector<int32_t>> texts, const void* qkv, DType qkv_dtype,
              float* context, const AttentionOptions& options) const;

  model::BertWeights weights;
  Precision precision;
  tokenizer::WordPieceTokenizer tokenizer;
  dnnl::engine engine;
  LayerNorm embeddings_norm;
  std::vector<std::unique_ptr<LayerOps>> layers;
};

void BertEncoder::Impl::validate(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                                 const EncodeOptions& options) const {
  const model::BertConfig& c = weights.config;
  const size_t expected = texts.size() * static_cast<size_t>(c.hidden_size);
  if (out.size() != expected) {
    throw InvalidArgument("out: expected " + std::to_string(expected) + " floats (" +
                          std::to_string(texts.size()) + " texts x " +
                          std::to_string(c.hidden_size) + "), got " + std::to_string(out.size()));
  }
  if (options.attention_dtype != DType::f32 && options.attention_dtype != DType::bf16) {
    throw InvalidArgument("options.attention_dtype: expected f32 or bf16, got value " +
                          std::to_string(static_cast<int>(options.attention_dtype)));
  }
  if (!options.attention.empty() &&
      static_cast<int64_t>(options.attention.size()) != c.num_hidden_layers) {
    throw InvalidArgument("options.attention: expected 0 or " +
                          std::to_string(c.num_hidden_layers) + " patterns (one per layer), got " +
                          std::to_string(options.attention.size()));
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string name = "texts[" + std::to_string(i) + "]";
    if (texts[i].empty()) throw InvalidArgument(name + ": expected at least one token, got none");
    if (static_cast<int64_t>(texts[i].size()) > c.max_position_embeddings) {
      throw InvalidArgument(
          name + ": expected at most " + std::to_string(c.max_position_embeddings) +
          " tokens (the model's positions), got " + std::to_string(texts[i].size()));
    }
    for (int32_t id : texts[i]) {
      if (id < 0 || id >= c.vocab_size) {
        throw InvalidArgument(name + ": token id " + std::to_string(id) +
                              " is outside the vocabulary [0, " + std::to_string(c.vocab_size) +
                              ")");
      }
    }
  }
}

void BertEncoder::Impl::embed_tokens(std::span<const std::vector<int32_t>> texts, float* x) const {
  const int64_t hidden = weights.config.hidden_size;
  const float* token_type = weights.token_type_embeddings.data();  // every token is segment 0
  for (const std::vector<int32_t>& text : texts) {
    for (size_t position = 0; position < text.size(); ++position, x += hidden) {
      const float* word = weights.word_embeddings.data() + text[position] * hidden;
      const float* where = weights.position_embeddings.data() + position * hidden;
      for (int64_t i = 0; i < hidden; ++i) x[i] = word[i] + where[i] + token_type[i];
    }
  }
}

void BertEncoder::Impl::attend(std::span<const std::vector<int32_t>> texts, const void* qkv,
                               DType qkv_dtype, float* context,
                               const AttentionOptions& options) const {
  const size_t element_bytes = qkv_dtype == DType::bf16 ? sizeof(uint16_t) : sizeof(float);
  const model::BertConfig& c = weights.config;
  const int64_t hidden = c.hidden_size, heads = c.num_attention_heads, d = c.head_dim();
  int64_t row = 0;
  for (const std::vector<int32_t>& text : texts) {
    const int64_t length = static_cast<int64_t>(text.size());
    // Head h of token t is at columns h*d .. h*d+d of its q (k, v) slice.
    const auto slice = [&](int64_t offset) {
      return ConstTensorView{static_cast<const char*>(qkv) +
                                 static_cast<size_t>(row * 3 * hidden + offset) * element_bytes,
                             qkv_dtype,
                             {1, heads, length, d},
                             {length * 3 * hidden, d, 3 * hidden, 1}};
    };
    const TensorView out{
        context + row * hidden, DType::f32, {1, heads, length, d}, {length * hidden, d, hidden, 1}};
    attention(slice(0), slice(hidden), slice(2 * hidden), out, options);
    row += length;
  }
}

BertEncoder::BertEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BertEncoder::BertEncoder(BertEncoder&&) noexcept = default;
BertEncoder& BertEncoder::operator=(BertEncoder&&) noexcept = default;
BertEncoder::~BertEncoder() = default;

BertEncoder BertEncoder::load(const std::string& model_dir, const LoadOptions& options) {
  // First, while the most memory is free: see build_onednn_gemm_kernels().
  try {
    model::build_onednn_gemm_kernels(dnnl::engine(dnnl::engine::kind::cpu, 0));
  } catch (const dnnl::error& e) {
    rethrow_onednn_error(e, "building oneDNN's GEMM kernels");
  }
  model::BertWeights weights = naming_allocation_failures(
      "loading the model in " + model_dir, [&] { return model::load_bert_model(model_dir); });
  const std::string vocab_path = (std::filesystem::path(model_dir) / "vocab.txt").string();
  auto tokenizer = naming_allocation_failures("reading " + vocab_path, [&] {
    return tokenizer::WordPieceTokenizer::from_vocab_file(vocab_path);
  });
  if (tokenizer.vocab().size() != weights.config.vocab_size) {
    throw FormatError(
        model_dir + "/vocab.txt: expected " + std::to_string(weights.config.vocab_size) +
        " tokens (config.json vocab_size), got " + std::to_string(tokenizer.vocab().size()));
  }
  std::string sparse_file;
  const SparseLayers sparse = naming_allocation_failures("preparing the block-sparse layers", [&] {
    return sparse_layers(weights, model_dir, options, sparse_file);
  });
  const std::string precision = precision_name(options.precision);
  if (options.precision == Precision::bf16 && !sparse.empty()) {
    throw Unsupported(precision + " precision with block-sparse weights (" +
                      (sparse_file.empty() ? std::string("pruned at load") : sparse_file) +
                      ") is not available: load the dense weights (--weights dense) for " +
                      precision + ", or use fp32 or int8");
  }
  if (options.precision == Precision::bf16 && !model::onednn_has_bf16_gemm()) {
    throw Unsupported(
        "bf16 precision needs a CPU with AVX-512 (oneDNN's bf16 GEMM); this one has at best " +
        std::string(isa_name(detected_isa())) + ": use fp32 or int8");
  }
  try {
    return naming_allocation_failures("setting up the model's layers", [&] {
      return BertEncoder(std::make_unique<Impl>(std::move(weights), std::move(tokenizer), sparse,
                                                sparse_file, options.precision));
    });
  } catch (const dnnl::error& e) {
    rethrow_onednn_error(e, "setting up the model's layers");
  }
}

int64_t BertEncoder::hidden_size() const {
  return impl_->weights.config.hidden_size;
}
int64_t BertEncoder::num_layers() const {
  return impl_->weights.config.num_hidden_layers;
}
int64_t BertEncoder::intermediate_size() const {
  return impl_->weights.config.intermediate_size;
}
int64_t BertEncoder::max_positions() const {
  return impl_->weights.config.max_position_embeddings;
}
std::string BertEncoder::weight_sparsity() const {
  std::map<std::string, int> patterns;
  int linears = 0;
  for (const auto& layer : impl_->layers) {
    // QKV counts as its three layers.
    const std::pair<const AnyLinear*, int> parts[] = {{&layer->qkv, 3},
                                                      {&layer->attention_output, 1},
                                                      {&layer->intermediate, 1},
                                                      {&layer->output, 1}};
    for (const auto& [linear, count] : parts) {
      linears += count;
      if (linear->sparse())
        patterns[block_sparse_pattern_name(linear->sparse()->pattern())] += count;
    }
  }
  if (patterns.empty()) return "dense";
  std::string out;
  for (const auto& [name, count] : patterns) {
    if (!out.empty()) out += ", ";
    out += name + " (" + std::to_string(count) + "/" + std::to_string(linears) + " linears)";
  }
  return out;
}

Precision BertEncoder::precision() const {
  return impl_->precision;
}

const tokenizer::WordPieceTokenizer& BertEncoder::tokenizer() const {
  return impl_->tokenizer;
}

void BertEncoder::encode(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                         const EncodeOptions& options, EncodeProfile* profile) const {
  impl_->validate(texts, out, options);
  const std::string step = "encoding a batch of " + std::to_string(texts.size()) + " texts";
  try {
    naming_allocation_failures(step, [&] { impl_->forward(texts, out, options, profile); });
  } catch (const dnnl::error& e) {
    rethrow_onednn_error(e, step);
  }
}

void BertEncoder::calibrate_int8(std::span<const std::vector<int32_t>> texts,
                                 const EncodeOptions& options) {
  if (impl_->precision != Precision::int8) {
    throw InvalidArgument(std::string("calibrate_int8: expected a model loaded at int8 precision, "
                                      "this one is ") +
                          precision_name(impl_->precision));
  }
  if (texts.empty()) throw InvalidArgument("calibrate_int8: expected at least one text, got none");
  const int64_t hidden = impl_->weights.config.hidden_size;
  std::vector<float> out(texts.size() * static_cast<size_t>(hidden));
  impl_->validate(texts, out, options);
  std::vector<AnyLinear*> linears;
  for (const auto& layer : impl_->layers) {
    for (AnyLinear* linear :
         {&layer->qkv, &layer->attention_output, &layer->intermediate, &layer->output}) {
      linears.push_back(linear);
      linear->int8()->set_dynamic();  // calibrate on the per-token model, not a previous one
    }
  }
  // Finite values only: a NaN row stays NaN at inference whatever the scale.
  std::map<const AnyLinear*, std::pair<float, float>> ranges;
  const Impl::InputObserver observe = [&](const AnyLinear& linear, const float* x, int64_t rows,
                                          int64_t cols) {
    auto& [lo, hi] = ranges
                         .try_emplace(&linear, std::numeric_limits<float>::infinity(),
                                      -std::numeric_limits<float>::infinity())
                         .first->second;
    for (int64_t i = 0; i < rows * cols; ++i) {
      if (std::isfinite(x[i])) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
      }
    }
  };
  constexpr size_t kBatch = 64;  // bounds the activations' memory
  const std::string step =
      "calibrating the int8 layers on " + std::to_string(texts.size()) + " texts";
  try {
    naming_allocation_failures(step, [&] {
      for (size_t first = 0; first < texts.size(); first += kBatch) {
        const size_t count = std::min(kBatch, texts.size() - first);
        impl_->forward(texts.subspan(first, count),
                       std::span<float>(out).subspan(first * hidden, count * hidden), options,
                       nullptr, &observe);
      }
    });
  } catch (const dnnl::error& e) {
    rethrow_onednn_error(e, step);
  }
  for (AnyLinear* linear : linears) {
    const auto& [lo, hi] = ranges.at(linear);
    linear->int8()->set_static_range(lo, hi);
  }
}

bool BertEncoder::int8_calibrated() const {
  return !impl_->layers.empty() && impl_->layers.front()->qkv.int8() &&
         impl_->layers.front()->qkv.int8()->is_static();
}

void BertEncoder::Impl::forward(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                                const EncodeOptions& options, EncodeProfile* profile,
                                const InputObserver* observe) const {
  const Impl& m = *this;
  const model::BertConfig& c = m.weights.config;
  const int64_t hidden = c.hidden_size;
  int64_t tokens = 0;
  for (const std::vector<int32_t>& text : texts) tokens += static_cast<int64_t>(text.size());

  ThreadCountScope thread_count(options.threads);
  Stopwatch stopwatch(profile);
  dnnl::stream stream(m.engine);
  const auto activations = [&](int64_t width, const char* what) {
    const auto count = static_cast<size_t>(tokens * width);
    return naming_allocation_failures(std::string("allocating the ") + what + " of " +
                                          std::to_string(tokens) + " tokens (" +
                                          megabytes(count * sizeof(float)) + ")",
                                      [&] { return std::vector<float>(count); });
  };
  std::vector<float> x = activations(hidden, "hidden states");
  std::vector<float> qkv = activations(3 * hidden, "queries, keys and values");
  std::vector<float> context = activations(hidden, "attention outputs");
  std::vector<float> intermediate = activations(c.intermediate_size, "feed-forward activations");
  const bool bf16_attention = options.attention_dtype == DType::bf16;
  const size_t qkv_bf16_cells = bf16_attention ? static_cast<size_t>(tokens * 3 * hidden) : 0;
  std::vector<uint16_t> qkv_bf16 = naming_allocation_failures(
      "allocating the bf16 queries, keys and values of " + std::to_string(tokens) + " tokens (" +
          megabytes(qkv_bf16_cells * sizeof(uint16_t)) + ")",
      [&] { return std::vector<uint16_t>(qkv_bf16_cells); });
  const kernels::QuantizeKernels& rounding = kernels::quantize_kernels(resolve_isa(options.isa));

  m.embed_tokens(texts, x.data());
  stopwatch.lap(&EncodeProfile::embeddings_s);
  m.embeddings_norm.run(stream, x.data(), tokens);
  stopwatch.lap(&EncodeProfile::norm_s);

  AttentionOptions attention_options;
  attention_options.threads = options.threads;
  attention_options.isa = options.isa;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerOps& layer = *m.layers[l];
    attention_options.pattern =
        options.attention.empty() ? SparsityPattern{} : options.attention[l];

    const auto observed = [&](const AnyLinear& linear, const float* input, int64_t width) {
      if (observe) (*observe)(linear, input, tokens, width);
    };
    observed(layer.qkv, x.data(), hidden);
    layer.qkv.run(stream, x.data(), tokens, qkv.data(), options.threads, options.isa);
    stopwatch.lap(&EncodeProfile::linear_s);
    naming_allocation_failures(
        "running " + layer_name(l) + "attention on " + std::to_string(tokens) + " tokens", [&] {
          if (!bf16_attention)
            return m.attend(texts, qkv.data(), DType::f32, context.data(), attention_options);
        // One token's row per call: the same bits for any thread count.
#pragma omp parallel for schedule(static)
          for (int64_t t = 0; t < tokens; ++t) {
            rounding.round_row_to_bf16(
                {qkv.data() + t * 3 * hidden, 3 * hidden, qkv_bf16.data() + t * 3 * hidden});
          }
          m.attend(texts, qkv_bf16.data(), DType::bf16, context.data(), attention_options);
        });
    stopwatch.lap(&EncodeProfile::attention_s);
    observed(layer.attention_output, context.data(), hidden);
    layer.attention_output.run(stream, context.data(), tokens, x.data(), options.threads,
                               options.isa);  // x += ...
    stopwatch.lap(&EncodeProfile::linear_s);
    layer.attention_norm.run(stream, x.data(), tokens);
    stopwatch.lap(&EncodeProfile::norm_s);
    observed(layer.intermediate, x.data(), hidden);
    layer.intermediate.run(stream, x.data(), tokens, intermediate.data(), options.threads,
                           options.isa);
    observed(layer.output, intermediate.data(), c.intermediate_size);
    layer.output.run(stream, intermediate.data(), tokens, x.data(), options.threads,
                     options.isa);  // x += ...
    stopwatch.lap(&EncodeProfile::linear_s);
    layer.output_norm.run(stream, x.data(), tokens);
    stopwatch.lap(&EncodeProfile::norm_s);
  }

  int64_t row = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const int64_t length = static_cast<int64_t>(texts[i].size());
    model::mean_pool_normalize(x.data() + row * hidden, length, hidden, out.data() + i * hidden);
    row += length;
  }
  stopwatch.lap(&EncodeProfile::norm_s);
}

}  // namespace dfss
