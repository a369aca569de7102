// The command line under address-space limits (`ulimit -v`): too many threads, inputs or
// buffers too large for the limit. Every run must end with exit 0 or with exit 2 and a
// dfss error, never a signal, and never libgomp's own "Thread creation failed" (exit 1).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "io/npy.h"
#include "temp_dir.h"

namespace dfss {
namespace {

using test::CliResult;
using test::read_file;
using test::TempDir;

// `dfss <args>` in a shell whose virtual memory is limited to `kilobytes`.
CliResult run_cli_limited(const TempDir& dir, int64_t kilobytes, const std::string& args) {
  return test::run_cli(dir, args, "ulimit -v " + std::to_string(kilobytes) + " && ");
}

void expect_clean_outcome(const CliResult& result, const std::string& expected_error) {
  // A shell reports a child killed by signal N as 128 + N.
  ASSERT_TRUE(result.exit_code == 0 || result.exit_code == 2)
      << "exit " << result.exit_code << ": " << result.err;
  EXPECT_EQ(result.err.find("Thread creation failed"), std::string::npos) << result.err;
  if (result.exit_code == 2) {
    EXPECT_EQ(result.err.rfind("dfss: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find(expected_error), std::string::npos) << result.err;
  }
}

class CliUlimit : public testing::Test {
 protected:
  void SetUp() override {
    if (test::kAddressSanitizerBuild)
      GTEST_SKIP() << "ulimit -v cannot apply to an AddressSanitizer build";
  }
  std::string write(const std::string& name, const std::vector<int64_t>& shape) {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    const std::vector<float> data(static_cast<size_t>(count), 0.25f);
    io::write_npy(dir_.file(name), data.data(), shape);
    return dir_.file(name);
  }
  TempDir dir_;
};

TEST_F(CliUlimit, ThreadsThatCannotStartAreADfssError) {
  const std::string q = write("q.npy", {1, 2, 8, 16});
  const std::string inputs = "--q '" + q + "' --k '" + q + "' --v '" + q + "'";
  // 1024 threads need gigabytes of stacks: not there under 1 GB. libgomp used to print
  // "Thread creation failed" and exit 1.
  for (const int64_t limit : {600000, 1000000}) {
    SCOPED_TRACE(limit);
    const CliResult result = run_cli_limited(
        dir_, limit, "attention " + inputs + " --out '" + dir_.file("o.npy") + "' --threads 1024");
    EXPECT_EQ(result.exit_code, 2) << result.err;
    expect_clean_outcome(result, "--threads 1024: cannot start 1024 threads");
  }
}

TEST_F(CliUlimit, LargeProblemsUnderMemoryLimitsEndCleanly) {
  // Inputs of 2 MB each and an unfused score matrix of 256 MB (one head).
  const std::string q = write("big.npy", {1, 1, 8192, 64});
  const std::string inputs = "--q '" + q + "' --k '" + q + "' --v '" + q + "'";
  for (const int64_t limit : {100000, 200000, 300000, 450000, 700000}) {
    for (const char* impl : {"unfused", "fused"}) {
      SCOPED_TRACE(std::to_string(limit) + " KB, " + impl);
      const CliResult result = run_cli_limited(
          dir_, limit,
          "attention " + inputs + " --out '" + dir_.file("o.npy") + "' --threads 1 --impl " + impl);
      expect_clean_outcome(result, "out of memory");
    }
  }
  // bench: inputs for L = 2^24 do not fit in 400 MB.
  const CliResult bench = run_cli_limited(
      dir_, 400000,
      "bench attention --seq 16777216 --heads 1 --dim 8 --impl fused --dtype fp32 --reps 1 "
      "--threads 1");
  EXPECT_EQ(bench.exit_code, 2) << bench.err;
  expect_clean_outcome(bench, "--seq 16777216: out of memory while allocating the random inputs");
}

}  // namespace
}  // namespace dfss
