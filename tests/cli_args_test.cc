// The command line's argument handling: empty values, numbers beyond fp32, library errors
// told with the flag and file they came from, and sizes that overflow.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "dfss/cpu.h"
#include "io/npy.h"
#include "temp_dir.h"

namespace dfss {
namespace {

using test::CliResult;
using test::run_cli;
using test::TempDir;

class CliArgs : public testing::Test {
 protected:
  void SetUp() override {
    write("q.npy", {2, 3, 5, 8});
    write("k.npy", {2, 3, 7, 8});
    write("v.npy", {2, 3, 7, 4});
  }

  std::string write(const std::string& name, const std::vector<int64_t>& shape,
                    float value = 0.5f) {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    const std::vector<float> data(static_cast<size_t>(count), value);
    io::write_npy(dir_.file(name), data.data(), shape);
    return dir_.file(name);
  }

  // `dfss attention` on q.npy, k.npy, v.npy unless `args` names them itself.
  CliResult attention(const std::string& args, const std::string& k = "k.npy",
                      const std::string& v = "v.npy") const {
    return run_cli(dir_, "attention --q '" + dir_.file("q.npy") + "' --k '" + dir_.file(k) +
                             "' --v '" + dir_.file(v) + "' --out '" + out_ + "' " + args);
  }

  // Exit 2, `expected` in stderr, no output, and no internal argument names.
  void expect_error(const CliResult& result, const std::string& expected) const {
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find(expected), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("options."), std::string::npos) << result.err;
    for (const char* internal : {"q:", "k:", "v:", "out:"}) {
      EXPECT_EQ(result.err.find(std::string("error: ") + internal), std::string::npos)
          << result.err;
    }
    EXPECT_FALSE(std::filesystem::exists(out_));
  }

  TempDir dir_;
  const std::string out_ = dir_.file("out.npy");
};

TEST_F(CliArgs, AnEmptyValueIsReportedForItsOwnOption) {
  // `--pattern=` once made CLI11 take --out as the pattern and report "--out is required".
  expect_error(attention("--pattern= --out x"),
               "dfss: error: --pattern: expected a value, got "
               "an empty one");
  for (const std::string option : {"--pattern", "--impl", "--dtype", "--mask", "--scale",
                                   "--threads", "--scores-out", "--isa"}) {
    SCOPED_TRACE(option);
    expect_error(attention(option + "="), option + ": expected a value, got an empty one");
    expect_error(attention(option + " ''"), option + ": expected a value");
  }
  expect_error(run_cli(dir_, "attention --q '' --k k --v v --out o"),
               "--q: expected a value, got an empty one");
  expect_error(run_cli(dir_, "attention --q= --k k --v v --out o"),
               "--q: expected a value, got an empty one");
  expect_error(run_cli(dir_, "bench attention --seq 1,,2"), "--seq: expected a value");
  expect_error(run_cli(dir_, "bench attention --impl fused, --seq 8"), "--impl: expected a value");
  expect_error(run_cli(dir_, "embed --input= --output o.npy"), "--input: expected a value");
  expect_error(run_cli(dir_, "eval embed --input x --model ''"), "--model: expected a value");
  // A flag is not an option with a value.
  EXPECT_EQ(attention("--causal").exit_code, 0);
}

TEST_F(CliArgs, ScaleBeyondFp32IsOutOfRangeNotInf) {
  expect_error(attention("--scale 1e39"),
               "dfss: error: --scale: expected a number in fp32 range (magnitude 1.4e-45 to "
               "3.4e38, or 0), got '1e39' (out of range for fp32)");
  expect_error(attention("--scale -1e39"), "got '-1e39' (out of range for fp32)");
  expect_error(attention("--scale 1e-50"), "got '1e-50' (out of range for fp32)");
  expect_error(attention("--scale 1e400"), "got '1e400' (out of range for fp32)");
  expect_error(attention("--scale inf"), "--scale: expected a finite number, got 'inf'");
  expect_error(attention("--scale nan"), "--scale: expected a finite number, got 'nan'");
  expect_error(attention("--scale 0.5x"), "--scale: expected a finite number, got '0.5x'");
  EXPECT_EQ(attention("--scale 3e38").exit_code, 0);
  EXPECT_EQ(attention("--scale +0.25").exit_code, 0);
}

TEST_F(CliArgs, LibraryErrorsNameTheFlagAndFile) {
  const std::string short_v = write("short_v.npy", {2, 3, 6, 4});
  expect_error(attention("", "k.npy", "short_v.npy"),
               "dfss: error: --v " + short_v +
                   ": expected shape [2, 3, 7, *] (B of --q, Hkv and Lk of --k), got [2, 3, 6, 4]");
  const std::string wide_k = write("wide_k.npy", {2, 3, 7, 9});
  expect_error(attention("", "wide_k.npy"),
               "--k " + wide_k + ": expected shape [2, *, *, 8] (B and d of --q)");
  const std::string two_heads = write("two_heads.npy", {2, 2, 7, 8});
  expect_error(attention("", "two_heads.npy"),
               "--k " + two_heads +
                   ": expected a number of key/value heads (shape[1]) that "
                   "divides the 3 query heads of --q, got 2");
  const std::string wide_v = write("wide_v.npy", {2, 3, 7, 300});
  expect_error(attention("", "k.npy", "wide_v.npy"),
               "--v " + wide_v + ": expected value dimension dv (shape[3]) in [1, 256]");
  expect_error(attention("--threads 1025"), "--threads: expected an integer in 0..1024");
}

TEST_F(CliArgs, AnIsaTheCpuLacksIsNamedAsTheFlagInEveryCommand) {
  for (Isa isa : {Isa::avx512_bf16, Isa::avx512, Isa::avx2}) {
    if (isa_supported(isa)) continue;
    const std::string expected = std::string(
                                     "dfss: error: --isa: expected an ISA this CPU "
                                     "supports (best: ") +
                                 isa_name(detected_isa()) + "), got " + isa_name(isa);
    // bench attention once said "isa: 'avx512' is not supported by this CPU".
    for (const std::string command : {"info", "bench attention --seq 8", "bench embed"}) {
      SCOPED_TRACE(command);
      const CliResult result = run_cli(dir_, command + " --isa " + isa_name(isa));
      EXPECT_EQ(result.exit_code, 2);
      EXPECT_EQ(result.err.rfind(expected, 0), 0u) << result.err;
    }
    expect_error(attention(std::string("--isa ") + isa_name(isa)), expected);
    return;
  }
  GTEST_SKIP() << "this CPU supports every ISA";
}

TEST_F(CliArgs, MaskWithNanOrPlusInfIsRefusedNamingTheFileAndIndex) {
  std::vector<float> values(14, 0.0f);
  values[9] = std::numeric_limits<float>::quiet_NaN();  // [1, 2]
  io::write_npy(dir_.file("nan_mask.npy"), values.data(), {2, 7});
  expect_error(attention("--mask '" + dir_.file("nan_mask.npy") + "'"),
               "dfss: error: --mask " + dir_.file("nan_mask.npy") +
                   ": expected finite values or -inf (masked), got nan at [1, 2]");
  values[9] = std::numeric_limits<float>::infinity();
  io::write_npy(dir_.file("inf_mask.npy"), values.data(), {2, 7});
  expect_error(attention("--mask '" + dir_.file("inf_mask.npy") + "'"), "got inf at [1, 2]");
  values[9] = -std::numeric_limits<float>::infinity();
  io::write_npy(dir_.file("ok_mask.npy"), values.data(), {2, 7});
  EXPECT_EQ(attention("--mask '" + dir_.file("ok_mask.npy") + "'").exit_code, 0);
}

TEST_F(CliArgs, ShapesWhoseStridesOverflowAreTooLarge) {
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  // An empty array: .npy accepts it, but its row-major strides overflow (this was reported
  // as "expected non-negative strides" after a signed overflow).
  io::write_npy(dir_.file("huge_q.npy"), static_cast<const float*>(nullptr), {0, kHuge, kHuge, 64});
  const CliResult result =
      run_cli(dir_, "attention --q '" + dir_.file("huge_q.npy") + "' --k '" + dir_.file("k.npy") +
                        "' --v '" + dir_.file("v.npy") + "' --out '" + out_ + "'");
  expect_error(result, "dfss: error: --q " + dir_.file("huge_q.npy") +
                           ": shape [0, 9223372036854775807, 9223372036854775807, 64] too large");
  EXPECT_EQ(result.err.find("non-negative"), std::string::npos) << result.err;
}

TEST_F(CliArgs, UnfusedBeyondItsLimitNamesTheFusedPath) {
  const std::string q = write("long_q.npy", {1, 1, 65536, 1});
  const CliResult result = run_cli(dir_, "attention --q '" + q + "' --k '" + q + "' --v '" + q +
                                             "' --out '" + out_ + "' --impl unfused");
  expect_error(result,
               "dfss: error: --impl unfused: unfused materializes the Lq x Lk = 65536 x "
               "65536 scores of one head (17.2 GB)");
  EXPECT_NE(result.err.find("impl = fused"), std::string::npos) << result.err;
  expect_error(run_cli(dir_, "bench attention --seq 65536 --impl unfused --heads 1 --dim 1"),
               "dfss: error: --seq 65536: --impl unfused materializes one head's scores");
}

}  // namespace
}  // namespace dfss
