// The attention API's guards: non-finite masks, sizes whose products overflow, the unfused
// implementation's memory limit, and thread counts the process cannot start.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/debug_assert.h"
#include "dfss/attention.h"
#include "dfss/compressed_scores.h"
#include "dfss/errors.h"

namespace dfss {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();

// Runs `call`, which must throw E; returns its message.
template <typename E, typename Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

// q, k, v [1, 1, 4, 2] of ones and an output, for mask checks.
struct SmallProblem {
  std::vector<float> q = std::vector<float>(8, 1.0f), k = q, v = q, out = q;
  void run(const AttentionOptions& options) {
    attention(const_view(q.data(), {1, 1, 4, 2}), const_view(k.data(), {1, 1, 4, 2}),
              const_view(v.data(), {1, 1, 4, 2}), mutable_view(out.data(), {1, 1, 4, 2}), options);
  }
};

TEST(AttentionGuard, ScoreMaskWithNanOrPlusInfIsRefusedNamingTheIndex) {
  for (AttentionImpl impl :
       {AttentionImpl::reference, AttentionImpl::unfused, AttentionImpl::fused}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), kInf}) {
      SmallProblem problem;
      std::vector<float> mask(16, 0.0f);
      mask[1 * 4 + 2] = -kInf;  // allowed: masks the score
      mask[2 * 4 + 3] = bad;
      AttentionOptions options;
      options.impl = impl;
      options.score_mask = const_view(mask.data(), {1, 1, 4, 4});
      problem.out.assign(8, 7.0f);
      const std::string message = message_of<InvalidArgument>([&] { problem.run(options); });
      EXPECT_NE(message.find("options.score_mask: expected finite values or -inf (masked), got " +
                             std::string(std::isnan(bad) ? "nan" : "inf") + " at [0, 0, 2, 3]"),
                std::string::npos)
          << message;
      EXPECT_EQ(problem.out, std::vector<float>(8, 7.0f)) << "out was written";
    }
  }
}

TEST(AttentionGuard, BroadcastScoreMaskIsCheckedOnceAndMinusInfIsAccepted) {
  SmallProblem problem;
  std::vector<float> row{0.0f, -kInf, 1.5f, -kInf};
  AttentionOptions options;
  // One row broadcast over batch, heads and query rows.
  options.score_mask = {row.data(), DType::f32, {1, 1, 4, 4}, {0, 0, 0, 1}};
  problem.run(options);
  for (float value : problem.out) EXPECT_TRUE(std::isfinite(value));
  row[2] = std::numeric_limits<float>::quiet_NaN();
  const std::string message = message_of<InvalidArgument>([&] { problem.run(options); });
  EXPECT_NE(message.find("got nan at [0, 0, 0, 2]"), std::string::npos) << message;
}

TEST(AttentionGuard, KeyPaddingMaskWithNanOrPlusInfIsRefused) {
  SmallProblem problem;
  std::vector<float> mask{0.0f, -kInf, kInf, 0.0f};
  AttentionOptions options;
  options.mask.additive = mask.data();
  const std::string message = message_of<InvalidArgument>([&] { problem.run(options); });
  EXPECT_NE(message.find("options.mask.additive: expected finite values or -inf (masked), got "
                         "inf at [0, 2]"),
            std::string::npos)
      << message;
  mask[2] = -3.0f;
  problem.run(options);
}

TEST(AttentionGuard, ShapesWhoseStridesOverflowAreTooLarge) {
  // Empty, yet its row-major strides do not fit in 64 bits.
  const std::array<int64_t, 4> shape{0, kHuge, kHuge, 64};
  const std::string message = message_of<InvalidArgument>([&] { contiguous_strides(shape); });
  EXPECT_NE(message.find("shape [0, 9223372036854775807, 9223372036854775807, 64] too large"),
            std::string::npos)
      << message;
  EXPECT_THROW(contiguous_strides({1, 2, kHuge / 2 + 1, 2}), InvalidArgument);
  EXPECT_EQ(contiguous_strides({3, 0, 5, 7}), (std::array<int64_t, 4>{0, 35, 7, 1}));
  EXPECT_EQ(contiguous_strides({kHuge, 1, 1, 1})[0], 1);  // axis 0's stride needs no product
  // Element counts: 0 with an empty axis wherever it is, else checked.
  EXPECT_EQ(shape_numel({kHuge, kHuge, 0, 64}), 0);
  EXPECT_EQ(shape_numel({2, 3, 4, 5}), 120);
  EXPECT_THROW(shape_numel({kHuge, 2, 1, 1}), InvalidArgument);
  const TensorView empty{nullptr, DType::f32, {kHuge, kHuge, 0, 64}, {0, 0, 0, 1}};
  EXPECT_EQ(empty.numel(), 0);
}

TEST(AttentionGuard, EmptyProblemsWithHugeDimensionsAreValid) {
  // q [huge, huge, 0, 8]: no element, so nothing to do; the log-sum-exp count is computed
  // without overflow (it once multiplied B * H first).
  const ConstTensorView q{nullptr, DType::f32, {kHuge, kHuge, 0, 8}, {0, 0, 0, 1}};
  const ConstTensorView k{nullptr, DType::f32, {kHuge, 1, 0, 8}, {0, 0, 0, 1}};
  const ConstTensorView v{nullptr, DType::f32, {kHuge, 1, 0, 8}, {0, 0, 0, 1}};
  const TensorView out{nullptr, DType::f32, {kHuge, kHuge, 0, 8}, {0, 0, 0, 1}};
  float lse = 0.0f;
  AttentionOptions options;
  options.log_sum_exp = &lse;
  EXPECT_NO_THROW(attention(q, k, v, out, options));
}

TEST(AttentionGuard, EmptyBackwardWithHugeDimensionsIsValid) {
  // B * Hq overflows; the row count must still be computed as 0 (UBSan checks the products).
  const std::array<int64_t, 4> q_shape{kHuge, kHuge, 0, 8}, kv_shape{kHuge, 1, 0, 8};
  const ConstTensorView q{nullptr, DType::f32, q_shape, {0, 0, 0, 1}};
  const ConstTensorView kv{nullptr, DType::f32, kv_shape, {0, 0, 0, 1}};
  const TensorView dq{nullptr, DType::f32, q_shape, {0, 0, 0, 1}};
  const TensorView dkv{nullptr, DType::f32, kv_shape, {0, 0, 0, 1}};
  EXPECT_NO_THROW(attention_backward(q, kv, kv, q, q, nullptr, dq, dkv, dkv));
}

TEST(AttentionGuard, UnfusedRefusesScoreMatricesBeyondItsLimitNamingFused) {
  // Lq = Lk = 65536: 17 GB of scores per head. The inputs are small (d = dv = 1).
  const int64_t length = 65536;
  std::vector<float> q(length, 0.5f), k = q, v = q, out(length, 7.0f);
  const std::array<int64_t, 4> shape{1, 1, length, 1};
  AttentionOptions options;
  options.impl = AttentionImpl::unfused;
  const std::string message = message_of<InvalidArgument>([&] {
    attention(const_view(q.data(), shape), const_view(k.data(), shape), const_view(v.data(), shape),
              mutable_view(out.data(), shape), options);
  });
  EXPECT_NE(message.find("options.impl: unfused materializes the Lq x Lk = 65536 x 65536 scores "
                         "of one head (17.2 GB), more than the limit of 4.3 GB"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("impl = fused"), std::string::npos) << message;
  EXPECT_EQ(out, std::vector<float>(length, 7.0f));
  // N:M keeps fewer entries, but 1:2 still 8.6 GB of values and columns.
  options.pattern = {1, 2};
  EXPECT_THROW(attention(const_view(q.data(), shape), const_view(k.data(), shape),
                         const_view(v.data(), shape), mutable_view(out.data(), shape), options),
               InvalidArgument);
  // The compressed-score export materializes the same buffers.
  const std::string export_message = message_of<InvalidArgument>([&] {
    compressed_scores(const_view(q.data(), shape), const_view(k.data(), shape),
                      const_view(v.data(), shape), options);
  });
  EXPECT_NE(export_message.find("compressed scores: the export materializes"), std::string::npos)
      << export_message;
}

TEST(AttentionGuard, ThreadCountAboveTheBoundIsRefused) {
  SmallProblem problem;
  AttentionOptions options;
  options.threads = kMaxThreads + 1;
  const std::string message = message_of<InvalidArgument>([&] { problem.run(options); });
  EXPECT_NE(message.find("options.threads: expected 0 (OpenMP default) to 1024, got 1025"),
            std::string::npos)
      << message;
}

// The process's virtual memory in bytes, from /proc/self/status.
uint64_t virtual_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  uint64_t kilobytes = 0;
  while (status >> key) {
    if (key == "VmSize:") {
      status >> kilobytes;
      break;
    }
  }
  return kilobytes * 1024;
}

// In a child: lowers the address-space limit to leave room for a small problem but not for
// 1000 thread stacks of OpenMP's default size, then runs one with 1000 threads. Exits 0
// when the library threw Unsupported naming the thread count.
[[noreturn]] void run_with_threads_beyond_the_address_space() {
  const uint64_t bytes = virtual_memory_bytes() + (256u << 20);
  const rlimit limit{bytes, bytes};
  if (setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
  SmallProblem problem;
  AttentionOptions options;
  options.threads = 1000;
  try {
    problem.run(options);
  } catch (const Unsupported& e) {
    const bool named =
        std::string(e.what()).find("options.threads = 1000: cannot start 1000 threads") !=
        std::string::npos;
    std::_Exit(named ? 0 : 4);
  }
  std::_Exit(5);
}

// libgomp ends the process ("Thread creation failed", exit 1) when it cannot start a
// region's threads; the library must throw instead.
TEST(AttentionGuardDeathTest, ThreadsThatCannotStartThrowInsteadOfExiting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_with_threads_beyond_the_address_space(), testing::ExitedWithCode(0), "");
}

// The debug-assert layer: active in DFSS_DEBUG_ASSERTS (and sanitizer) builds, where a
// broken invariant aborts naming itself; compiled out otherwise, condition not evaluated.
TEST(AttentionGuardDeathTest, DebugAssertsAbortWhenOnAndCostNothingWhenOff) {
  int evaluated = 0;
  const auto broken = [&] { return ++evaluated == 0; };
#if DFSS_DEBUG_ASSERTS
  EXPECT_DEATH(DFSS_DEBUG_ASSERT(broken()),
               "internal error: .*DFSS_DEBUG_ASSERT\\(broken\\(\\)\\) failed");
  DFSS_DEBUG_ASSERT(!broken());
  EXPECT_EQ(evaluated, 1);
#else
  DFSS_DEBUG_ASSERT(broken());
  EXPECT_EQ(evaluated, 0);
#endif
}

}  // namespace
}  // namespace dfss
