// Block-sparse linear layers in the BERT encoder: a model folder's
// dfss_block_sparse.safetensors (read, checked against model.safetensors, run on the
// block-sparse kernels) and pruning at load, against the dense runtime on the same pruned
// weights; malformed files refused with the file and entry named; the CLI's --weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "dfss/bert.h"
#include "dfss/errors.h"
#include "dfss/sparse_linear.h"
#include "model/block_sparse_weights.h"
#include "model/linear.h"
#include "safetensors_image.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::CliResult;
using test::run_cli;
using test::TinyBert;

constexpr const char* kLinears[] = {"attention.self.query", "attention.self.key",
                                    "attention.self.value", "attention.output.dense",
                                    "intermediate.dense",   "output.dense"};

struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// A safetensors image of `tensors` with `metadata`.
std::string safetensors_image(const std::map<std::string, Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    const size_t begin = data.size();
    data += tensor.bytes;
    header[name] = {
        {"dtype", tensor.dtype}, {"shape", tensor.shape}, {"data_offsets", {begin, data.size()}}};
  }
  return test::safetensors_image(header, data);
}

// The file's entries for one pruned layer.
void add_layer(std::map<std::string, Tensor>& tensors, std::map<std::string, std::string>& metadata,
               const std::string& name, const BlockSparseMatrix& w) {
  const BlockSparsePattern& p = w.pattern();
  const int64_t kept = w.kept_per_block();
  std::string offsets;
  for (size_t i = 0; i < w.columns().size(); ++i) {
    const int64_t group = static_cast<int64_t>(i % kept) / p.n;
    offsets += static_cast<char>(w.columns()[i] - group * p.m);
  }
  tensors[name + ".columns"] = {"U8", {w.blocks(), kept}, offsets};
  tensors[name + ".values"] = {"F32",
                               {w.blocks(), kept, p.block_rows},
                               std::string(reinterpret_cast<const char*>(w.values().data()),
                                           w.values().size() * sizeof(float))};
  metadata[name] = block_sparse_pattern_name(p);
}

// Prunes the linear layers of `model` (all of them, or those whose name contains `only`)
// in model.safetensors and writes the block-sparse file for them.
void prune_model(TinyBert& model, const BlockSparsePattern& pattern, const std::string& only = "") {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata = {{"format", model::kBlockSparseFormat}};
  const test::TinyBertShape& s = model.shape();
  for (int64_t l = 0; l < s.layers; ++l) {
    for (const char* part : kLinears) {
      const std::string name = "encoder.layer." + std::to_string(l) + "." + part;
      if (!only.empty() && name.find(only) == std::string::npos) continue;
      const std::vector<float>& weight = model.tensor(name + ".weight");
      const int64_t out = std::string(part) == "intermediate.dense" ? s.intermediate : s.hidden;
      const int64_t in = static_cast<int64_t>(weight.size()) / out;
      const BlockSparseMatrix w = BlockSparseMatrix::prune(weight, out, in, pattern);
      model.set_tensor(name + ".weight", w.to_dense());
      add_layer(tensors, metadata, name, w);
    }
  }
  test::write_file(model.dir() + "/" + model::kBlockSparseFileName,
                   safetensors_image(tensors, metadata));
}

std::vector<float> embed(const BertEncoder& encoder,
                         const std::vector<std::vector<int32_t>>& texts) {
  std::vector<float> out(texts.size() * static_cast<size_t>(encoder.hidden_size()));
  encoder.encode(texts, out);
  return out;
}

const std::vector<std::vector<int32_t>> kTexts = {
    {2, 5, 6, 7, 8, 5, 9, 15, 3}, {2, 10, 11, 12, 13, 3}, {2, 17, 18, 19, 20, 21, 6, 7, 3}};

void expect_close(const std::vector<float>& a, const std::vector<float>& b, double tolerance) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tolerance) << "element " << i;
}

TEST(BlockSparseModel, FileLayersMatchTheDenseRuntimeOnThePrunedWeights) {
  TinyBert model;
  const std::vector<float> unpruned = embed(BertEncoder::load(model.dir()), kTexts);
  prune_model(model, {2, 4, 16});
  const BertEncoder sparse = BertEncoder::load(model.dir());
  EXPECT_EQ(sparse.weight_sparsity(), "2:4x16 (12/12 linears)");
  LoadOptions dense_options;
  dense_options.dense_weights = true;
  const BertEncoder dense = BertEncoder::load(model.dir(), dense_options);
  EXPECT_EQ(dense.weight_sparsity(), "dense");
  const std::vector<float> got = embed(sparse, kTexts), want = embed(dense, kTexts);
  expect_close(got, want, 1e-5);
  // Pruning changed the model: the comparison above is not of two unpruned runs.
  double moved = 0;
  for (size_t i = 0; i < got.size(); ++i)
    moved = std::max(moved, double{std::fabs(got[i] - unpruned[i])});
  EXPECT_GT(moved, 1e-3);
}

TEST(BlockSparseModel, SomeLayersOnly) {
  TinyBert model;
  prune_model(model, {1, 4, 8}, "intermediate");
  const BertEncoder sparse = BertEncoder::load(model.dir());
  EXPECT_EQ(sparse.weight_sparsity(), "1:4x8 (2/12 linears)");
  LoadOptions dense_options;
  dense_options.dense_weights = true;
  expect_close(embed(sparse, kTexts), embed(BertEncoder::load(model.dir(), dense_options), kTexts),
               1e-5);
}

TEST(BlockSparseModel, PruningAtLoadEqualsAPrunedFolder) {
  TinyBert model;
  LoadOptions prune;
  prune.prune_weights = BlockSparsePattern{2, 8, 16};
  const BertEncoder at_load = BertEncoder::load(model.dir(), prune);
  EXPECT_EQ(at_load.weight_sparsity(), "2:8x16 (12/12 linears)");
  const std::vector<float> got = embed(at_load, kTexts);
  prune_model(model, {2, 8, 16});
  const std::vector<float> want = embed(BertEncoder::load(model.dir()), kTexts);
  // The same kernels on the same matrices (Q, K, V pruned apart or stacked: blocks of 16
  // never straddle them at hidden 32).
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
}

// Each malformed file is refused with the file and what is wrong named.
TEST(BlockSparseModel, RefusesMalformedFiles) {
  TinyBert model;
  const std::string path = model.dir() + "/" + model::kBlockSparseFileName;
  const std::string layer = "encoder.layer.0.intermediate.dense";
  const BlockSparseMatrix w =
      BlockSparseMatrix::prune(model.tensor(layer + ".weight"), 64, 32, {2, 4, 16});
  model.set_tensor(layer + ".weight", w.to_dense());

  auto refused = [&](const std::map<std::string, Tensor>& tensors,
                     const std::map<std::string, std::string>& metadata, const std::string& what) {
    test::write_file(path, safetensors_image(tensors, metadata));
    try {
      BertEncoder::load(model.dir());
      ADD_FAILURE() << "accepted a file with " << what;
    } catch (const FormatError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(model::kBlockSparseFileName), std::string::npos) << message;
      EXPECT_NE(message.find(what), std::string::npos) << message;
    }
  };
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata = {{"format", model::kBlockSparseFormat}};
  add_layer(tensors, metadata, layer, w);
  {  // the good file loads
    test::write_file(path, safetensors_image(tensors, metadata));
    EXPECT_EQ(BertEncoder::load(model.dir()).weight_sparsity(), "2:4x16 (1/12 linears)");
  }
  auto no_format = metadata;
  no_format.erase("format");
  refused(tensors, no_format, "format");
  auto unknown = metadata;
  unknown["encoder.layer.9.intermediate.dense"] = "2:4x16";
  refused(tensors, unknown, "not a linear layer of this model");
  auto stray = tensors;
  stray["encoder.layer.0.output.dense.values"] = tensors.at(layer + ".values");
  refused(stray, metadata, "encoder.layer.0.output.dense.values");
  auto bad_pattern = metadata;
  bad_pattern[layer] = "2:4x";
  refused(tensors, bad_pattern, "pattern");
  auto wrong_shape = metadata;
  wrong_shape[layer] = "1:4x16";  // kept 8, the file has 16
  refused(tensors, wrong_shape, "expected shape");
  auto wide_offset = tensors;
  wide_offset[layer + ".columns"].bytes[0] = 7;
  refused(wide_offset, metadata, "columns[0][0] = 7");
  auto wrong_dtype = tensors;
  wrong_dtype[layer + ".columns"] = {"I8", {4, 16}, tensors.at(layer + ".columns").bytes};
  refused(wrong_dtype, metadata, "expected dtype U8");
  auto nan = tensors;
  const float not_a_number = NAN;
  std::memcpy(nan[layer + ".values"].bytes.data() + 12, &not_a_number, 4);
  refused(nan, metadata, "not finite");
  auto changed = tensors;
  const float one = 1.0f;
  std::memcpy(changed[layer + ".values"].bytes.data(), &one, 4);
  refused(changed, metadata, "disagrees with its dense weight");
  // Q, K and V run as one stacked layer: all three or none.
  auto query_only = tensors;
  auto query_meta = metadata;
  const std::string query = "encoder.layer.1.attention.self.query";
  const BlockSparseMatrix q =
      BlockSparseMatrix::prune(model.tensor(query + ".weight"), 32, 32, {2, 4, 16});
  model.set_tensor(query + ".weight", q.to_dense());
  add_layer(query_only, query_meta, query, q);
  refused(query_only, query_meta, "query, key and value must all be block-sparse");
}

// A tiny model, two texts, and the CLI arguments naming them.
class CliOnTinyModel : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_file(dir.file("texts.txt"), "the cat sat\na big red ball\n");
  }
  TinyBert model;
  test::TempDir dir;
  const std::string common =
      "--model '" + model.dir() + "' --max-len 40 --input '" + dir.file("texts.txt") + "'";
};

TEST_F(CliOnTinyModel, WeightsOption) {
  const CliResult ok =
      run_cli(dir, "embed " + common + " --weights 1:2x16 --output '" + dir.file("e.npy") + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const CliResult eval =
      run_cli(dir, "eval embed " + common + " --weights 2:4x16 --attention dense");
  EXPECT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("weights 2:4x16 (12/12 linears), attention dense"), std::string::npos)
      << eval.out;
  const CliResult bad =
      run_cli(dir, "embed " + common + " --weights 2:4y --output '" + dir.file("f.npy") + "'");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--weights"), std::string::npos) << bad.err;
  const CliResult indivisible =
      run_cli(dir, "embed " + common + " --weights 1:3x16 --output '" + dir.file("g.npy") + "'");
  EXPECT_EQ(indivisible.exit_code, 2);
  EXPECT_NE(indivisible.err.find("multiple of M"), std::string::npos) << indivisible.err;
}

TEST_F(CliOnTinyModel, PrecisionOption) {
  const CliResult ok =
      run_cli(dir, "embed " + common + " --precision int8 --output '" + dir.file("e.npy") + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const CliResult eval = run_cli(dir, "eval embed " + common + " --precision int8");
  EXPECT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("weights dense int8, attention"), std::string::npos) << eval.out;
  const CliResult bad =
      run_cli(dir, "embed " + common + " --precision int4 --output '" + dir.file("f.npy") + "'");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--precision: expected fp32, bf16 or int8, got 'int4'"), std::string::npos)
      << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("f.npy")));
  const CliResult sparse =
      run_cli(dir, "embed " + common + " --precision int8 --weights 2:4x16 --output '" +
                       dir.file("g.npy") + "'");
  EXPECT_EQ(sparse.exit_code, 0) << sparse.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("g.npy")));
  const CliResult sparse_eval =
      run_cli(dir, "eval embed " + common + " --precision int8 --weights 1:4x4");
  EXPECT_EQ(sparse_eval.exit_code, 0) << sparse_eval.err;
  EXPECT_NE(sparse_eval.out.find("weights 1:4x4 (12/12 linears) int8, attention"),
            std::string::npos)
      << sparse_eval.out;
  const CliResult bf16 =
      run_cli(dir, "embed " + common + " --precision bf16 --weights 2:4x16 --output '" +
                       dir.file("h.npy") + "'");
  EXPECT_EQ(bf16.exit_code, 2);
  EXPECT_NE(bf16.err.find("bf16 precision with block-sparse weights"), std::string::npos)
      << bf16.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("h.npy")));
}

TEST_F(CliOnTinyModel, CalibrationOption) {
  const std::string calibration = dir.file("calibration.txt");
  {
    std::ofstream out(calibration);
    out << "alpha beta gamma\nbeta beta delta alpha\n";
  }
  const CliResult eval = run_cli(
      dir, "eval embed " + common + " --precision int8 --calibration '" + calibration + "'");
  EXPECT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("weights dense int8 static, attention"), std::string::npos) << eval.out;
  const CliResult fp32 = run_cli(dir, "embed " + common + " --calibration '" + calibration +
                                          "' --output '" + dir.file("f.npy") + "'");
  EXPECT_EQ(fp32.exit_code, 2);
  EXPECT_NE(fp32.err.find("--calibration: only with --precision int8"), std::string::npos)
      << fp32.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("f.npy")));
  const CliResult missing =
      run_cli(dir, "embed " + common + " --precision int8 --calibration '" + dir.file("none.txt") +
                       "' --output '" + dir.file("g.npy") + "'");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("none.txt"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("g.npy")));
  const std::string empty = dir.file("empty.txt");
  std::ofstream{empty};
  const CliResult nothing = run_cli(dir, "embed " + common + " --precision int8 --calibration '" +
                                             empty + "' --output '" + dir.file("h.npy") + "'");
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_NE(nothing.err.find("expected at least one text"), std::string::npos) << nothing.err;
}

TEST_F(CliOnTinyModel, AttentionDtypeOption) {
  const CliResult ok = run_cli(
      dir, "embed " + common + " --attention-dtype bf16 --output '" + dir.file("a.npy") + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  const CliResult eval =
      run_cli(dir, "eval embed " + common + " --attention 2:4 --attention-dtype bf16");
  EXPECT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("weights dense, attention 2:4 bf16"), std::string::npos) << eval.out;
  const CliResult bad = run_cli(
      dir, "embed " + common + " --attention-dtype fp16 --output '" + dir.file("f.npy") + "'");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--attention-dtype: expected one of fp32, bf16; got 'fp16'"),
            std::string::npos)
      << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("f.npy")));
}

// bf16 runs where oneDNN has a bf16 GEMM (AVX-512) and is refused with exit 2 elsewhere;
// DNNL_MAX_CPU_ISA=AVX2 makes "elsewhere" of any machine.
TEST_F(CliOnTinyModel, Bf16PrecisionOption) {
  const std::string embed =
      "embed " + common + " --precision bf16 --output '" + dir.file("b.npy") + "'";
  const CliResult avx2 = run_cli(dir, embed, "DNNL_MAX_CPU_ISA=AVX2 ");
  EXPECT_EQ(avx2.exit_code, 2);
  EXPECT_NE(avx2.err.find("bf16 precision needs a CPU with AVX-512"), std::string::npos)
      << avx2.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("b.npy")));
  const CliResult here = run_cli(dir, embed);
  if (!model::onednn_has_bf16_gemm()) {
    EXPECT_EQ(here.exit_code, 2);
    EXPECT_NE(here.err.find("bf16 precision needs a CPU with AVX-512"), std::string::npos)
        << here.err;
    GTEST_SKIP() << "oneDNN has no bf16 GEMM on this CPU (checked that dfss says so)";
  }
  EXPECT_EQ(here.exit_code, 0) << here.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("b.npy")));
  const CliResult eval = run_cli(dir, "eval embed " + common + " --precision bf16");
  EXPECT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NE(eval.out.find("weights dense bf16, attention"), std::string::npos) << eval.out;
  const CliResult sparse =
      run_cli(dir, "embed " + common + " --precision bf16 --weights 2:4x16 --output '" +
                       dir.file("g.npy") + "'");
  EXPECT_EQ(sparse.exit_code, 2);
  EXPECT_NE(sparse.err.find("bf16 precision with block-sparse weights"), std::string::npos)
      << sparse.err;
}

}  // namespace
}  // namespace dfss
