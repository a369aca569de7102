// End-to-end tests of the dfss binary: real processes on real .npy files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "dfss/attention.h"
#include "dfss/compressed_scores.h"
#include "dfss/version.h"
#include "io/npy.h"
#include "io/npz.h"
#include "temp_dir.h"

namespace dfss {
namespace {

using test::CliResult;
using test::read_file;
using test::run_cli;
using test::TempDir;

constexpr std::array<int64_t, 4> kQShape{2, 3, 5, 8};
constexpr std::array<int64_t, 4> kKShape{2, 3, 7, 8};
constexpr std::array<int64_t, 4> kVShape{2, 3, 7, 4};
constexpr std::array<int64_t, 4> kOutShape{2, 3, 5, 4};

std::vector<float> random_values(std::array<int64_t, 4> shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(shape[0] * shape[1] * shape[2] * shape[3]));
  for (float& value : values) value = normal(rng);
  return values;
}

std::vector<int64_t> to_vector(std::array<int64_t, 4> shape) {
  return {shape.begin(), shape.end()};
}

std::vector<uint16_t> to_bf16(const std::vector<float>& values) {
  std::vector<uint16_t> out;
  for (float value : values) out.push_back(float_to_bf16(value));
  return out;
}

// Q, K, V written to q.npy, k.npy, v.npy in a temp dir, plus the same data in memory.
class CliTest : public testing::Test {
 protected:
  void SetUp() override {
    io::write_npy(q_path_, q_.data(), to_vector(kQShape));
    io::write_npy(k_path_, k_.data(), to_vector(kKShape));
    io::write_npy(v_path_, v_.data(), to_vector(kVShape));
  }

  std::string inputs() const {
    return "--q '" + q_path_ + "' --k '" + k_path_ + "' --v '" + v_path_ + "'";
  }

  // What the library computes for the same inputs.
  std::vector<float> expected(const AttentionOptions& options, DType dtype = DType::f32) const {
    std::vector<float> out(2 * 3 * 5 * 4);
    if (dtype == DType::bf16) {
      const auto q = to_bf16(q_), k = to_bf16(k_), v = to_bf16(v_);
      attention(const_view(q.data(), kQShape), const_view(k.data(), kKShape),
                const_view(v.data(), kVShape), mutable_view(out.data(), kOutShape), options);
    } else {
      attention(const_view(q_.data(), kQShape), const_view(k_.data(), kKShape),
                const_view(v_.data(), kVShape), mutable_view(out.data(), kOutShape), options);
    }
    return out;
  }

  // Runs `dfss attention` and returns out.npy, which must be [2, 3, 5, 4] float32.
  std::vector<float> run_attention(const std::string& extra_args) const {
    std::filesystem::remove(out_path_);
    const CliResult result =
        run_cli(dir_, "attention " + inputs() + " --out '" + out_path_ + "' " + extra_args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.err, "");
    if (result.exit_code != 0) return {};
    const io::NpyArray out = io::read_npy(out_path_);
    EXPECT_EQ(out.dtype, io::NpyDType::f32);
    EXPECT_EQ(out.shape, to_vector(kOutShape));
    return out.f32;
  }

  // What the library exports for the same inputs.
  CompressedScores expected_scores(const AttentionOptions& options) const {
    return compressed_scores(const_view(q_.data(), kQShape), const_view(k_.data(), kKShape),
                             const_view(v_.data(), kVShape), options);
  }

  TempDir dir_;
  const std::string q_path_ = dir_.file("q.npy"), k_path_ = dir_.file("k.npy"),
                    v_path_ = dir_.file("v.npy"), out_path_ = dir_.file("out.npy");
  const std::vector<float> q_ = random_values(kQShape, 1), k_ = random_values(kKShape, 2),
                           v_ = random_values(kVShape, 3);
};

// Bit-for-bit: the CLI must run exactly what the library runs.
void expect_same_bits(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  EXPECT_EQ(std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(float)), 0);
}

TEST_F(CliTest, VersionHelpAndInfoSucceed) {
  CliResult result = run_cli(dir_, "--version");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.out, std::string("dfss ") + version() + "\n");

  result = run_cli(dir_, "--help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.out.find("attention"), std::string::npos) << result.out;

  result = run_cli(dir_, "attention --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.out.find("--mask"), std::string::npos) << result.out;

  result = run_cli(dir_, "info");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find(std::string("isa detected:  ") + isa_name(detected_isa())),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find(attention_kernel_name(AttentionImpl::fused, DType::bf16)),
            std::string::npos)
      << result.out;

  result = run_cli(dir_, "--isa scalar info");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("isa in use:    scalar (--isa)"), std::string::npos) << result.out;
}

TEST_F(CliTest, AttentionEqualsTheLibrary) {
  struct Case {
    std::string args;
    AttentionImpl impl;
    DType dtype;
    bool causal;
    std::optional<float> scale;
    Isa isa;
  };
  const std::vector<Case> cases = {
      {"", AttentionImpl::fused, DType::f32, false, {}, Isa::automatic},
      {"--impl unfused --causal --scale 0.3", AttentionImpl::unfused, DType::f32, true, 0.3f,
       Isa::automatic},
      {"--impl reference", AttentionImpl::reference, DType::f32, false, {}, Isa::automatic},
      {"--dtype bf16", AttentionImpl::fused, DType::bf16, false, {}, Isa::automatic},
      {"--impl unfused --dtype bf16 --causal",
       AttentionImpl::unfused,
       DType::bf16,
       true,
       {},
       Isa::automatic},
      {"--threads 1 --isa scalar", AttentionImpl::fused, DType::f32, false, {}, Isa::scalar},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    AttentionOptions options;
    options.impl = c.impl;
    options.causal = c.causal;
    options.scale = c.scale;
    options.isa = c.isa;
    expect_same_bits(run_attention(c.args), expected(options, c.dtype));
  }
}

TEST_F(CliTest, BoolMaskEqualsFloatMask) {
  io::NpyArray bool_mask;
  bool_mask.dtype = io::NpyDType::bool_;
  bool_mask.shape = {2, 7};
  bool_mask.bool_ = {1, 1, 0, 1, 1, 1, 0, /**/ 1, 1, 1, 1, 0, 0, 0};
  std::vector<float> additive;
  for (uint8_t attend : bool_mask.bool_) {
    additive.push_back(attend ? 0.0f : -std::numeric_limits<float>::infinity());
  }
  io::write_npy(dir_.file("bool_mask.npy"), bool_mask);
  io::write_npy(dir_.file("float_mask.npy"), additive.data(), {2, 7});

  const std::vector<float> from_bool = run_attention("--mask '" + dir_.file("bool_mask.npy") + "'");
  const std::vector<float> from_float =
      run_attention("--mask '" + dir_.file("float_mask.npy") + "'");
  expect_same_bits(from_bool, from_float);
  AttentionOptions options;
  options.mask.additive = additive.data();
  expect_same_bits(from_bool, expected(options));
  // The mask must have changed something.
  EXPECT_NE(std::memcmp(from_bool.data(), expected({}).data(), from_bool.size() * 4), 0);
}

TEST_F(CliTest, ErrorsExitTwoNameTheArgumentAndWriteNothing) {
  const std::string rank2 = dir_.file("rank2.npy");
  const std::vector<float> twelve(12, 1.0f);
  io::write_npy(rank2, twelve.data(), {3, 4});
  io::NpyArray bools;
  bools.dtype = io::NpyDType::bool_;
  bools.shape = {1, 1, 1, 1};
  bools.bool_ = {1};
  const std::string bool_q = dir_.file("bool.npy");
  io::write_npy(bool_q, bools);
  const std::string garbage = dir_.file("garbage.npy");
  std::ofstream(garbage) << "not numpy";
  const std::string short_v = dir_.file("short_v.npy");
  const std::vector<float> v6(2 * 3 * 6 * 4, 1.0f);
  io::write_npy(short_v, v6.data(), {2, 3, 6, 4});
  const std::string missing = dir_.file("missing.npy");

  const std::string q = "--q '" + q_path_ + "'", k = " --k '" + k_path_ + "'",
                    v = " --v '" + v_path_ + "'";
  const std::string out = " --out '" + out_path_ + "'";
  struct Case {
    std::string args;
    std::string expected;  // in stderr
  };
  const std::vector<Case> cases = {
      {"attention " + inputs(), "--out is required"},
      {"attention " + inputs() + out + " --bogus", "--bogus"},
      {"attention --q '" + missing + "'" + k + v + out,
       "dfss: error: --q " + missing + ": cannot open: No such file or directory\n"},
      {"attention --q '" + rank2 + "'" + k + v + out,
       "dfss: error: --q " + rank2 +
           ": expected a 4-D float32 array [B, H, Lq, d], got shape [3, 4]\n"},
      {"attention --q '" + bool_q + "'" + k + v + out, "got a bool array of shape [1, 1, 1, 1]"},
      {"attention " + q + " --k '" + garbage + "'" + v + out,
       "--k " + garbage + ": not a .npy file"},
      {"attention " + q + k + " --v '" + dir_.path().string() + "'" + out,
       "--v " + dir_.path().string() + ": is a directory"},
      {"attention " + q + k + " --v '" + short_v + "'" + out, "dfss: error: "},
      {"attention " + inputs() + out + " --impl sparse",
       "dfss: error: --impl: expected one of reference, unfused, fused; got 'sparse'"},
      {"attention " + inputs() + out + " --dtype fp16",
       "dfss: error: --dtype: expected one of fp32, bf16; got 'fp16'"},
      {"attention " + inputs() + out + " --isa avx3", "dfss: error: --isa: expected one of"},
      {"attention " + inputs() + out + " --threads -1", "--threads"},
      {"attention " + inputs() + out + " --mask '" + rank2 + "'",
       "--mask " + rank2 +
           ": expected a float32 (additive) or bool (true = attend) array [B, Lk] = [2, 7]"},
      {"bench attention --impl sparse", "--impl: expected one of"},
      {"bench attention --seq 0", "--seq"},
      {"", "A subcommand is required"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const CliResult result = run_cli(dir_, c.args);
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.err.find(c.expected), std::string::npos) << result.err;
    EXPECT_FALSE(std::filesystem::exists(out_path_));
  }

  // An existing output is left alone when the command fails.
  std::ofstream(out_path_) << "keep";
  EXPECT_EQ(run_cli(dir_, "attention " + q + k + " --v '" + short_v + "'" + out).exit_code, 2);
  EXPECT_EQ(read_file(out_path_), "keep");
  // No temporary file was left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST_F(CliTest, BenchPrintsATableAndWritesJson) {
  const std::string json_path = dir_.file("bench.json");
  const CliResult result =
      run_cli(dir_,
              "bench attention --seq 16,40 --batch 1 --heads 2 --dim 8 --dtype fp32,bf16 "
              "--impl fused,unfused --reps 2 --threads 1 --causal --json '" +
                  json_path + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("peak"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("speedup"), std::string::npos) << result.out;

  const nlohmann::json json = nlohmann::json::parse(read_file(json_path));
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 8u);
  for (const nlohmann::json& row : json) {
    for (const char* key : {"impl", "dtype", "L", "ms", "gflops", "speedup_vs_unfused",
                            "max_abs_err", "pct_peak", "threads", "batch", "heads", "dim"}) {
      EXPECT_TRUE(row.contains(key)) << key;
    }
    EXPECT_GT(row["ms"].get<double>(), 0.0);
    EXPECT_EQ(row["threads"], 1);
    EXPECT_LT(row["max_abs_err"].get<double>(), row["dtype"] == "fp32" ? 1e-4 : 5e-2) << row;
    if (row["impl"] == "unfused") {
      EXPECT_DOUBLE_EQ(row["speedup_vs_unfused"].get<double>(), 1.0);
    }
  }
}

TEST_F(CliTest, PatternEqualsTheLibrary) {
  struct Case {
    std::string args;
    AttentionImpl impl;
    DType dtype;
    bool causal;
    SparsityPattern pattern;
  };
  const std::vector<Case> cases = {
      {"--pattern 2:4", AttentionImpl::fused, DType::f32, false, {2, 4}},
      {"--pattern 2:4 --impl unfused --causal", AttentionImpl::unfused, DType::f32, true, {2, 4}},
      {"--pattern 1:2 --impl reference", AttentionImpl::reference, DType::f32, false, {1, 2}},
      {"--pattern 2:8 --dtype bf16", AttentionImpl::fused, DType::bf16, false, {2, 8}},
      {"--pattern 3:8 --impl unfused", AttentionImpl::unfused, DType::f32, false, {3, 8}},
      {"--pattern dense", AttentionImpl::fused, DType::f32, false, {}},
      {"--pattern topk:5 --causal", AttentionImpl::fused, DType::f32, true,
       parse_pattern("topk:5", "test")},
      {"--pattern dsa:8:block=4 --dtype bf16", AttentionImpl::fused, DType::bf16, false,
       parse_pattern("dsa:8:block=4", "test")},
      {"--pattern topk:6 --impl reference", AttentionImpl::reference, DType::f32, false,
       parse_pattern("topk:6", "test")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    AttentionOptions options;
    options.impl = c.impl;
    options.causal = c.causal;
    options.pattern = c.pattern;
    expect_same_bits(run_attention(c.args), expected(options, c.dtype));
  }
  // Pruning must have changed something.
  AttentionOptions two_of_four;
  two_of_four.pattern = {2, 4};
  EXPECT_NE(expected(two_of_four), expected({}));
}

TEST_F(CliTest, InvalidPatternsExitTwoListingTheAcceptedForms) {
  const std::string out = " --out '" + out_path_ + "'";
  for (const std::string pattern : {"3:2", "0:4", "2:9", "4:4", "abc", "2:", ":4", "2:4:1",
                                    "topk:0", "topk:x", "dsa:24:block=16", "dsa:8:b=2"}) {
    SCOPED_TRACE(pattern);
    for (const std::string& command :
         {"attention " + inputs() + out, std::string("bench attention --seq 8 --reps 1")}) {
      const CliResult result = run_cli(dir_, command + " --pattern '" + pattern + "'");
      EXPECT_EQ(result.exit_code, 2);
      EXPECT_NE(result.err.find("--pattern: expected 'dense', 'N:M' with 1 <= N < M <= 8 "
                                "(e.g. 2:4, 1:2, 2:8), 'topk:K' or 'dsa:K[:block=B]'"),
                std::string::npos)
          << result.err;
      EXPECT_NE(result.err.find("got '" + pattern + "'"), std::string::npos) << result.err;
      EXPECT_FALSE(std::filesystem::exists(out_path_));
    }
  }
}

TEST_F(CliTest, ScoresOutRoundTripsAndMatchesTheLibrary) {
  const std::string scores_path = dir_.file("scores.npz");
  for (const SparsityPattern pattern :
       {SparsityPattern{2, 4}, SparsityPattern{1, 2}, SparsityPattern{2, 8}}) {
    for (const bool causal : {false, true}) {
      SCOPED_TRACE(pattern.to_string() + (causal ? " causal" : ""));
      AttentionOptions options;
      options.pattern = pattern;
      options.causal = causal;
      std::filesystem::remove(scores_path);
      const std::vector<float> out =
          run_attention("--pattern " + pattern.to_string() + (causal ? " --causal" : "") +
                        " --scores-out '" + scores_path + "'");
      expect_same_bits(out, expected(options));

      const CompressedScores want = expected_scores(options);
      const std::vector<io::NpzEntry> got = io::read_npz(scores_path);
      const bool two_of_four = pattern.n == 2 && pattern.m == 4;
      std::vector<std::string> names;
      for (const io::NpzEntry& entry : got) names.push_back(entry.name);
      std::vector<std::string> expected_names{"values", "columns", "in_group", "pattern"};
      if (two_of_four) expected_names.push_back("metadata");
      EXPECT_EQ(names, expected_names);

      const std::vector<int64_t> rows_shape{2, 3, 5, want.kept};
      const io::NpyArray* values = io::find_npz_array(got, "values");
      const io::NpyArray* columns = io::find_npz_array(got, "columns");
      const io::NpyArray* in_group = io::find_npz_array(got, "in_group");
      const io::NpyArray* pattern_array = io::find_npz_array(got, "pattern");
      ASSERT_TRUE(values && columns && in_group && pattern_array);
      EXPECT_EQ(values->dtype, io::NpyDType::f32);
      EXPECT_EQ(values->shape, rows_shape);
      expect_same_bits(values->f32, want.values);
      EXPECT_EQ(columns->dtype, io::NpyDType::i32);
      EXPECT_EQ(columns->shape, rows_shape);
      EXPECT_EQ(columns->i32, want.columns);
      EXPECT_EQ(in_group->dtype, io::NpyDType::i32);
      EXPECT_EQ(in_group->shape, rows_shape);
      ASSERT_EQ(in_group->i32.size(), want.columns.size());
      for (size_t i = 0; i < want.columns.size(); ++i) {
        EXPECT_EQ(in_group->i32[i], want.columns[i] % pattern.m);
      }
      EXPECT_EQ(pattern_array->dtype, io::NpyDType::i32);
      EXPECT_EQ(pattern_array->shape, std::vector<int64_t>{2});
      EXPECT_EQ(pattern_array->i32, (std::vector<int32_t>{pattern.n, pattern.m}));
      if (!two_of_four) continue;

      const io::NpyArray* metadata = io::find_npz_array(got, "metadata");
      ASSERT_NE(metadata, nullptr);
      EXPECT_EQ(metadata->dtype, io::NpyDType::u16);
      // Lk = 7: two groups of 4 (the second padded), one 16-bit word per row.
      EXPECT_EQ(metadata->shape, (std::vector<int64_t>{2, 3, 5, 1}));
      EXPECT_EQ(metadata->u16, want.metadata);
      // Each group's code is lo | hi << 2 of its two kept in-group positions.
      const int64_t groups = want.kept / 2;
      for (int64_t row = 0; row < 2 * 3 * 5; ++row) {
        uint16_t word = 0;
        for (int64_t g = 0; g < groups; ++g) {
          const int32_t lo = in_group->i32[row * want.kept + 2 * g];
          const int32_t hi = in_group->i32[row * want.kept + 2 * g + 1];
          EXPECT_LT(lo, hi);
          word |= static_cast<uint16_t>((lo | hi << 2) << (4 * g));
        }
        EXPECT_EQ(metadata->u16[row], word) << "row " << row;
      }
    }
  }
}

TEST_F(CliTest, ScoresOutWithoutAPatternExitsTwoAndCreatesNothing) {
  const std::string scores_path = dir_.file("scores.npz");
  for (const std::string pattern :
       {"", " --pattern dense", " --pattern topk:4", " --pattern dsa:4"}) {
    SCOPED_TRACE(pattern);
    const CliResult result = run_cli(dir_, "attention " + inputs() + " --out '" + out_path_ +
                                               "' --scores-out '" + scores_path + "'" + pattern);
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_NE(result.err.find("dfss: error: --scores-out: needs an N:M --pattern"),
              std::string::npos)
        << result.err;
    EXPECT_FALSE(std::filesystem::exists(out_path_));
    EXPECT_FALSE(std::filesystem::exists(scores_path));
  }
  // An unwritable --scores-out fails before --out is written.
  const CliResult result =
      run_cli(dir_, "attention " + inputs() + " --out '" + out_path_ + "' --pattern 2:4" +
                        " --scores-out '" + dir_.file("missing/scores.npz") + "'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--scores-out " + dir_.file("missing/scores.npz")), std::string::npos)
      << result.err;
  EXPECT_FALSE(std::filesystem::exists(out_path_));
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
}

TEST_F(CliTest, BenchWithSelectingPatternsReportsRecallAndDenseError) {
  const std::string json_path = dir_.file("bench.json");
  const CliResult result =
      run_cli(dir_,
              "bench attention --seq 200 --heads 2 --reps 1 --threads 1 "
              "--dtype fp32 --pattern topk:16,dsa:32:block=8,topk:200 --json '" +
                  json_path + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("recall"), std::string::npos) << result.out;
  const nlohmann::json json = nlohmann::json::parse(read_file(json_path));
  ASSERT_EQ(json.size(), 7u);  // fused dense + {3 patterns} x {fused, unfused}
  for (const nlohmann::json& row : json) {
    SCOPED_TRACE(row.dump());
    EXPECT_LT(row["max_abs_err"].get<double>(), 1e-4);
    const double kept_mass = row["kept_mass"].get<double>();
    if (row["pattern"] == "dense") {
      EXPECT_TRUE(row["recall"].is_null());
      EXPECT_TRUE(row["err_vs_dense"].is_null());
      continue;
    }
    const double recall = row["recall"].get<double>(), error = row["err_vs_dense"].get<double>();
    if (row["pattern"] == "topk:200") {  // K = L: dense (the mass summed in another order)
      EXPECT_NEAR(kept_mass, 1.0, 1e-12);
      EXPECT_LT(error, 1e-5);
    } else {
      EXPECT_GT(kept_mass, 0.0);
      EXPECT_LT(kept_mass, 1.0);
      EXPECT_GT(error, 1e-4);  // sparse attention differs from dense
    }
    if (row["pattern"] == "dsa:32:block=8") {
      EXPECT_GT(recall, 0.0);
      EXPECT_LE(recall, 1.0);
    } else {
      EXPECT_DOUBLE_EQ(recall, 1.0);  // topk's own set
    }
  }
}

TEST_F(CliTest, BenchWithPatternsReportsSpeedupAndKeptMass) {
  const std::string json_path = dir_.file("bench.json");
  CliResult result = run_cli(dir_,
                             "bench attention --seq 64 --heads 2 --reps 1 --threads 1 "
                             "--pattern dense,2:4 --json '" +
                                 json_path + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("kept_mass"), std::string::npos) << result.out;
  nlohmann::json json = nlohmann::json::parse(read_file(json_path));
  ASSERT_TRUE(json.is_array());
  ASSERT_EQ(json.size(), 8u);  // {fp32, bf16} x {dense, 2:4} x {fused, unfused}
  for (const nlohmann::json& row : json) {
    SCOPED_TRACE(row.dump());
    for (const char* key : {"pattern", "speedup_vs_dense_fused", "kept_mass", "cpu"}) {
      EXPECT_TRUE(row.contains(key)) << key;
    }
    const double speedup = row["speedup_vs_dense_fused"].get<double>();
    const double kept_mass = row["kept_mass"].get<double>();
    EXPECT_GT(speedup, 0.0);
    EXPECT_GT(row["speedup_vs_unfused"].get<double>(), 0.0);
    EXPECT_GT(kept_mass, 0.0);
    EXPECT_LE(kept_mass, 1.0);
    EXPECT_LT(row["max_abs_err"].get<double>(), row["dtype"] == "fp32" ? 1e-4 : 5e-2);
    if (row["pattern"] == "dense") {
      EXPECT_EQ(kept_mass, 1.0);
      if (row["impl"] == "fused") {
        EXPECT_DOUBLE_EQ(speedup, 1.0);
      }
    } else {
      EXPECT_EQ(row["pattern"], "2:4");
      // Each group of 4 keeps at least half of its own mass, so the row keeps at least half.
      EXPECT_GE(kept_mass, 0.5);
      EXPECT_LT(kept_mass, 1.0);
    }
    if (row["impl"] == "unfused") {
      EXPECT_DOUBLE_EQ(row["speedup_vs_unfused"].get<double>(), 1.0);
    }
  }

  // Fused dense is added as the baseline when only sparse patterns are asked for...
  result = run_cli(dir_,
                   "bench attention --seq 64 --heads 2 --reps 1 --threads 1 --dtype fp32 "
                   "--impl unfused --pattern 1:2 --causal --json '" +
                       json_path + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json = nlohmann::json::parse(read_file(json_path));
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["impl"], "fused");
  EXPECT_EQ(json[0]["pattern"], "dense");
  EXPECT_TRUE(json[0]["speedup_vs_unfused"].is_null());
  EXPECT_EQ(json[1]["pattern"], "1:2");
  EXPECT_GT(json[1]["speedup_vs_dense_fused"].get<double>(), 0.0);
  EXPECT_GE(json[1]["kept_mass"].get<double>(), 0.5);
  EXPECT_LT(json[1]["max_abs_err"].get<double>(), 1e-4);

  // ...but not for dense alone, where the ratio is then unknown.
  result = run_cli(dir_,
                   "bench attention --seq 16 --heads 1 --reps 1 --threads 1 --dtype fp32 "
                   "--impl unfused --json '" +
                       json_path + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  json = nlohmann::json::parse(read_file(json_path));
  ASSERT_EQ(json.size(), 1u);
  EXPECT_TRUE(json[0]["speedup_vs_dense_fused"].is_null());
  EXPECT_NE(result.out.find(" - "), std::string::npos) << result.out;
}

}  // namespace
}  // namespace dfss
