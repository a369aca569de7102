// Results of `dfss bench attention` and their two renderings: a text table and JSON.
// A new dimension (e.g. the N:M pattern) is one more BenchCase field and one more column.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dfss/attention.h"

namespace dfss::cli {

struct BenchSetup {
  int64_t batch = 1, heads = 12, dim = 64;
  int threads = 1;  // resolved
  bool causal = false;
  Isa isa = Isa::scalar;  // resolved
  std::string cpu;        // model name, for plots of the results
};

struct BenchCase {
  AttentionImpl impl = AttentionImpl::fused;
  DType dtype = DType::f32;
  int64_t seq = 0;  // Lq = Lk
  SparsityPattern pattern;
};

struct BenchResult {
  BenchCase config;
  double ms = 0.0;  // median
  int reps = 0;     // timed runs behind the median
  double gflops = 0.0;
  double pct_peak = 0.0;
  std::optional<double> speedup_vs_unfused;      // unfused ms / this ms, same dtype, L, pattern
  std::optional<double> speedup_vs_dense_fused;  // dense fused ms / this ms, same dtype and L
  double max_abs_err = 0.0;  // vs the reference with the same pattern on sampled query rows
  double kept_mass = 1.0;    // mean dense softmax mass of the kept entries, sampled rows
  std::optional<double>
      dense_rel_err;             // sparse patterns: ||out - dense|| / ||dense||, sampled rows
  std::optional<double> recall;  // topk:K, dsa:K: share of exact top-K keys kept, sampled rows
};

// Dense-equivalent FLOPs of one attention call: 4 * B * H * L * L * d (also when causal).
double attention_flops(const BenchSetup& setup, int64_t seq);

void print_table_header();
void print_table_row(const BenchResult& result);

// An array with one object per result.
nlohmann::json results_json(const std::vector<BenchResult>& results, const BenchSetup& setup);

}  // namespace dfss::cli
