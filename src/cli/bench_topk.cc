// `dfss bench topk`: dfss's top-k selection against the standard-library ways of doing it
// (std::nth_element + sort, std::partial_sort, a bounded heap), all with the same rank
// order and the same row batching over threads, in one run; and the unordered selection of
// the attention patterns (topk::find_cut + write_selected: the top k's indices in index
// order) against std::nth_element + a sort of the k indices. Every method's output is
// checked against dfss's.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_common.h"
#include "cli/commands.h"
#include "dfss/errors.h"
#include "dfss/topk.h"
#include "dfss/version.h"
#include "kernels/topk/topk_kernels.h"
#include "topk/topk_select.h"

namespace dfss::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMinReps = 3;  // timed runs of a case, at least; then until --seconds have passed
constexpr int64_t kElementsPerCall = int64_t{1} << 22;  // rows per call: about 4M elements

struct Candidate {
  float key;
  int32_t index;
};
struct RanksHigher {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.key > b.key || (a.key == b.key && a.index < b.index);
  }
};
float selection_key(float x) {
  return std::isnan(x) ? INFINITY : x;
}

// One baseline: fills the (key, index) pairs of a row, then selects with a std algorithm.
using RowSelect = std::function<void(std::vector<Candidate>&, int64_t k)>;

const std::vector<std::pair<std::string, RowSelect>>& baselines() {
  static const std::vector<std::pair<std::string, RowSelect>> all = {
      {"nth_element+sort",
       [](std::vector<Candidate>& c, int64_t k) {
         std::nth_element(c.begin(), c.begin() + (k - 1), c.end(), RanksHigher{});
         std::sort(c.begin(), c.begin() + k, RanksHigher{});
       }},
      {"partial_sort",
       [](std::vector<Candidate>& c, int64_t k) {
         std::partial_sort(c.begin(), c.begin() + k, c.end(), RanksHigher{});
       }},
      {"heap",
       [](std::vector<Candidate>& c, int64_t k) {
         // A heap of the k best so far whose top is the worst of them.
         std::priority_queue<Candidate, std::vector<Candidate>, RanksHigher> best(
             RanksHigher{}, std::vector<Candidate>(c.begin(), c.begin() + k));
         for (size_t j = static_cast<size_t>(k); j < c.size(); ++j) {
           if (RanksHigher{}(c[j], best.top())) {
             best.pop();
             best.push(c[j]);
           }
         }
         for (int64_t i = k - 1; i >= 0; --i) {
           c[static_cast<size_t>(i)] = best.top();
           best.pop();
         }
       }},
  };
  return all;
}

void run_baseline(const RowSelect& select, const std::vector<float>& x, int64_t rows,
                  int64_t length, int64_t k, int threads, std::vector<float>& values,
                  std::vector<int32_t>& indices) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<Candidate> candidates;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * length;
      candidates.resize(static_cast<size_t>(length));
      for (int64_t j = 0; j < length; ++j)
        candidates[j] = {selection_key(row[j]), static_cast<int32_t>(j)};
      select(candidates, k);
      for (int64_t i = 0; i < k; ++i) {
        indices[r * k + i] = candidates[i].index;
        values[r * k + i] = row[candidates[i].index];
      }
    }
  }
}

// The unordered selection: dfss's cut and indices in index order, or the same from
// std::nth_element and a sort of the k indices.
void run_unordered_dfss(const kernels::TopkKernels& kernels, const std::vector<float>& x,
                        int64_t rows, int64_t length, int64_t k, int threads,
                        std::vector<int32_t>& indices) {
#pragma omp parallel num_threads(threads)
  {
    topk::SelectScratch scratch;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * length;
      const topk::Cut cut = topk::find_cut(kernels, row, length, k, scratch);
      topk::write_selected(kernels, row, length, cut, indices.data() + r * k);
    }
  }
}

void run_unordered_baseline(const std::vector<float>& x, int64_t rows, int64_t length, int64_t k,
                            int threads, std::vector<int32_t>& indices) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<Candidate> candidates;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x.data() + r * length;
      candidates.resize(static_cast<size_t>(length));
      for (int64_t j = 0; j < length; ++j)
        candidates[j] = {selection_key(row[j]), static_cast<int32_t>(j)};
      std::nth_element(candidates.begin(), candidates.begin() + (k - 1), candidates.end(),
                       RanksHigher{});
      int32_t* out = indices.data() + r * k;
      for (int64_t i = 0; i < k; ++i) out[i] = candidates[i].index;
      std::sort(out, out + k);
    }
  }
}

std::vector<float> make_rows(const std::string& kind, int64_t rows, int64_t length) {
  std::mt19937_64 rng(0x70b + static_cast<uint64_t>(length));
  std::vector<float> x(static_cast<size_t>(rows * length));
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> few(0, 15);
  constexpr int64_t kScoreDim = 64;
  std::vector<float> q(kScoreDim), key(kScoreDim);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * length;
    if (kind == "scores") {
      for (float& v : q) v = normal(rng);
    }
    for (int64_t j = 0; j < length; ++j) {
      if (kind == "uniform")
        row[j] = uniform(rng);
      else if (kind == "normal")
        row[j] = normal(rng);
      else if (kind == "sorted")
        row[j] = static_cast<float>(j);
      else if (kind == "reversed")
        row[j] = static_cast<float>(length - j);
      else if (kind == "duplicates")
        row[j] = static_cast<float>(few(rng));
      else {
        // q·k / sqrt(d) of Gaussian q and k, with every 64th key near q (a few strong
        // keys, as attention rows have).
        const bool strong = j % 64 == 0;
        float dot = 0.0f;
        for (int64_t c = 0; c < kScoreDim; ++c) {
          const float kc = strong ? q[c] + 0.5f * normal(rng) : normal(rng);
          dot += q[c] * kc;
        }
        row[j] = dot / 8.0f;
      }
    }
  }
  return x;
}

// "N" or "L/N" (N >= 1) for a row of `length`.
int64_t parse_k(const std::string& text, int64_t length) {
  const bool per_length = text.rfind("L/", 0) == 0;
  const std::string number = per_length ? text.substr(2) : text;
  int64_t n = 0;
  const char* end = number.data() + number.size();
  const auto [stop, error] = std::from_chars(number.data(), end, n);
  if (number.empty() || error != std::errc() || stop != end || n < 1)
    throw InvalidArgument("--k: expected N or L/N with N >= 1, got '" + text + "'");
  return per_length ? std::max<int64_t>(1, length / n) : n;
}

template <typename Call>
double median_ms(double budget_seconds, Call&& call) {
  call();  // warm-up: first touch of the outputs and scratch
  std::vector<double> ms;
  const auto start = Clock::now();
  while (static_cast<int>(ms.size()) < kMinReps ||
         std::chrono::duration<double>(Clock::now() - start).count() < budget_seconds) {
    const auto t0 = Clock::now();
    call();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (ms.size() >= 51) break;
  }
  return median(ms);
}

}  // namespace

void add_bench_topk_options(CLI::App& command, BenchTopkArgs& args) {
  // Lists take commas as `bench attention`'s do, or spaces.
  command.add_option("--lengths", args.lengths, "row lengths L")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{INT32_MAX}))
      ->capture_default_str();
  command.add_option("--k", args.ks, "k per row: N, or L/N")->delimiter(',')->capture_default_str();
  command
      .add_option("--rows", args.rows,
                  "rows per call (0: about 4M elements per call, at least 2 rows)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30))
      ->capture_default_str();
  command
      .add_option("--distributions", args.distributions,
                  "uniform, normal, sorted, reversed, duplicates, scores")
      ->delimiter(',')
      ->check(CLI::IsMember({"uniform", "normal", "sorted", "reversed", "duplicates", "scores"}))
      ->capture_default_str();
  command
      .add_option("--methods", args.methods,
                  "baselines (nth_element+sort, partial_sort, heap) and unordered (dfss's "
                  "find_cut + write_selected against std::nth_element + a sort of the k indices)")
      ->delimiter(',')
      ->check(CLI::IsMember({"nth_element+sort", "partial_sort", "heap", "unordered"}))
      ->capture_default_str();
  command.add_option("--seconds", args.seconds, "time per method and case, after 3 timed runs")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  command.add_option("--threads", args.threads, "0: OpenMP's default")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  command.add_option("--json", args.json, "also write the results as JSON");
}

void run_bench_topk(const BenchTopkArgs& args, Isa isa) {
  if (!args.json.empty()) check_output_file(args.json, "--json");
  for (const std::string& text : args.ks) parse_k(text, 1);  // bad values fail before the run
  require_threads_arg(args.threads);
  const Isa resolved = resolve_isa(isa);
  const int threads = args.threads > 0 ? args.threads : std::max(1, omp_get_max_threads());
  std::printf("dfss %s bench topk: isa %s, %d threads, cpu %s\n", version(), isa_name(resolved),
              threads, cpu_model_name().c_str());
  std::printf("%-10s %8s %7s %6s | %10s | %-16s %10s %8s\n", "data", "L", "k", "rows", "dfss ms",
              "baseline", "ms", "x dfss");
  if (std::find(args.methods.begin(), args.methods.end(), "unordered") != args.methods.end())
    std::printf(
        "(unordered:nth rows: dfss ms is topk::find_cut + write_selected, the indices "
        "in index order; the baseline std::nth_element + a sort of the k indices)\n");
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& kind : args.distributions) {
    for (int64_t length : args.lengths) {
      const int64_t rows =
          args.rows > 0 ? args.rows : std::max<int64_t>(2, kElementsPerCall / length);
      const std::vector<float> x = make_rows(kind, rows, length);
      std::vector<int64_t> ks;
      for (const std::string& text : args.ks) {
        const int64_t k = std::min(parse_k(text, length), length);
        if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
      }
      for (int64_t k : ks) {
        std::vector<float> values(static_cast<size_t>(rows * k)), other_values(values.size());
        std::vector<int32_t> indices(values.size()), other_indices(values.size());
        const double dfss_ms = median_ms(args.seconds, [&] {
          topk_rows(x.data(), rows, length, length, k, values.data(), indices.data(),
                    {resolved, threads});
        });
        nlohmann::json row = {{"distribution", kind},
                              {"length", length},
                              {"k", k},
                              {"rows", rows},
                              {"dfss_ms", dfss_ms}};
        for (const auto& [name, select] : baselines()) {
          if (std::find(args.methods.begin(), args.methods.end(), name) == args.methods.end())
            continue;
          const double ms = median_ms(args.seconds, [&] {
            run_baseline(select, x, rows, length, k, threads, other_values, other_indices);
          });
          if (other_indices != indices)
            throw Error("bench topk: " + name + " disagrees with dfss on " + kind + " L " +
                        std::to_string(length) + " k " + std::to_string(k));
          std::printf("%-10s %8lld %7lld %6lld | %10.3f | %-16s %10.3f %7.2fx\n", kind.c_str(),
                      static_cast<long long>(length), static_cast<long long>(k),
                      static_cast<long long>(rows), dfss_ms, name.c_str(), ms, ms / dfss_ms);
          row[name + "_ms"] = ms;
        }
        if (std::find(args.methods.begin(), args.methods.end(), "unordered") !=
            args.methods.end()) {
          const kernels::TopkKernels& kernels = kernels::topk_kernels(resolved);
          std::vector<int32_t> selected(values.size()), other_selected(values.size());
          const double unordered_ms = median_ms(args.seconds, [&] {
            run_unordered_dfss(kernels, x, rows, length, k, threads, selected);
          });
          const double ms = median_ms(args.seconds, [&] {
            run_unordered_baseline(x, rows, length, k, threads, other_selected);
          });
          for (int64_t r = 0; r < rows; ++r)
            std::sort(indices.begin() + r * k, indices.begin() + (r + 1) * k);
          if (selected != indices || other_selected != indices)
            throw Error("bench topk: the unordered selections disagree with dfss's top k on " +
                        kind + " L " + std::to_string(length) + " k " + std::to_string(k));
          std::printf("%-10s %8lld %7lld %6lld | %10.3f | %-16s %10.3f %7.2fx\n", kind.c_str(),
                      static_cast<long long>(length), static_cast<long long>(k),
                      static_cast<long long>(rows), unordered_ms, "unordered:nth", ms,
                      ms / unordered_ms);
          row["unordered_dfss_ms"] = unordered_ms;
          row["unordered_nth_element_ms"] = ms;
        }
        std::fflush(stdout);
        results.push_back(row);
      }
    }
  }
  if (!args.json.empty()) {
    const nlohmann::json doc = {{"dfss_version", version()},
                                {"isa", isa_name(resolved)},
                                {"threads", threads},
                                {"cpu", cpu_model_name()},
                                {"results", results}};
    write_text_file(args.json, doc.dump(2) + "\n", "--json");
  }
}

}  // namespace dfss::cli
