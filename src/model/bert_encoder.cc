#include <omp.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <utility>
#include <vector>

#include "dfss/bert.h"
#include "dfss/errors.h"
#include "model/bert_weights.h"
#include "model/layer_norm.h"
#include "model/linear.h"
#include "model/pooling.h"

namespace dfss {
namespace {

using model::LayerNorm;
using model::Linear;
using model::LinearEpilogue;

std::vector<float> concat(std::initializer_list<std::span<const float>> parts) {
  std::vector<float> out;
  for (std::span<const float> part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// The oneDNN primitives of one encoder layer. Q, K and V share one [3·hidden, hidden]
// matrix, so a token's projections come out side by side: q | k | v.
struct LayerOps {
  LayerOps(const dnnl::engine& engine, const model::BertLayerWeights& w, int64_t hidden,
           int64_t intermediate_size, double eps)
      : qkv_weight(concat({w.query.weight, w.key.weight, w.value.weight})),
        qkv_bias(concat({w.query.bias, w.key.bias, w.value.bias})),
        qkv(engine, qkv_weight, qkv_bias, 3 * hidden, hidden, LinearEpilogue::none),
        attention_output(engine, w.attention_output.weight, w.attention_output.bias, hidden, hidden,
                         LinearEpilogue::add_residual),
        intermediate(engine, w.intermediate.weight, w.intermediate.bias, intermediate_size, hidden,
                     LinearEpilogue::gelu_erf),
        output(engine, w.output.weight, w.output.bias, hidden, intermediate_size,
               LinearEpilogue::add_residual),
        attention_norm(engine, w.attention_norm, hidden, eps),
        output_norm(engine, w.output_norm, hidden, eps) {}

  std::vector<float> qkv_weight, qkv_bias;
  Linear qkv, attention_output, intermediate, output;
  LayerNorm attention_norm, output_norm;
};

// Sets OpenMP's thread count for the calling thread's parallel regions (oneDNN's included)
// and restores it on exit.
class ThreadCountScope {
 public:
  explicit ThreadCountScope(int threads) : saved_(omp_get_max_threads()), active_(threads > 0) {
    if (active_) omp_set_num_threads(threads);
  }
  ~ThreadCountScope() {
    if (active_) omp_set_num_threads(saved_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int saved_;
  bool active_;
};

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

// oneDNN reports failures with its own exception type; callers of dfss get dfss's.
[[noreturn]] void rethrow_onednn_error(const dnnl::error& e, const char* step) {
  if (e.status == dnnl_out_of_memory) throw std::bad_alloc();
  throw Error(std::string("BertEncoder::") + step + ": oneDNN failed: " + e.what());
}

}  // namespace

struct BertEncoder::Impl {
  Impl(model::BertWeights weights_in, tokenizer::WordPieceTokenizer tokenizer_in)
      : weights(std::move(weights_in)),
        tokenizer(std::move(tokenizer_in)),
        engine(dnnl::engine::kind::cpu, 0),
        embeddings_norm(engine, weights.embeddings_norm, weights.config.hidden_size,
                        weights.config.layer_norm_eps) {
    const model::BertConfig& c = weights.config;
    for (const model::BertLayerWeights& layer : weights.layers) {
      layers.push_back(std::make_unique<LayerOps>(engine, layer, c.hidden_size, c.intermediate_size,
                                                  c.layer_norm_eps));
    }
  }

  void validate(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                const EncodeOptions& options) const;
  // The whole encoder, after validate().
  void forward(std::span<const std::vector<int32_t>> texts, std::span<float> out,
               const EncodeOptions& options, EncodeProfile* profile) const;
  void embed_tokens(std::span<const std::vector<int32_t>> texts, float* x) const;
  void attend(std::span<const std::vector<int32_t>> texts, const float* qkv, float* context,
              const AttentionOptions& options) const;

  model::BertWeights weights;
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

void BertEncoder::Impl::attend(std::span<const std::vector<int32_t>> texts, const float* qkv,
                               float* context, const AttentionOptions& options) const {
  const model::BertConfig& c = weights.config;
  const int64_t hidden = c.hidden_size, heads = c.num_attention_heads, d = c.head_dim();
  int64_t row = 0;
  for (const std::vector<int32_t>& text : texts) {
    const int64_t length = static_cast<int64_t>(text.size());
    // Head h of token t is at columns h*d .. h*d+d of its q (k, v) slice.
    const auto slice = [&](int64_t offset) {
      return ConstTensorView{qkv + row * 3 * hidden + offset,
                             DType::f32,
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

BertEncoder BertEncoder::load(const std::string& model_dir) {
  model::BertWeights weights = model::load_bert_model(model_dir);
  auto tokenizer = tokenizer::WordPieceTokenizer::from_vocab_file(
      (std::filesystem::path(model_dir) / "vocab.txt").string());
  if (tokenizer.vocab().size() != weights.config.vocab_size) {
    throw FormatError(
        model_dir + "/vocab.txt: expected " + std::to_string(weights.config.vocab_size) +
        " tokens (config.json vocab_size), got " + std::to_string(tokenizer.vocab().size()));
  }
  try {
    return BertEncoder(std::make_unique<Impl>(std::move(weights), std::move(tokenizer)));
  } catch (const dnnl::error& e) {
    rethrow_onednn_error(e, "load");
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
const tokenizer::WordPieceTokenizer& BertEncoder::tokenizer() const {
  return impl_->tokenizer;
}

void BertEncoder::encode(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                         const EncodeOptions& options, EncodeProfile* profile) const {
  impl_->validate(texts, out, options);
  try {
    impl_->forward(texts, out, options, profile);
  } catch (const dnnl::error& e) {
    rethrow_onednn_error(e, "encode");
  }
}

void BertEncoder::Impl::forward(std::span<const std::vector<int32_t>> texts, std::span<float> out,
                                const EncodeOptions& options, EncodeProfile* profile) const {
  const Impl& m = *this;
  const model::BertConfig& c = m.weights.config;
  const int64_t hidden = c.hidden_size;
  int64_t tokens = 0;
  for (const std::vector<int32_t>& text : texts) tokens += static_cast<int64_t>(text.size());

  ThreadCountScope thread_count(options.threads);
  Stopwatch stopwatch(profile);
  dnnl::stream stream(m.engine);
  std::vector<float> x(static_cast<size_t>(tokens * hidden));
  std::vector<float> qkv(static_cast<size_t>(tokens * 3 * hidden));
  std::vector<float> context(static_cast<size_t>(tokens * hidden));
  std::vector<float> intermediate(static_cast<size_t>(tokens * c.intermediate_size));

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

    layer.qkv.run(stream, x.data(), tokens, qkv.data());
    stopwatch.lap(&EncodeProfile::linear_s);
    m.attend(texts, qkv.data(), context.data(), attention_options);
    stopwatch.lap(&EncodeProfile::attention_s);
    layer.attention_output.run(stream, context.data(), tokens, x.data());  // x += ...
    stopwatch.lap(&EncodeProfile::linear_s);
    layer.attention_norm.run(stream, x.data(), tokens);
    stopwatch.lap(&EncodeProfile::norm_s);
    layer.intermediate.run(stream, x.data(), tokens, intermediate.data());
    layer.output.run(stream, intermediate.data(), tokens, x.data());  // x += ...
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
