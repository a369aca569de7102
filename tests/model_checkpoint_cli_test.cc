// `dfss embed` on checkpoints that do not match their config.json or hold non-finite
// weights: exit code 2, a message naming the file and field or tensor, no output file,
// instead of running with wrong or NaN embeddings.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::CliResult;
using test::run_cli;
using test::TempDir;
using test::TinyBert;
using test::write_file;

const std::filesystem::path kRepo = std::filesystem::path(__FILE__).parent_path().parent_path();

class ModelCheckpointCli : public testing::Test {
 protected:
  void SetUp() override { write_file(input_, "the cat sat on the mat\na dog ran\n"); }

  // `dfss embed` of the two test lines with the model in `model_dir`.
  CliResult embed(const std::string& model_dir) {
    return run_cli(dir_, "embed --threads 1 --max-len 40 --model '" + model_dir + "' --input '" +
                             input_ + "' --output '" + output_ + "'");
  }

  // Exit code 2, `message` in stderr, and no output file.
  void expect_refused(const CliResult& result, const std::string& message) {
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find(message), std::string::npos) << result.err;
    EXPECT_FALSE(std::filesystem::exists(output_));
  }

  TempDir dir_;
  std::string input_ = dir_.file("texts.txt");
  std::string output_ = dir_.file("emb.npy");
};

TEST_F(ModelCheckpointCli, FewerLayersInConfigThanInTheFileAreRefused) {
  TinyBert model;  // 2 layers
  ASSERT_EQ(embed(model.dir()).exit_code, 0) << test::read_file(dir_.file("stderr.txt"));
  std::filesystem::remove(output_);
  model.change_config({{"num_hidden_layers", 1}});
  expect_refused(embed(model.dir()), "model.safetensors: tensor 'encoder.layer.1.");
  model.change_config({{"num_hidden_layers", 3}});
  expect_refused(embed(model.dir()), "model.safetensors: tensor 'encoder.layer.2.");
}

TEST_F(ModelCheckpointCli, HeadDimensionIsCheckedInTheConfig) {
  TinyBert model({.hidden = 272, .heads = 2, .layers = 1, .intermediate = 16, .positions = 40});
  ASSERT_EQ(embed(model.dir()).exit_code, 0) << test::read_file(dir_.file("stderr.txt"));
  std::filesystem::remove(output_);
  model.change_config({{"num_attention_heads", 1}});
  expect_refused(embed(model.dir()), "config.json: \"num_attention_heads\" 1 gives heads of 272");
}

TEST_F(ModelCheckpointCli, DuplicateConfigKeysAreRefused) {
  TinyBert model;
  std::string config = test::read_file(model.dir() + "/config.json");
  config.insert(1, "\"num_hidden_layers\": 1, ");
  write_file(model.dir() + "/config.json", config);
  expect_refused(embed(model.dir()),
                 "config.json: the key \"num_hidden_layers\" appears twice in one object");
}

TEST_F(ModelCheckpointCli, NonFiniteWeightsAreRefused) {
  TinyBert model;
  model.set_weight("encoder.layer.1.attention.self.key.weight", 40, std::nanf(""));
  expect_refused(embed(model.dir()),
                 "model.safetensors: tensor 'encoder.layer.1.attention.self.key.weight': element "
                 "[1, 8] is NaN; expected finite weights");
}

// The reported case: all-MiniLM-L6-v2 (6 layers) with num_hidden_layers 5 ran and gave
// embeddings at cosine 0.53 to the right ones.
TEST_F(ModelCheckpointCli, RealModelWithALayerMissingFromTheConfig) {
  const std::filesystem::path real = std::filesystem::absolute(kRepo / "models/all-MiniLM-L6-v2");
  if (!std::filesystem::exists(real / "model.safetensors")) {
    GTEST_SKIP() << "no " << real.string() << ": run scripts/fetch-model.sh";
  }
  const std::filesystem::path model = dir_.path() / "model";
  std::filesystem::create_directory(model);
  for (const char* name : {"model.safetensors", "vocab.txt"}) {
    std::filesystem::create_symlink(real / name, model / name);
  }
  nlohmann::json config = nlohmann::json::parse(test::read_file((real / "config.json").string()));
  config["num_hidden_layers"] = 5;
  write_file((model / "config.json").string(), config.dump());
  expect_refused(embed(model.string()),
                 "model.safetensors: tensor 'encoder.layer.5.attention.output.LayerNorm.bias' is "
                 "not part of the model config.json describes (num_hidden_layers 5)");
}

}  // namespace
}  // namespace dfss
