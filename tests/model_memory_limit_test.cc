// `dfss embed` under address-space limits (ulimit -v): every limit ends in success or in a
// clean failure (exit code 2, "out of memory while ...", no output file), never a signal.
// oneDNN 2.x builds its GEMM kernels lazily with allocations it does not check; before
// build_onednn_gemm_kernels() the reported command (all-MiniLM-L6-v2, --threads 1) died of
// SIGSEGV at 166, 170, 172 and 174 MB, and with two threads also of SIGABRT.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "temp_dir.h"
#include "test_helpers.h"
#include "tiny_bert.h"

namespace dfss {
namespace {

using test::TempDir;
using test::TinyBert;
using test::write_file;

const std::filesystem::path kRepo = std::filesystem::path(__FILE__).parent_path().parent_path();

struct LimitedRun {
  bool signaled = false;
  int signal = 0;
  int exit_code = -1;
  std::string err;
};

// `dfss <args>` with its address space limited to `kilobytes` (the shell's ulimit -v,
// then exec, so that a signal reaches the status unchanged).
LimitedRun run_with_address_limit(const TempDir& dir, long kilobytes, const std::string& args) {
  const std::string err = dir.file("stderr.txt");
  const std::string command = "ulimit -v " + std::to_string(kilobytes) + " && exec '" +
                              DFSS_CLI_PATH + "' " + args + " >/dev/null 2>'" + err + "'";
  const int status = std::system(command.c_str());
  LimitedRun run;
  run.signaled = WIFSIGNALED(status);
  if (run.signaled) run.signal = WTERMSIG(status);
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  run.err = test::read_file(err);
  return run;
}

// Lines of 3 to 40 words from a small vocabulary, the same every time.
std::string sample_texts(int count) {
  const std::vector<std::string> words = {"the", "cat", "sat",  "on",  "a",   "mat",  "and",
                                          "dog", "ran", "fast", "big", "red", "ball", "house"};
  std::string text;
  uint32_t state = 12345;
  const auto next = [&] { return state = state * 1103515245u + 12345u, (state >> 16) & 0x7fff; };
  for (int line = 0; line < count; ++line) {
    const uint32_t length = 3 + next() % 38;
    for (uint32_t w = 0; w < length; ++w) text += (w ? " " : "") + words[next() % words.size()];
    text += "\n";
  }
  return text;
}

// Runs `dfss embed` of `texts` lines with the model in `model_dir` under each limit and
// checks that each run succeeds or fails cleanly. Returns how many succeeded and failed.
std::pair<int, int> embed_under_limits(const std::string& model_dir,
                                       const std::vector<long>& limits,
                                       const std::string& extra_args) {
  TempDir dir;
  const std::string input = dir.file("texts.txt"), output = dir.file("emb.npy");
  write_file(input, sample_texts(100));
  int succeeded = 0, failed = 0;
  for (const long limit : limits) {
    std::filesystem::remove(output);
    const LimitedRun run =
        run_with_address_limit(dir, limit,
                               "embed --model '" + model_dir + "' --input '" + input +
                                   "' --output '" + output + "' " + extra_args);
    EXPECT_FALSE(run.signaled) << "ulimit -v " << limit << ": signal " << run.signal << " "
                               << run.err;
    if (run.signaled) continue;
    if (run.exit_code == 0) {
      ++succeeded;
      EXPECT_TRUE(std::filesystem::exists(output)) << "ulimit -v " << limit;
      continue;
    }
    ++failed;
    EXPECT_EQ(run.exit_code, 2) << "ulimit -v " << limit << ": " << run.err;
    // Mapping model.safetensors fails with the system's own words for ENOMEM.
    EXPECT_TRUE(run.err.find("dfss: error: out of memory while ") == 0 ||
                run.err.find("Cannot allocate memory") != std::string::npos)
        << "ulimit -v " << limit << ": " << run.err;
    EXPECT_FALSE(std::filesystem::exists(output)) << "ulimit -v " << limit;
  }
  return {succeeded, failed};
}

std::vector<long> limits(long from, long to, long step) {
  std::vector<long> out;
  for (long limit = from; limit <= to; limit += step) out.push_back(limit);
  return out;
}

// The lowest limit, to 500 KB, at which the binary starts at all (below it the dynamic
// loader fails). The limits below are relative to it, so that they fall in the same places
// of a run on another system.
long startup_floor() {
  const TempDir dir;
  for (long limit = 16000; limit < 400000; limit += 500) {
    if (run_with_address_limit(dir, limit, "--help").exit_code == 0) return limit;
  }
  ADD_FAILURE() << "dfss --help fails under every limit";
  return 0;
}

TEST(ModelMemoryLimit, RealModelFailsCleanlyAtEveryLimit) {
  if (test::kAddressSanitizerBuild)
    GTEST_SKIP() << "ulimit -v cannot apply to an AddressSanitizer build";
  const std::filesystem::path real = kRepo / "models/all-MiniLM-L6-v2";
  if (!std::filesystem::exists(real / "model.safetensors")) {
    GTEST_SKIP() << "no " << real.string() << ": run scripts/fetch-model.sh";
  }
  const long floor = startup_floor();
  // Finely where the reported command crashed (floor + 119 to 128 MB), then up to where
  // it succeeds.
  std::vector<long> one_thread = limits(floor + 114000, floor + 130000, 2000);
  for (const long limit : limits(floor + 150000, floor + 360000, 30000)) {
    one_thread.push_back(limit);
  }
  const auto [succeeded, failed] = embed_under_limits(real.string(), one_thread, "--threads 1");
  EXPECT_GT(succeeded, 0);
  EXPECT_GT(failed, 0);
  // With two threads oneDNN built the kernels on a worker thread (SIGSEGV, or SIGABRT when
  // the unwinder could not be loaded) unless dfss built them first.
  embed_under_limits(real.string(), limits(floor + 140000, floor + 200000, 12000), "--threads 2");
  // int8 layers run oneDNN inside dfss's own OpenMP region: a failure on one thread must end
  // the command cleanly, not hang the other.
  embed_under_limits(real.string(), limits(floor + 140000, floor + 230000, 10000),
                     "--threads 2 --precision int8");
}

TEST(ModelMemoryLimit, TinyModelFailsCleanlyAtEveryLimit) {
  if (test::kAddressSanitizerBuild)
    GTEST_SKIP() << "ulimit -v cannot apply to an AddressSanitizer build";
  // Before the fix, limits of floor + 6.5 to 14.5 MB crashed here.
  const TinyBert model;
  const long floor = startup_floor();
  std::vector<long> tried = limits(floor + 4000, floor + 16000, 250);
  for (const long limit : limits(floor + 20000, floor + 80000, 4000)) tried.push_back(limit);
  const auto [succeeded, failed] =
      embed_under_limits(model.dir(), tried, "--threads 1 --max-len 40");
  EXPECT_GT(succeeded, 0);
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace dfss
