// `dfss bench gemm`: block-sparse linear layers (dfss's kernels) and the int8 and bf16 layers
// against the dense fp32 GEMM of oneDNN that the BERT runtime uses, on the linear layers'
// shapes, in one run (int8 also on each block-sparse pattern): the cases take turns (one call of
// each per round) so that clock and cache drift hits every case alike. Each sparse result is
// checked against oneDNN run on the pruned (dense) weights, the int8 and bf16 ones against the fp32
// result on the same weights.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_common.h"
#include "cli/commands.h"
#include "dfss/errors.h"
#include "dfss/sparse_linear.h"
#include "dfss/version.h"
#include "kernels/peak/peak.h"
#include "kernels/sparse_gemm_int8/sparse_gemm_int8_kernels.h"
#include "model/bf16_linear.h"
#include "model/linear.h"
#include "model/quantized_linear.h"
#include "model/thread_count_scope.h"

namespace dfss::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct GemmShape {
  int64_t in = 0, out = 0;
};

GemmShape parse_gemm_shape(const std::string& text) {
  const size_t colon = text.find(':');
  GemmShape s;
  try {
    size_t used_in = 0, used_out = 0;
    if (colon == std::string::npos) throw std::invalid_argument(text);
    s.in = std::stoll(text.substr(0, colon), &used_in);
    s.out = std::stoll(text.substr(colon + 1), &used_out);
    if (used_in != colon || used_out != text.size() - colon - 1) throw std::invalid_argument(text);
  } catch (const std::logic_error&) {
    s.in = s.out = 0;
  }
  if (s.in < 1 || s.out < 1 || s.in > 65536 || s.out > 65536)
    throw InvalidArgument("--shapes: expected IN:OUT with 1 .. 65536 each (e.g. 384:1536), got \"" +
                          text + "\"");
  return s;
}

std::vector<float> normal(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = dist(rng);
  return v;
}

// max |got − want|, relative to the largest |want|.
double max_relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double max_abs = 0.0, max_err = 0.0;
  for (size_t j = 0; j < want.size(); ++j) {
    max_abs = std::max(max_abs, std::fabs(double{want[j]}));
    max_err = std::max(max_err, std::fabs(double{want[j]} - got[j]));
  }
  return max_err / std::max(max_abs, 1e-30);
}

struct Case {
  std::string name;  // "onednn dense", "int8 dense", "bf16 dense", a pattern, "int8 " + a pattern
  std::string isa;
  double sparsity = 0.0;
  std::function<void()> call;
  std::vector<double> ms;
  double max_rel_err = 0.0;
};

}  // namespace

void add_bench_gemm_options(CLI::App& command, BenchGemmArgs& args) {
  command.add_option("--tokens", args.tokens, "rows of x (32 x 128 = 4096: a batch of texts)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  command.add_option("--shapes", args.shapes, "IN:OUT of each linear layer (MiniLM's by default)")
      ->delimiter(',')
      ->capture_default_str();
  command
      .add_option("--patterns", args.patterns,
                  "block-sparse weight patterns N:MxV (V output rows share a pattern; 1:1xV is "
                  "dfss's kernel on dense weights)")
      ->delimiter(',')
      ->capture_default_str();
  command.add_option("--rounds", args.rounds, "timed calls of each case, taken in turns")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command.add_option("--threads", args.threads, "0: OpenMP's default")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  command.add_option("--json", args.json, "also write the results as JSON");
}

void run_bench_gemm(const BenchGemmArgs& args, Isa isa) {
  std::vector<GemmShape> shapes;
  for (const std::string& text : args.shapes) shapes.push_back(parse_gemm_shape(text));
  std::vector<BlockSparsePattern> patterns;
  for (const std::string& text : args.patterns)
    patterns.push_back(parse_block_sparse_pattern(text, "--patterns"));
  if (shapes.empty()) throw InvalidArgument("--shapes: expected at least one shape");
  for (const GemmShape& s : shapes)
    for (const BlockSparsePattern& p : patterns)
      if (s.in % p.m != 0)
        throw InvalidArgument("--patterns: " + block_sparse_pattern_name(p) + " needs IN (" +
                              std::to_string(s.in) + ") to be a multiple of M");
  if (!args.json.empty()) check_output_file(args.json, "--json");
  require_threads_arg(args.threads);
  const Isa resolved = resolve_isa(isa);
  const int threads = args.threads > 0 ? args.threads : std::max(1, omp_get_max_threads());
  const double peak = kernels::measure_fma_peak_gflops(resolved, false, threads);
  const bool bf16 = model::onednn_has_bf16_gemm();
  const double bf16_peak = isa_supported(Isa::avx512_bf16)
                               ? kernels::measure_fma_peak_gflops(Isa::avx512_bf16, true, threads)
                               : 0.0;
  std::printf("dfss %s bench gemm: %lld tokens, isa %s, %d threads, %d rounds in turns\n",
              version(), static_cast<long long>(args.tokens), isa_name(resolved), threads,
              args.rounds);
  std::printf("cpu: %s\npeak (FMA loop, %d threads): fp32 %.1f GFLOP/s", cpu_model_name().c_str(),
              threads, peak);
  if (bf16_peak > 0) std::printf(", bf16 (vdpbf16ps) %.1f GFLOP/s", bf16_peak);
  std::printf("\n%%peak is of the fp32 peak for every case.\n");
  std::printf("GFLOP/s counts dense-equivalent work (2 x tokens x IN x OUT) for every case.\n");
  std::printf("%-10s %-14s %-18s %6s %10s %9s %7s %9s %10s\n", "IN:OUT", "weights", "isa", "zeros",
              "median ms", "GFLOP/s", "%peak", "vs dense", "max err");

  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const model::ThreadCountScope thread_count(threads);  // oneDNN's regions, this thread only
  nlohmann::json results = nlohmann::json::array();
  for (const GemmShape& shape : shapes) {
    const int64_t tokens = args.tokens;
    const std::vector<float> weight = normal(shape.out * shape.in, 1);
    const std::vector<float> bias = normal(shape.out, 2);
    const std::vector<float> x = normal(tokens * shape.in, 3);
    const model::Linear dense(engine, weight, bias, shape.out, shape.in,
                              model::LinearEpilogue::none, "the dense layer");
    std::vector<float> y_dense(static_cast<size_t>(tokens * shape.out));

    std::vector<Case> cases;
    cases.push_back({"onednn dense",
                     "onednn",
                     0.0,
                     [&] { dense.run(stream, x.data(), tokens, y_dense.data()); },
                     {},
                     0.0});
    // The int8 layer of --precision int8: quantize x per token, oneDNN's u8·s8 GEMM,
    // dequantize; compared with the fp32 result on the same weights.
    const model::QuantizedLinear int8(engine, weight, bias, shape.out, shape.in,
                                      model::LinearEpilogue::none, "the int8 layer");
    std::vector<float> y_int8(y_dense.size());
    cases.push_back({"int8 dense",
                     std::string("onednn+") + isa_name(resolved),
                     0.0,
                     [&] { int8.run(stream, x.data(), tokens, y_int8.data(), threads, resolved); },
                     {},
                     0.0});
    // The bf16 layer of --precision bf16, where oneDNN has a bf16 GEMM.
    std::optional<model::Bf16Linear> bf16_layer;
    std::vector<float> y_bf16(y_dense.size());
    if (bf16) {
      bf16_layer.emplace(engine, weight, bias, shape.out, shape.in, model::LinearEpilogue::none,
                         "the bf16 layer");
      cases.push_back(
          {"bf16 dense",
           std::string("onednn+") + isa_name(resolved),
           0.0,
           [&] { bf16_layer->run(stream, x.data(), tokens, y_bf16.data(), threads, resolved); },
           {},
           0.0});
    }
    const size_t first_pattern = cases.size();
    std::vector<BlockSparseMatrix> matrices;
    matrices.reserve(patterns.size());
    std::vector<std::vector<float>> outputs(patterns.size(), std::vector<float>(y_dense.size()));
    for (size_t i = 0; i < patterns.size(); ++i) {
      matrices.push_back(BlockSparseMatrix::prune(weight, shape.out, shape.in, patterns[i]));
      const BlockSparseMatrix& w = matrices.back();
      float* y = outputs[i].data();
      cases.push_back(
          {block_sparse_pattern_name(patterns[i]),
           isa_name(sparse_linear_isa(patterns[i], resolved)),
           patterns[i].sparsity(),
           [&, y] {
             sparse_linear(w, bias, x.data(), tokens, shape.in, y, shape.out, {resolved, threads});
           },
           {},
           0.0});
    }
    // The int8 layer of --precision int8 on each pruned matrix: dfss's int8 block-sparse
    // kernels; compared with the fp32 result on the same pruned weights.
    const size_t first_int8_pattern = cases.size();
    std::vector<std::unique_ptr<model::QuantizedLinear>> int8_sparse;
    std::vector<std::vector<float>> int8_outputs(patterns.size(),
                                                 std::vector<float>(y_dense.size()));
    const std::string int8_kernels = kernels::sparse_gemm_int8_kernels(resolved).name;
    for (size_t i = 0; i < patterns.size(); ++i) {
      int8_sparse.push_back(std::make_unique<model::QuantizedLinear>(
          engine, weight, bias, shape.out, shape.in, model::LinearEpilogue::none,
          "the int8 block-sparse layer", &matrices[i]));
      const model::QuantizedLinear& layer = *int8_sparse.back();
      float* y = int8_outputs[i].data();
      cases.push_back({"int8 " + block_sparse_pattern_name(patterns[i]),
                       int8_kernels.substr(int8_kernels.rfind('_') + 1),
                       patterns[i].sparsity(),
                       [&, y] { layer.run(stream, x.data(), tokens, y, threads, resolved); },
                       {},
                       0.0});
    }
    for (Case& c : cases) c.call();  // warm-up: packing, first touch
    // Correctness: each pattern against oneDNN on its pruned weights, relative to the
    // largest output.
    for (size_t i = 0; i < patterns.size(); ++i) {
      const std::vector<float> pruned = matrices[i].to_dense();
      const model::Linear check(engine, pruned, bias, shape.out, shape.in,
                                model::LinearEpilogue::none, "the pruned layer");
      std::vector<float> want(y_dense.size());
      check.run(stream, x.data(), tokens, want.data());
      cases[first_pattern + i].max_rel_err = max_relative_error(outputs[i], want);
      cases[first_int8_pattern + i].max_rel_err = max_relative_error(int8_outputs[i], want);
    }
    cases[1].max_rel_err = max_relative_error(y_int8, y_dense);
    if (bf16) cases[2].max_rel_err = max_relative_error(y_bf16, y_dense);
    for (int round = 0; round < args.rounds; ++round) {
      for (Case& c : cases) {
        const auto t0 = Clock::now();
        c.call();
        c.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    }
    const double flops = 2.0 * static_cast<double>(tokens) * shape.in * shape.out;
    const double dense_ms = median(cases.front().ms);
    for (const Case& c : cases) {
      const double ms = median(c.ms);
      const double gflops = flops / (ms * 1e6);
      const std::string shape_name = std::to_string(shape.in) + ":" + std::to_string(shape.out);
      std::printf("%-10s %-14s %-18s %5.0f%% %10.3f %9.1f %6.1f%% %8.2fx %10.1e\n",
                  shape_name.c_str(), c.name.c_str(), c.isa.c_str(), 100.0 * c.sparsity, ms, gflops,
                  100.0 * gflops / peak, dense_ms / ms, c.max_rel_err);
      results.push_back({{"in", shape.in},
                         {"out", shape.out},
                         {"tokens", tokens},
                         {"weights", c.name},
                         {"isa", c.isa},
                         {"sparsity", c.sparsity},
                         {"median_ms", ms},
                         {"rounds", c.ms.size()},
                         {"gflops_dense_equivalent", gflops},
                         {"pct_peak", 100.0 * gflops / peak},
                         {"speedup_vs_onednn_dense", dense_ms / ms},
                         {"max_rel_err_vs_onednn_fp32", c.max_rel_err}});
    }
    std::fflush(stdout);
  }
  if (!args.json.empty()) {
    const nlohmann::json doc = {{"dfss_version", version()}, {"isa", isa_name(resolved)},
                                {"threads", threads},        {"cpu", cpu_model_name()},
                                {"peak_gflops", peak},       {"bf16_peak_gflops", bf16_peak},
                                {"results", results}};
    write_text_file(args.json, doc.dump(2) + "\n", "--json");
  }
}

}  // namespace dfss::cli
