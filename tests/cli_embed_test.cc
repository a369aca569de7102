// End-to-end tests of `dfss embed`, `dfss eval embed` and `dfss bench embed` on a tiny
// random model: outputs equal the library's, and bad input fails cleanly (exit code 2,
// a message naming the argument or line, no output file).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "dfss/bert.h"
#include "io/npy.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::CliResult;
using test::run_cli;
using test::TempDir;
using test::TinyBert;
using test::write_file;

class CliEmbed : public testing::Test {
 protected:
  void SetUp() override {
    // Three texts, the second empty; CRLF ending on the first; no final newline.
    write_file(input_, "The cat sat on the mat.\r\n\nA big red dog ran fast, and the cats sat");
  }

  std::string model_args() const {
    return "--model '" + model_.dir() + "' --input '" + input_ + "'";
  }

  std::vector<float> library_embeddings(const std::string& attention) const {
    const BertEncoder encoder = BertEncoder::load(model_.dir());
    std::vector<std::vector<int32_t>> texts;
    for (const char* text :
         {"The cat sat on the mat.", "", "A big red dog ran fast, and the cats sat"}) {
      texts.push_back(encoder.tokenizer().encode(text, 40));
    }
    EncodeOptions options;
    options.attention = parse_layer_patterns(attention, encoder.num_layers(), "attention");
    // In batches of 2, as the CLI runs below: oneDNN's GEMMs may round differently for
    // another row count on some CPUs (seen on AVX2), so equality holds per batch shape.
    std::vector<float> out(texts.size() * 32);
    for (size_t first = 0; first < texts.size(); first += 2) {
      const size_t n = std::min<size_t>(2, texts.size() - first);
      encoder.encode(std::span(texts).subspan(first, n), std::span(out).subspan(first * 32, n * 32),
                     options);
    }
    return out;
  }

  TinyBert model_;
  TempDir dir_;
  std::string input_ = dir_.file("texts.txt");
  std::string output_ = dir_.file("emb.npy");
};

TEST_F(CliEmbed, WritesTheLibrarysEmbeddings) {
  for (const std::string attention : {"dense", "2:4", "dense,1:2"}) {
    std::filesystem::remove(output_);
    const CliResult result = run_cli(dir_, "embed " + model_args() + " --output '" + output_ +
                                               "' --max-len 40 --batch 2 --attention " + attention);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.err, "");  // no progress bar: stderr is not a terminal
    const io::NpyArray out = io::read_npy(output_);
    EXPECT_EQ(out.shape, (std::vector<int64_t>{3, 32}));
    EXPECT_EQ(out.f32, library_embeddings(attention)) << attention;
  }
}

TEST_F(CliEmbed, InvalidUtf8NamesTheLineAndWritesNothing) {
  write_file(input_, "fine\nalso fine\nbad \xC3\x28 byte\n");
  const CliResult result =
      run_cli(dir_, "embed " + model_args() + " --output '" + output_ + "' --max-len 40");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(input_ + ":3: invalid UTF-8 at byte 5 of the line"), std::string::npos)
      << result.err;
  EXPECT_FALSE(std::filesystem::exists(output_));
}

TEST_F(CliEmbed, BadArgumentsAreNamed) {
  const std::string out = " --output '" + output_ + "'";
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {"--max-len 41",
       "--max-len: expected at most 40 (the model's max_position_embeddings), got 41"},
      {"--max-len 1", "--max-len"},
      {"--attention 2:4,dense,dense",
       "--attention: expected one pattern for all layers or a list of 2"},
      {"--attention 3:2", "--attention"},
      {"--batch 0", "--batch"},
  };
  for (const Case& c : cases) {
    const CliResult result = run_cli(dir_, "embed " + model_args() + out + " " + c.args);
    EXPECT_EQ(result.exit_code, 2) << c.args;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << c.args << ": " << result.err;
    EXPECT_FALSE(std::filesystem::exists(output_)) << c.args;
  }
  const CliResult missing =
      run_cli(dir_, "embed --model '" + dir_.file("nowhere") + "' --input '" + input_ + "'" + out);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nowhere/config.json"), std::string::npos) << missing.err;
  const CliResult no_input = run_cli(
      dir_, "embed --model '" + model_.dir() + "' --input '" + dir_.file("none.txt") + "'" + out);
  EXPECT_EQ(no_input.exit_code, 2);
  EXPECT_NE(no_input.err.find("none.txt"), std::string::npos) << no_input.err;
}

TEST_F(CliEmbed, EvalReportsCosineAndThroughput) {
  const std::string json = dir_.file("eval.json");
  const CliResult result = run_cli(
      dir_, "eval embed " + model_args() + " --max-len 40 --attention 1:2 --json '" + json + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("cosine(1:2, dense): mean"), std::string::npos) << result.out;
  const nlohmann::json report = nlohmann::json::parse(test::read_file(json));
  EXPECT_EQ(report["attention"], "1:2");
  EXPECT_EQ(report["texts"], 3);
  EXPECT_LE(report["cosine_min"].get<double>(), report["cosine_mean"].get<double>());
  EXPECT_LE(report["cosine_mean"].get<double>(), 1.0 + 1e-9);
  EXPECT_GT(report["dense_tokens_per_s"].get<double>(), 0.0);
}

TEST_F(CliEmbed, BenchTimesEachConfiguration) {
  const std::string json = dir_.file("bench.json");
  const CliResult result =
      run_cli(dir_, "bench embed --model '" + model_.dir() +
                        "' --shapes 2x16,1x40 --attention dense 2:4 dense,2:4 --reps 1 --threads 1 "
                        "--json '" +
                        json + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json rows = nlohmann::json::parse(test::read_file(json));
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[2]["attention"], "dense,2:4");
  EXPECT_EQ(rows[3]["seq"], 40);
  EXPECT_GT(rows[4]["tokens_per_s"].get<double>(), 0.0);
  EXPECT_TRUE(rows[5].contains("speedup_vs_dense"));

  const CliResult bad = run_cli(dir_, "bench embed --model '" + model_.dir() + "' --shapes 2x41");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--shapes: 41 tokens exceed the model's 40 positions"), std::string::npos)
      << bad.err;
  const CliResult garbage =
      run_cli(dir_, "bench embed --model '" + model_.dir() + "' --shapes 2by3");
  EXPECT_EQ(garbage.exit_code, 2);
  EXPECT_NE(garbage.err.find("--shapes: expected BATCHxTOKENS"), std::string::npos) << garbage.err;
}

}  // namespace
}  // namespace dfss
