// The BERT encoder: against a plain double-precision forward written here (random tiny
// model, dense and N:M attention), determinism, batching, errors; and the real
// all-MiniLM-L6-v2 against embeddings PyTorch computed (skipped without the model).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dfss/bert.h"
#include "dfss/errors.h"
#include "io/npy.h"
#include "model/linear.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::message_of;
using test::TinyBert;

const std::filesystem::path kRepo = std::filesystem::path(__FILE__).parent_path().parent_path();

using Matrix = std::vector<double>;  // row-major [rows, cols]

// y = x Wᵀ + b for nn.Linear weights W [out, in].
Matrix linear(const Matrix& x, int64_t rows, const std::vector<float>& w,
              const std::vector<float>& b, int64_t out, int64_t in) {
  Matrix y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = b[o];
      for (int64_t i = 0; i < in; ++i) sum += x[r * in + i] * w[o * in + i];
      y[r * out + o] = sum;
    }
  }
  return y;
}

void layer_norm(Matrix& x, int64_t rows, int64_t width, const std::vector<float>& gamma,
                const std::vector<float>& beta) {
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < width; ++i) mean += x[r * width + i] / width;
    for (int64_t i = 0; i < width; ++i) var += std::pow(x[r * width + i] - mean, 2) / width;
    for (int64_t i = 0; i < width; ++i) {
      x[r * width + i] = (x[r * width + i] - mean) / std::sqrt(var + 1e-12) * gamma[i] + beta[i];
    }
  }
}

// BertModel + mean pooling + L2 norm for one text, in double; attention through the
// reference implementation (the oracle of the attention tests) with `patterns[layer]`.
// bf16_qkv: Q, K and V rounded to bf16 before attention, as EncodeOptions::attention_dtype.
std::vector<double> plain_embedding(const TinyBert& model, const std::vector<int32_t>& ids,
                                    const std::vector<SparsityPattern>& patterns,
                                    bool bf16_qkv = false) {
  const int64_t h = model.shape().hidden, f = model.shape().intermediate;
  const int64_t heads = model.shape().heads, d = h / heads;
  const int64_t n = static_cast<int64_t>(ids.size());
  const auto& t = [&](const std::string& name) -> const std::vector<float>& {
    return model.tensor(name);
  };
  Matrix x(static_cast<size_t>(n * h));
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t i = 0; i < h; ++i) {
      x[p * h + i] = double{t("embeddings.word_embeddings.weight")[ids[p] * h + i]} +
                     t("embeddings.position_embeddings.weight")[p * h + i] +
                     t("embeddings.token_type_embeddings.weight")[i];
    }
  }
  layer_norm(x, n, h, t("embeddings.LayerNorm.weight"), t("embeddings.LayerNorm.bias"));
  for (int64_t l = 0; l < model.shape().layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    const auto proj = [&](const std::string& name, const Matrix& in, int64_t out, int64_t width) {
      return linear(in, n, t(p + name + ".weight"), t(p + name + ".bias"), out, width);
    };
    // [n, h] -> [1, heads, n, d] float for dfss::attention.
    const auto heads_view = [&](const Matrix& m) {
      std::vector<float> out(static_cast<size_t>(n * h));
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t hh = 0; hh < heads; ++hh) {
          for (int64_t i = 0; i < d; ++i)
            out[(hh * n + r) * d + i] = static_cast<float>(m[r * h + hh * d + i]);
        }
      }
      if (bf16_qkv) {
        for (float& value : out) value = bf16_to_float(float_to_bf16(value));
      }
      return out;
    };
    const std::vector<float> q = heads_view(proj("attention.self.query", x, h, h));
    const std::vector<float> k = heads_view(proj("attention.self.key", x, h, h));
    const std::vector<float> v = heads_view(proj("attention.self.value", x, h, h));
    std::vector<float> context(q.size());
    AttentionOptions options;
    options.impl = AttentionImpl::reference;
    options.pattern = patterns.empty() ? SparsityPattern{} : patterns[l];
    attention(const_view(q.data(), {1, heads, n, d}), const_view(k.data(), {1, heads, n, d}),
              const_view(v.data(), {1, heads, n, d}),
              mutable_view(context.data(), {1, heads, n, d}), options);
    Matrix ctx(static_cast<size_t>(n * h));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t hh = 0; hh < heads; ++hh) {
        for (int64_t i = 0; i < d; ++i) ctx[r * h + hh * d + i] = context[(hh * n + r) * d + i];
      }
    }
    const Matrix attended = proj("attention.output.dense", ctx, h, h);
    for (size_t i = 0; i < x.size(); ++i) x[i] += attended[i];
    layer_norm(x, n, h, t(p + "attention.output.LayerNorm.weight"),
               t(p + "attention.output.LayerNorm.bias"));
    Matrix hidden = proj("intermediate.dense", x, f, h);
    for (double& value : hidden) value = 0.5 * value * (1.0 + std::erf(value / std::sqrt(2.0)));
    const Matrix out = proj("output.dense", hidden, h, f);
    for (size_t i = 0; i < x.size(); ++i) x[i] += out[i];
    layer_norm(x, n, h, t(p + "output.LayerNorm.weight"), t(p + "output.LayerNorm.bias"));
  }
  std::vector<double> pooled(static_cast<size_t>(h), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < h; ++i) pooled[i] += x[r * h + i] / n;
  }
  double norm = 0;
  for (double value : pooled) norm += value * value;
  for (double& value : pooled) value /= std::sqrt(norm);
  return pooled;
}

// Texts of the tiny vocabulary (ids 5..21) of lengths 1 to the model's 40 positions.
std::vector<std::vector<int32_t>> tiny_texts(const TinyBert& model) {
  std::vector<std::vector<int32_t>> texts;
  for (int64_t length : {1, 2, 3, 5, 9, 17, 31, 40}) {
    std::vector<int32_t> ids = {2};
    for (int64_t i = 1; i < length; ++i)
      ids.push_back(static_cast<int32_t>(5 + (i * 7 + length) % (model.vocab_size() - 5)));
    texts.push_back(ids);
  }
  return texts;
}

std::vector<float> encode(const BertEncoder& encoder,
                          const std::vector<std::vector<int32_t>>& texts,
                          const EncodeOptions& options = {}) {
  std::vector<float> out(texts.size() * static_cast<size_t>(encoder.hidden_size()));
  encoder.encode(texts, out, options);
  return out;
}

// How close `got` (embeddings of `texts`, one row per text) is to the plain double forward
// (with bf16-rounded Q, K and V if `bf16_qkv`): the worst per-text cosine, and the largest
// element change from `fp32` (the same texts through the fp32 runtime; empty: not measured).
struct Closeness {
  double worst_cosine = 1;
  double largest_change = 0;
};
Closeness closeness_to_plain(const TinyBert& model, const std::vector<std::vector<int32_t>>& texts,
                             const std::vector<float>& got, const std::vector<float>& fp32,
                             const std::vector<SparsityPattern>& patterns, bool bf16_qkv = false) {
  Closeness result;
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::vector<double> want = plain_embedding(model, texts[t], patterns, bf16_qkv);
    double dot = 0, norm_got = 0, norm_want = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double g = got[t * want.size() + i];
      dot += g * want[i];
      norm_got += g * g;
      norm_want += want[i] * want[i];
      if (!fp32.empty()) {
        result.largest_change =
            std::max(result.largest_change, std::abs(g - fp32[t * want.size() + i]));
      }
    }
    result.worst_cosine = std::min(result.worst_cosine, dot / std::sqrt(norm_got * norm_want));
  }
  return result;
}

TEST(LayerPatterns, OneForAllOrOnePerLayer) {
  const auto all = parse_layer_patterns("2:4", 3, "--attention");
  ASSERT_EQ(all.size(), 3u);
  for (const SparsityPattern& p : all) EXPECT_EQ(p.to_string(), "2:4");
  const auto mixed = parse_layer_patterns("dense,1:2,2:4", 3, "--attention");
  EXPECT_EQ(layer_patterns_string(mixed), "dense,1:2,2:4");
  EXPECT_EQ(layer_patterns_string(all), "2:4");
  EXPECT_EQ(layer_patterns_string({}), "dense");
}

TEST(LayerPatterns, ErrorsNameTheArgumentAndEntry) {
  EXPECT_EQ(
      message_of<InvalidArgument>([] { parse_layer_patterns("2:4,dense", 6, "--attention"); }),
      "--attention: expected one pattern for all layers or a list of 6 (one per layer), "
      "got 2 entries in '2:4,dense'");
  const std::string bad =
      message_of<InvalidArgument>([] { parse_layer_patterns("dense,4:2", 2, "--attention"); });
  EXPECT_TRUE(test::starts_with(bad, "--attention (entry 2)")) << bad;
  EXPECT_NE(bad.find("4:2"), std::string::npos) << bad;
  EXPECT_THROW(parse_layer_patterns("dense,,2:4", 3, "--attention"), InvalidArgument);
  EXPECT_THROW(parse_layer_patterns("", 3, "--attention"), InvalidArgument);
}

class TinyEncoder : public ::testing::Test {
 protected:
  TinyBert model;
  BertEncoder encoder = BertEncoder::load(model.dir());
};

TEST_F(TinyEncoder, MatchesPlainForwardForEveryAttention) {
  const auto texts = tiny_texts(model);
  const std::vector<std::string> configs = {"dense", "2:4", "1:2", "1:4", "dense,2:4"};
  for (const std::string& config : configs) {
    EncodeOptions options;
    options.attention = parse_layer_patterns(config, encoder.num_layers(), "attention");
    const std::vector<float> got = encode(encoder, texts, options);
    for (size_t t = 0; t < texts.size(); ++t) {
      const std::vector<double> want = plain_embedding(model, texts[t], options.attention);
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[t * want.size() + i], want[i], 2e-5)
            << config << ", text " << t << " (" << texts[t].size() << " tokens), element " << i;
      }
    }
  }
}

// int8 linear layers (7-bit weights per row, u8 activations per token): close to the plain
// double forward, yet not the fp32 path in disguise, and the same bits for any thread count.
TEST_F(TinyEncoder, Int8StaysCloseToThePlainForward) {
  LoadOptions int8;
  int8.precision = Precision::int8;
  const BertEncoder quantized = BertEncoder::load(model.dir(), int8);
  EXPECT_EQ(quantized.precision(), Precision::int8);
  EXPECT_EQ(encoder.precision(), Precision::fp32);
  const auto texts = tiny_texts(model);
  for (const std::string config : {"dense", "2:4"}) {
    EncodeOptions options;
    options.attention = parse_layer_patterns(config, encoder.num_layers(), "attention");
    options.threads = 1;
    const std::vector<float> got = encode(quantized, texts, options);
    const std::vector<float> fp32 = encode(encoder, texts, options);
    const Closeness close = closeness_to_plain(model, texts, got, fp32, options.attention);
    EXPECT_GT(close.worst_cosine, 0.995) << config;
    EXPECT_GT(close.largest_change, 1e-4) << config << ": int8 gave the fp32 embeddings";
    options.threads = 2;
    EXPECT_EQ(encode(quantized, texts, options), got) << config;
  }
}

TEST_F(TinyEncoder, Int8StaticScalesFromCalibration) {
  LoadOptions int8;
  int8.precision = Precision::int8;
  BertEncoder quantized = BertEncoder::load(model.dir(), int8);
  const auto texts = tiny_texts(model);
  EncodeOptions options;
  options.threads = 1;
  const std::vector<float> dynamic = encode(quantized, texts, options);
  EXPECT_FALSE(quantized.int8_calibrated());
  quantized.calibrate_int8(texts, options);
  EXPECT_TRUE(quantized.int8_calibrated());
  const std::vector<float> got = encode(quantized, texts, options);
  EXPECT_NE(got, dynamic) << "calibration changed nothing";
  EXPECT_GT(closeness_to_plain(model, texts, got, {}, options.attention).worst_cosine, 0.99);
  options.threads = 2;
  EXPECT_EQ(encode(quantized, texts, options), got);
  // Recalibrating on the same texts, with another thread count, gives the same scales.
  quantized.calibrate_int8(texts, options);
  options.threads = 1;
  EXPECT_EQ(encode(quantized, texts, options), got);

  try {
    quantized.calibrate_int8({}, options);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "calibrate_int8: expected at least one text, got none");
  }
  try {
    BertEncoder fp32 = BertEncoder::load(model.dir());
    fp32.calibrate_int8(texts, options);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("expected a model loaded at int8 precision"),
              std::string::npos)
        << e.what();
  }
}

// int8 with block-sparse weights (pruned at load) runs the int8 block-sparse kernels: close to
// the fp32 block-sparse model, not it in disguise, not the dense int8 model, and the same bits
// for any thread count. bf16 has no block-sparse layers and says so.
TEST_F(TinyEncoder, Int8RunsBlockSparseWeights) {
  LoadOptions fp32_sparse;
  fp32_sparse.prune_weights = parse_block_sparse_pattern("2:4x16", "weights");
  LoadOptions int8_sparse = fp32_sparse, int8_dense;
  int8_sparse.precision = int8_dense.precision = Precision::int8;
  const BertEncoder reference = BertEncoder::load(model.dir(), fp32_sparse);
  const BertEncoder quantized = BertEncoder::load(model.dir(), int8_sparse);
  const BertEncoder quantized_dense = BertEncoder::load(model.dir(), int8_dense);
  const auto texts = tiny_texts(model);
  EncodeOptions options;
  options.threads = 1;
  const std::vector<float> got = encode(quantized, texts, options);
  const std::vector<float> want = encode(reference, texts, options);
  const std::vector<float> dense = encode(quantized_dense, texts, options);
  const size_t h = static_cast<size_t>(encoder.hidden_size());
  double worst_cosine = 1.0, change = 0.0, from_dense = 0.0;
  for (size_t t = 0; t < texts.size(); ++t) {
    double dot = 0, norm_got = 0, norm_want = 0;
    for (size_t i = t * h; i < (t + 1) * h; ++i) {
      dot += double{got[i]} * want[i];
      norm_got += double{got[i]} * got[i];
      norm_want += double{want[i]} * want[i];
      change = std::max(change, std::fabs(double{got[i]} - want[i]));
      from_dense = std::max(from_dense, std::fabs(double{got[i]} - dense[i]));
    }
    worst_cosine = std::min(worst_cosine, dot / std::sqrt(norm_got * norm_want));
  }
  EXPECT_GT(worst_cosine, 0.995);
  EXPECT_GT(change, 1e-4) << "int8 block-sparse gave the fp32 block-sparse embeddings";
  EXPECT_GT(from_dense, 1e-3) << "int8 block-sparse gave the dense int8 embeddings";
  options.threads = 2;
  EXPECT_EQ(encode(quantized, texts, options), got);

  LoadOptions bf16 = fp32_sparse;
  bf16.precision = Precision::bf16;
  try {
    BertEncoder::load(model.dir(), bf16);
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 precision with block-sparse weights"),
              std::string::npos)
        << e.what();
  }
}

TEST(Precision, Names) {
  EXPECT_EQ(parse_precision("int8", "--precision"), Precision::int8);
  EXPECT_EQ(parse_precision("fp32", "--precision"), Precision::fp32);
  EXPECT_EQ(parse_precision("bf16", "--precision"), Precision::bf16);
  try {
    parse_precision("fp16", "--precision");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "--precision: expected fp32, bf16 or int8, got 'fp16'");
  }
}

TEST_F(TinyEncoder, Bf16StaysCloseToThePlainForward) {
  LoadOptions bf16;
  bf16.precision = Precision::bf16;
  if (!model::onednn_has_bf16_gemm()) {
    try {
      BertEncoder::load(model.dir(), bf16);
      FAIL() << "expected Unsupported on a CPU without AVX-512";
    } catch (const Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find("bf16 precision needs a CPU with AVX-512"),
                std::string::npos)
          << e.what();
    }
    GTEST_SKIP() << "oneDNN has no bf16 GEMM on this CPU (checked that load() says so)";
  }
  const BertEncoder rounded = BertEncoder::load(model.dir(), bf16);
  EXPECT_EQ(rounded.precision(), Precision::bf16);
  const auto texts = tiny_texts(model);
  for (const std::string config : {"dense", "2:4"}) {
    EncodeOptions options;
    options.attention = parse_layer_patterns(config, encoder.num_layers(), "attention");
    options.threads = 1;
    const std::vector<float> got = encode(rounded, texts, options);
    const std::vector<float> fp32 = encode(encoder, texts, options);
    const Closeness close = closeness_to_plain(model, texts, got, fp32, options.attention);
    // bf16 keeps 8 significant bits (int8 above: about 7): as close as int8 or closer.
    EXPECT_GT(close.worst_cosine, 0.995) << config;
    EXPECT_GT(close.largest_change, 1e-4) << config << ": bf16 gave the fp32 embeddings";
    options.threads = 2;
    EXPECT_EQ(encode(rounded, texts, options), got) << config;
  }
}

TEST_F(TinyEncoder, Bf16AttentionMatchesThePlainForwardOnRoundedInputs) {
  const auto texts = tiny_texts(model);
  for (const std::string config : {"dense", "2:4"}) {
    EncodeOptions options;
    options.attention = parse_layer_patterns(config, encoder.num_layers(), "attention");
    options.threads = 1;
    const std::vector<float> fp32 = encode(encoder, texts, options);
    options.attention_dtype = DType::bf16;
    const std::vector<float> got = encode(encoder, texts, options);
    const Closeness close = closeness_to_plain(model, texts, got, fp32, options.attention, true);
    EXPECT_GT(close.worst_cosine, 0.99999) << config;
    EXPECT_GT(close.largest_change, 1e-6) << config << ": bf16 attention gave the fp32 embeddings";
    for (int threads : {2, 3}) {
      options.threads = threads;
      EXPECT_EQ(encode(encoder, texts, options), got) << config << ", " << threads << " threads";
    }
  }
  EncodeOptions bad;
  bad.attention_dtype = static_cast<DType>(7);
  std::vector<float> out(static_cast<size_t>(encoder.hidden_size()));
  try {
    encoder.encode(std::vector<std::vector<int32_t>>{{2, 5}}, out, bad);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("options.attention_dtype"), std::string::npos) << e.what();
  }
}

TEST_F(TinyEncoder, Bf16RefusesBlockSparseWeights) {
  LoadOptions options;
  options.precision = Precision::bf16;
  options.prune_weights = parse_block_sparse_pattern("2:4x16", "weights");
  try {
    BertEncoder::load(model.dir(), options);
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("bf16 precision with block-sparse weights"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(TinyEncoder, SparseAttentionChangesLongTexts) {
  // Guards the comparison above against a pattern that is silently ignored.
  const auto texts = tiny_texts(model);
  EncodeOptions sparse;
  sparse.attention = parse_layer_patterns("1:4", encoder.num_layers(), "attention");
  const std::vector<float> dense = encode(encoder, texts), pruned = encode(encoder, texts, sparse);
  const size_t h = static_cast<size_t>(encoder.hidden_size());
  double difference = 0;
  for (size_t i = (texts.size() - 1) * h; i < texts.size() * h; ++i) {
    difference = std::max(difference, std::abs(double{dense[i]} - pruned[i]));
  }
  EXPECT_GT(difference, 1e-3);
}

TEST_F(TinyEncoder, BitIdenticalForAnyThreadCount) {
  const auto texts = tiny_texts(model);
  EncodeOptions one, two, three;
  one.threads = 1;
  two.threads = 2;
  three.threads = 3;
  for (EncodeOptions* options : {&one, &two, &three}) {
    options->attention = parse_layer_patterns("2:4", encoder.num_layers(), "attention");
  }
  const std::vector<float> expected = encode(encoder, texts, one);
  EXPECT_EQ(encode(encoder, texts, two), expected);
  EXPECT_EQ(encode(encoder, texts, three), expected);
}

TEST_F(TinyEncoder, BatchingDoesNotChangeATextsEmbedding) {
  const auto texts = tiny_texts(model);
  const std::vector<float> batched = encode(encoder, texts);
  const size_t h = static_cast<size_t>(encoder.hidden_size());
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::vector<float> alone = encode(encoder, {texts[t]});
    for (size_t i = 0; i < h; ++i) ASSERT_NEAR(alone[i], batched[t * h + i], 1e-6) << t;
  }
}

TEST_F(TinyEncoder, EmbeddingsAreUnitVectors) {
  const auto texts = tiny_texts(model);
  const std::vector<float> out = encode(encoder, texts);
  const size_t h = static_cast<size_t>(encoder.hidden_size());
  for (size_t t = 0; t < texts.size(); ++t) {
    double norm = 0;
    for (size_t i = 0; i < h; ++i) norm += double{out[t * h + i]} * out[t * h + i];
    EXPECT_NEAR(norm, 1.0, 1e-5) << t;
  }
}

TEST_F(TinyEncoder, EmptyBatchWritesNothing) {
  std::vector<float> out;
  encoder.encode({}, out);
  SUCCEED();
}

TEST_F(TinyEncoder, BadInputsNameWhatIsWrong) {
  std::vector<float> out(2 * 32);
  const auto encode_texts = [&](const std::vector<std::vector<int32_t>>& texts,
                                std::vector<float>& where) { encoder.encode(texts, where); };
  const std::vector<std::vector<int32_t>> ok = {{2, 5, 3}, {2, 6, 3}};
  EXPECT_EQ(message_of<InvalidArgument>([&] {
              std::vector<float> small(10);
              encoder.encode(ok, small);
            }),
            "out: expected 64 floats (2 texts x 32), got 10");
  EXPECT_EQ(message_of<InvalidArgument>([&] {
              encode_texts({{2, 5}, {}}, out);
            }),
            "texts[1]: expected at least one token, got none");
  EXPECT_EQ(message_of<InvalidArgument>([&] {
              encode_texts({{2, 5}, {2, 22}}, out);
            }),
            "texts[1]: token id 22 is outside the vocabulary [0, 22)");
  EXPECT_EQ(message_of<InvalidArgument>([&] {
              encode_texts({{-1}, {2}}, out);
            }),
            "texts[0]: token id -1 is outside the vocabulary [0, 22)");
  EXPECT_EQ(message_of<InvalidArgument>([&] {
              encode_texts({std::vector<int32_t>(41, 5), {2}}, out);
            }),
            "texts[0]: expected at most 40 tokens (the model's positions), got 41");
  EncodeOptions three_layers;
  three_layers.attention.resize(3);
  EXPECT_EQ(message_of<InvalidArgument>([&] { encoder.encode(ok, out, three_layers); }),
            "options.attention: expected 0 or 2 patterns (one per layer), got 3");
}

TEST(BertEncoderLoad, VocabularyMustMatchTheConfig) {
  TinyBert model;
  test::write_file(model.dir() + "/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  const std::string message = message_of<FormatError>([&] { BertEncoder::load(model.dir()); });
  EXPECT_NE(message.find("vocab.txt: expected 22 tokens (config.json vocab_size), got 5"),
            std::string::npos)
      << message;
}

// --- the real model ------------------------------------------------------------------

TEST(MiniLM, MatchesPyTorchSentenceTransformers) {
  // tests/data/minilm/reference.npy: scripts/reference-embed.py (PyTorch,
  // sentence-transformers) on sentences.txt, max_len 256.
  const std::string model_dir = (kRepo / "models/all-MiniLM-L6-v2").string();
  if (!std::filesystem::exists(model_dir + "/model.safetensors")) {
    GTEST_SKIP() << "no " << model_dir << " (scripts/fetch-model.sh puts it there)";
  }
  const BertEncoder encoder = BertEncoder::load(model_dir);
  std::ifstream in(kRepo / "tests/data/minilm/sentences.txt");
  std::vector<std::vector<int32_t>> texts;
  for (std::string line; std::getline(in, line);) {
    texts.push_back(encoder.tokenizer().encode(line, 256));
  }
  const io::NpyArray reference = io::read_npy((kRepo / "tests/data/minilm/reference.npy").string());
  ASSERT_EQ(reference.shape, (std::vector<int64_t>{static_cast<int64_t>(texts.size()), 384}));
  const std::vector<float> got = encode(encoder, texts);
  for (size_t t = 0; t < texts.size(); ++t) {
    double dot = 0;
    for (size_t i = 0; i < 384; ++i) dot += double{got[t * 384 + i]} * reference.f32[t * 384 + i];
    EXPECT_GE(dot, 0.99999) << "sentence " << t + 1;
    for (size_t i = 0; i < 384; ++i) {
      ASSERT_NEAR(got[t * 384 + i], reference.f32[t * 384 + i], 1e-5) << "sentence " << t + 1;
    }
  }
}

}  // namespace
}  // namespace dfss
