// `dfss eval embed`'s measurement: an empty input is refused, and the throughput comes from
// interleaved repetitions after a warm-up (dense against dense once reported 6-22x).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::CliResult;
using test::run_cli;
using test::TempDir;
using test::TinyBert;
using test::write_file;

class CliArgsEval : public testing::Test {
 protected:
  std::string eval(const std::string& texts, const std::string& args) {
    write_file(input_, texts);
    return "eval embed --model '" + model_.dir() + "' --input '" + input_ + "' --json '" + json_ +
           "' --threads 1 " + args;
  }

  TinyBert model_;
  TempDir dir_;
  const std::string input_ = dir_.file("texts.txt"), json_ = dir_.file("eval.json");
};

TEST_F(CliArgsEval, AnEmptyInputIsRefused) {
  // It once reported "cosine ... 0.000000 (line 1)" and exit 0.
  const CliResult result = run_cli(dir_, eval("", ""));
  EXPECT_EQ(result.exit_code, 2) << result.out;
  EXPECT_NE(result.err.find("dfss: error: --input " + input_ +
                            ": expected at least one text (one per line), got an empty file"),
            std::string::npos)
      << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_FALSE(std::filesystem::exists(json_));
}

TEST_F(CliArgsEval, DenseAgainstDenseIsAboutOneAfterWarmUpAndMedians) {
  const CliResult result = run_cli(dir_, eval("The cat sat on the mat.\nA dog.\nHello there.\n"
                                              "Sparse attention.\n",
                                              "--attention dense --reps 7 --max-len 40"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("throughput (median of 7 interleaved passes after a warm-up)"),
            std::string::npos)
      << result.out;
  const nlohmann::json report = nlohmann::json::parse(test::read_file(json_));
  EXPECT_EQ(report["reps"], 7);
  EXPECT_EQ(report["cosine_min"], 1.0);
  // The same computation twice: without the warm-up the first (dense) pass paid for the
  // first-call costs alone. The bound is loose, as timings on a shared machine are noisy.
  const double speedup = report["speedup_vs_dense"].get<double>();
  EXPECT_GT(speedup, 0.4) << result.out;
  EXPECT_LT(speedup, 2.5) << result.out;
}

TEST_F(CliArgsEval, RepsAreValidated) {
  const CliResult result = run_cli(dir_, eval("a\n", "--reps 0"));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--reps: expected an integer in 1..1000, got '0'"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace dfss
