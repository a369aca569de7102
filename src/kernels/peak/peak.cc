#include "kernels/peak/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "dfss/errors.h"
#include "kernels/peak/peak_loops.h"

namespace dfss::kernels {
namespace {

using Loop = double (*)(int64_t iterations, float* sink);
using Clock = std::chrono::steady_clock;

Loop select_loop(Isa isa, bool bf16) {
  switch (isa) {
    case Isa::avx512_bf16:
      return bf16 ? avx512_bf16::fma_peak_loop_bf16 : avx512::fma_peak_loop_f32;
    case Isa::avx512: return avx512::fma_peak_loop_f32;
    case Isa::avx2: return avx2::fma_peak_loop_f32;
    case Isa::automatic:
    case Isa::scalar: break;
  }
  return scalar::fma_peak_loop_f32;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Iterations that take about `seconds` on one thread, from a doubling probe.
int64_t calibrate(Loop loop, double seconds) {
  float sink = 0.0f;
  for (int64_t iterations = 1024;; iterations *= 2) {
    const Clock::time_point start = Clock::now();
    loop(iterations, &sink);
    const double elapsed = seconds_since(start);
    if (elapsed > 0.01 || iterations > (int64_t{1} << 40)) {
      return std::max<int64_t>(1, static_cast<int64_t>(iterations * seconds / elapsed));
    }
  }
}

}  // namespace

double measure_fma_peak_gflops(Isa isa, bool bf16, int threads) {
  const Loop loop = select_loop(resolve_isa(isa), bf16);
  if (threads <= 0) threads = omp_get_max_threads();
  // libgomp crashes rather than fails when it cannot create that many threads.
  constexpr int kMaxThreads = 1024;
  if (threads > kMaxThreads) {
    throw InvalidArgument("threads: expected at most " + std::to_string(kMaxThreads) + ", got " +
                          std::to_string(threads));
  }
  // Three ~50 ms trials, keeping the best: on a shared machine a neighbour's burst should
  // not lower the peak.
  constexpr int kTrials = 3;
  const int64_t iterations = calibrate(loop, 0.05);

  double best = 0.0;
  for (int trial = 0; trial < kTrials; ++trial) {
    double total_flops = 0.0;
    Clock::time_point start;
#pragma omp parallel num_threads(threads) reduction(+ : total_flops)
    {
      float sink = 0.0f;
      // Brings every core up to its vector clock before the timed part.
      if (trial == 0) loop(iterations / 2, &sink);
#pragma omp barrier
#pragma omp master
      start = Clock::now();
      total_flops += loop(iterations, &sink);
    }
    // The parallel region ends with a barrier: the slowest thread bounds the time.
    best = std::max(best, total_flops / seconds_since(start) * 1e-9);
  }
  return best;
}

}  // namespace dfss::kernels
