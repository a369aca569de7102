// The CLI's outputs: checked before the work, committed together, never replacing a
// device, and standard output write errors reported.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "io/npy.h"
#include "temp_dir.h"

namespace dfss::test {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class OutputCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directory(dir_.file("in"));
    write_input("q", {1, 2, 8, 4});
    write_input("k", {1, 2, 8, 4});
    write_input("v", {1, 2, 8, 4});
    std::filesystem::create_directory(dir_.file("out"));
  }

  void write_input(const std::string& name, const std::vector<int64_t>& shape) {
    int64_t numel = 1;
    for (int64_t dim : shape) numel *= dim;
    std::vector<float> values(static_cast<size_t>(numel));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7) * 0.25f;
    io::write_npy(dir_.file("in/" + name + ".npy"), values.data(), shape);
  }

  std::string inputs() const {
    return "--q '" + dir_.file("in/q.npy") + "' --k '" + dir_.file("in/k.npy") + "' --v '" +
           dir_.file("in/v.npy") + "'";
  }

  std::vector<std::string> out_listing() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.file("out"))) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir dir_;
};

TEST_F(OutputCliTest, ADeviceOrFifoAsOutputIsRefusedBeforeAnyWork) {
  const std::string fifo = dir_.file("out/fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // The inputs do not exist: the output is checked first.
  CliResult result = run_cli(dir_,
                             "attention --q missing.npy --k missing.npy --v missing.npy "
                             "--out '" +
                                 fifo + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "dfss: error: --out " + fifo + ": not a regular file (a FIFO)"))
      << result.err;
  struct stat status {};
  ASSERT_EQ(::lstat(fifo.c_str(), &status), 0);
  EXPECT_TRUE(S_ISFIFO(status.st_mode));
  EXPECT_EQ(out_listing(), std::vector<std::string>{"fifo"});

  result = run_cli(dir_, "attention " + inputs() + " --out '" + dir_.file("out") + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, ": is a directory")) << result.err;
}

TEST_F(OutputCliTest, AFailingOutputLeavesNoOtherOutputBehind) {
  const std::string scores = dir_.file("out/s.npz"), out = dir_.file("out/missing/o.npy");
  const CliResult result = run_cli(dir_, "attention " + inputs() + " --pattern 2:4 --scores-out '" +
                                             scores + "' --out '" + out + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "--out " + out + ": directory")) << result.err;
  EXPECT_EQ(out_listing(), std::vector<std::string>{});

  const CliResult ok = run_cli(dir_, "attention " + inputs() + " --pattern 2:4 --scores-out '" +
                                         scores + "' --out '" + dir_.file("out/o.npy") + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(out_listing(), (std::vector<std::string>{"o.npy", "s.npz"}));
}

TEST_F(OutputCliTest, ScoresOutAndOutMustBeDifferentFiles) {
  const std::string out = dir_.file("out/o.npy");
  CliResult result = run_cli(dir_, "attention " + inputs() + " --pattern 2:4 --out '" + out +
                                       "' --scores-out '" + dir_.file("out/./o.npy") + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "names the same file as --out " + out)) << result.err;

  std::filesystem::create_symlink("o.npy", dir_.file("out/alias.npz"));
  result = run_cli(dir_, "attention " + inputs() + " --pattern 2:4 --out '" + out +
                             "' --scores-out '" + dir_.file("out/alias.npz") + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "names the same file as --out")) << result.err;
  EXPECT_EQ(out_listing(), std::vector<std::string>{"alias.npz"});
}

TEST_F(OutputCliTest, JsonTargetsAreCheckedBeforeTheRun) {
  const CliResult result =
      run_cli(dir_, "bench attention --seq 64 --json '" + dir_.file("out") + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "--json " + dir_.file("out") + ": is a directory"))
      << result.err;
  EXPECT_EQ(result.out, "");  // no benchmark ran
}

TEST_F(OutputCliTest, EmbedOutputIsCheckedBeforeTheModelLoads) {
  const std::string output = dir_.file("out/missing/e.npy");
  const CliResult result =
      run_cli(dir_, "embed --model '" + dir_.file("no-model") + "' --input '" +
                        dir_.file("no-input.txt") + "' --output '" + output + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(contains(result.err, "--output " + output + ": directory")) << result.err;
}

TEST_F(OutputCliTest, WriteErrorsOnStandardOutputFail) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const std::string err = dir_.file("stderr.txt");
  const std::string command =
      std::string("'") + DFSS_CLI_PATH + "' info >/dev/full 2>'" + err + "'";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_TRUE(contains(read_file(err),
                       "dfss: error: cannot write to standard output: No space left on device"))
      << read_file(err);

  // --help writes to standard output too.
  const std::string help = std::string("'") + DFSS_CLI_PATH + "' --help >/dev/full 2>/dev/null";
  const int help_status = std::system(help.c_str());
  ASSERT_TRUE(WIFEXITED(help_status));
  EXPECT_EQ(WEXITSTATUS(help_status), 2);
}

TEST_F(OutputCliTest, SigtermDuringTheWriteLeavesNoTemporaryFile) {
  // A quick computation with a large output (128 MiB), so that the signal can arrive while
  // the output is being written.
  write_input("q", {1, 128, 1024, 16});
  write_input("k", {1, 128, 16, 16});
  write_input("v", {1, 128, 16, 256});
  // Built before fork(): the child only calls exec.
  const std::string q = dir_.file("in/q.npy"), k = dir_.file("in/k.npy"), v = dir_.file("in/v.npy");
  const std::string out = dir_.file("out/o.npy");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl(DFSS_CLI_PATH, DFSS_CLI_PATH, "attention", "--q", q.c_str(), "--k", k.c_str(), "--v",
            v.c_str(), "--out", out.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  // Signal as soon as anything (the temporary file) shows up in the output directory.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool writing = false;
  int status = 0;
  pid_t ended = 0;
  while (!writing && ended == 0 && std::chrono::steady_clock::now() < deadline) {
    writing = !std::filesystem::is_empty(dir_.file("out"));
    if (!writing) std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (!writing) ended = ::waitpid(child, &status, WNOHANG);
  }
  if (ended == 0) {
    ::kill(child, SIGTERM);
    ASSERT_EQ(::waitpid(child, &status, 0), child);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    GTEST_SKIP() << "the write completed before the signal arrived";
  }
  EXPECT_TRUE(writing);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  EXPECT_EQ(out_listing(), std::vector<std::string>{});
}

}  // namespace
}  // namespace dfss::test
