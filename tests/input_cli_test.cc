// End-to-end: every input of the dfss commands that is a FIFO is refused at once (exit 2,
// "<file>: not a regular file") instead of blocking, and /proc files are read to their end.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "io/npy.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::CliResult;
using test::read_file;
using test::TempDir;
using test::TinyBert;
using test::write_file;

// run_cli under a time limit, so that a regression shows as a failure (exit 124), not a hang.
CliResult run_cli_limited(const TempDir& dir, const std::string& args) {
  return test::run_cli(dir, args, "timeout -s KILL 30 ");
}

std::string shell_quoted(const std::string& path) {
  return "'" + path + "'";
}

class InputCli : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    const std::vector<float> values(2 * 1 * 4 * 8, 0.5f);
    io::write_npy(q_, values.data(), {2, 1, 4, 8});
    const std::vector<float> mask(2 * 4, 0.0f);
    io::write_npy(mask_, mask.data(), {2, 4});
    write_file(texts_, "the cat sat\na dog ran\n");
  }

  // The command must fail with exit 2 and `fragment` in its message, leaving no output.
  void expect_refused(const std::string& args, const std::string& fragment) {
    SCOPED_TRACE(args);
    const CliResult result = run_cli_limited(dir_, args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find(fragment), std::string::npos) << result.err;
    EXPECT_FALSE(std::filesystem::exists(out_));
  }

  TempDir dir_;
  std::string fifo_ = dir_.file("input.fifo");
  std::string q_ = dir_.file("q.npy"), mask_ = dir_.file("mask.npy");
  std::string texts_ = dir_.file("texts.txt");
  std::string out_ = dir_.file("out.npy");
};

TEST_F(InputCli, AttentionInputsThatAreFifosAreRefused) {
  const std::string not_regular = ": not a regular file (a FIFO); expected a .npy file";
  const std::string out = " --out " + shell_quoted(out_);
  const std::string q = shell_quoted(q_), f = shell_quoted(fifo_);
  expect_refused("attention --q " + f + " --k " + q + " --v " + q + out,
                 "--q " + fifo_ + not_regular);
  expect_refused("attention --q " + q + " --k " + f + " --v " + q + out,
                 "--k " + fifo_ + not_regular);
  expect_refused("attention --q " + q + " --k " + q + " --v " + f + out,
                 "--v " + fifo_ + not_regular);
  expect_refused("attention --q " + q + " --k " + q + " --v " + q + " --mask " + f + out,
                 "--mask " + fifo_ + not_regular);
}

TEST_F(InputCli, EmbedInputsThatAreFifosAreRefused) {
  const TinyBert model;
  const std::string m = " --model " + shell_quoted(model.dir());
  const std::string out = " --output " + shell_quoted(out_);
  const std::string not_regular = fifo_ + ": not a regular file (a FIFO)";
  expect_refused("embed" + m + " --input " + shell_quoted(fifo_) + out, not_regular);
  expect_refused("eval embed" + m + " --input " + shell_quoted(fifo_) + " --attention 2:4",
                 not_regular);
}

TEST_F(InputCli, ModelFilesThatAreFifosAreRefused) {
  for (const char* name : {"config.json", "vocab.txt", "model.safetensors"}) {
    const TinyBert model;
    const std::string path = model.dir() + "/" + name;
    std::filesystem::remove(path);
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    const std::string args =
        " --model " + shell_quoted(model.dir()) + " --input " + shell_quoted(texts_);
    expect_refused("embed" + args + " --output " + shell_quoted(out_),
                   path + ": not a regular file (a FIFO)");
    expect_refused("eval embed" + args, path + ": not a regular file (a FIFO)");
  }
}

TEST_F(InputCli, ProcFilesAreReadToTheirEnd) {
  // /proc files report a size of 0: read by size, this input would be empty.
  const TinyBert model;
  const CliResult result = run_cli_limited(dir_, "embed --model " + shell_quoted(model.dir()) +
                                                     " --input /proc/self/status --output " +
                                                     shell_quoted(out_) + " --max-len 16");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const io::NpyArray embeddings = io::read_npy(out_);
  ASSERT_EQ(embeddings.shape.size(), 2u);
  EXPECT_GT(embeddings.shape[0], 5);  // one per line of the file ("Name:", "Umask:", ...)
  EXPECT_EQ(embeddings.shape[1], model.shape().hidden);
}

}  // namespace
}  // namespace dfss
