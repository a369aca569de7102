#include "cli/bench_report.h"

#include <cstdio>
#include <functional>
#include <string>

#include "cli/commands.h"

namespace dfss::cli {
namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

struct Column {
  const char* header;
  int width;  // negative: left-aligned
  std::function<std::string(const BenchResult&)> cell;
};

const std::vector<Column>& columns() {
  static const std::vector<Column> table = {
      {"impl", -8, [](const BenchResult& r) { return std::string(impl_name(r.config.impl)); }},
      {"pattern", -16, [](const BenchResult& r) { return r.config.pattern.to_string(); }},
      {"dtype", -5,
       [](const BenchResult& r) { return std::string(dtype_arg_name(r.config.dtype)); }},
      {"L", 6, [](const BenchResult& r) { return std::to_string(r.config.seq); }},
      {"ms", 10, [](const BenchResult& r) { return format("%.3f", r.ms); }},
      {"GFLOP/s", 9, [](const BenchResult& r) { return format("%.1f", r.gflops); }},
      {"%peak", 6, [](const BenchResult& r) { return format("%.1f", r.pct_peak); }},
      {"speedup", 8,
       [](const BenchResult& r) {
         return r.speedup_vs_unfused ? format("%.2fx", *r.speedup_vs_unfused) : std::string("-");
       }},
      {"vs_dense", 8,
       [](const BenchResult& r) {
         return r.speedup_vs_dense_fused ? format("%.2fx", *r.speedup_vs_dense_fused)
                                         : std::string("-");
       }},
      {"kept_mass", 9, [](const BenchResult& r) { return format("%.4f", r.kept_mass); }},
      {"max_abs_err", 12, [](const BenchResult& r) { return format("%.2e", r.max_abs_err); }},
      {"err_vs_dense", 12,
       [](const BenchResult& r) {
         return r.dense_rel_err ? format("%.2e", *r.dense_rel_err) : std::string("-");
       }},
      {"recall", 6,
       [](const BenchResult& r) {
         return r.recall ? format("%.4f", *r.recall) : std::string("-");
       }},
  };
  return table;
}

void print_cells(const std::function<std::string(const Column&)>& text) {
  std::string line;
  for (const Column& column : columns()) {
    char cell[128];
    std::snprintf(cell, sizeof cell, "%*s ", column.width, text(column).c_str());
    line += cell;
  }
  line.pop_back();
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);  // rows appear as cases finish, even through a pipe
}

}  // namespace

double attention_flops(const BenchSetup& setup, int64_t seq) {
  return 4.0 * setup.batch * setup.heads * static_cast<double>(seq) * seq * setup.dim;
}

void print_table_header() {
  print_cells([](const Column& column) { return std::string(column.header); });
}

void print_table_row(const BenchResult& result) {
  print_cells([&](const Column& column) { return column.cell(result); });
}

nlohmann::json results_json(const std::vector<BenchResult>& results, const BenchSetup& setup) {
  nlohmann::json array = nlohmann::json::array();
  for (const BenchResult& r : results) {
    array.push_back({
        {"impl", impl_name(r.config.impl)},
        {"pattern", r.config.pattern.to_string()},
        {"dtype", dtype_arg_name(r.config.dtype)},
        {"L", r.config.seq},
        {"ms", r.ms},
        {"reps", r.reps},
        {"gflops", r.gflops},
        {"pct_peak", r.pct_peak},
        {"speedup_vs_unfused",
         r.speedup_vs_unfused ? nlohmann::json(*r.speedup_vs_unfused) : nlohmann::json()},
        {"speedup_vs_dense_fused",
         r.speedup_vs_dense_fused ? nlohmann::json(*r.speedup_vs_dense_fused) : nlohmann::json()},
        {"kept_mass", r.kept_mass},
        {"max_abs_err", r.max_abs_err},
        {"err_vs_dense", r.dense_rel_err ? nlohmann::json(*r.dense_rel_err) : nlohmann::json()},
        {"recall", r.recall ? nlohmann::json(*r.recall) : nlohmann::json()},
        {"threads", setup.threads},
        {"batch", setup.batch},
        {"heads", setup.heads},
        {"dim", setup.dim},
        {"causal", setup.causal},
        {"isa", isa_name(setup.isa)},
        {"cpu", setup.cpu},
    });
  }
  return array;
}

}  // namespace dfss::cli
