// `dfss bench attention`: times implementations on random inputs and reports each case
// against the measured FMA peak, the unfused baseline and the reference.
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "cli/bench_common.h"
#include "cli/bench_report.h"
#include "cli/commands.h"
#include "cli/npy_inputs.h"
#include "dfss/compressed_scores.h"
#include "dfss/errors.h"
#include "dfss/selected_keys.h"
#include "dfss/version.h"
#include "io/atomic_file.h"
#include "kernels/peak/peak.h"

namespace dfss::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kCaseBudgetSeconds = 3.0;  // stop repeating a case after this...
constexpr int kMinReps = 3;                 // ...once it has this many timed runs
constexpr int64_t kSampledRows = 32;        // query rows per head checked against reference
constexpr uint64_t kSeed = 0x5eed;

// Q, K, V [B, H, L, dim] in both dtypes; bf16 is the rounded fp32 data.
struct BenchInputs {
  std::array<int64_t, 4> shape{};
  std::vector<float> q, k, v;
  std::vector<uint16_t> q16, k16, v16;

  ConstTensorView view(DType dtype, const std::vector<float>& f32,
                       const std::vector<uint16_t>& bf16) const {
    return dtype == DType::f32 ? const_view(f32.data(), shape) : const_view(bf16.data(), shape);
  }
  ConstTensorView q_view(DType dtype) const { return view(dtype, q, q16); }
  ConstTensorView k_view(DType dtype) const { return view(dtype, k, k16); }
  ConstTensorView v_view(DType dtype) const { return view(dtype, v, v16); }

  // Element i of Q or K as the kernels see it (bf16: the rounded value), in double.
  static double at(DType dtype, const std::vector<float>& f32, const std::vector<uint16_t>& bf16,
                   size_t i) {
    return dtype == DType::f32 ? f32[i] : bf16_to_float(bf16[i]);
  }
};

BenchInputs make_inputs(const BenchSetup& setup, int64_t seq) {
  BenchInputs inputs;
  inputs.shape = {setup.batch, setup.heads, seq, setup.dim};
  const auto count = static_cast<size_t>(setup.batch * setup.heads * seq * setup.dim);
  std::mt19937_64 rng(kSeed + static_cast<uint64_t>(seq));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::vector<float>* data : {&inputs.q, &inputs.k, &inputs.v}) {
    data->resize(count);
    for (float& value : *data) value = normal(rng);
  }
  inputs.q16 = to_bf16(inputs.q);
  inputs.k16 = to_bf16(inputs.k);
  inputs.v16 = to_bf16(inputs.v);
  return inputs;
}

// Library errors in command-line terms: the synthetic q, k, v and out only fail on --dim.
template <typename Call>
void in_cli_terms(Call&& call) {
  static const std::vector<ArgumentName> names = {{"q", "--dim"},
                                                  {"k", "--dim"},
                                                  {"v", "--dim"},
                                                  {"out", "--dim"},
                                                  {"options.isa", "--isa"},
                                                  {"options.threads", "--threads"},
                                                  {"options.impl", "--impl"},
                                                  {"options.pattern", "--pattern"}};
  try {
    call();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(cli_message(e.what(), names));
  } catch (const Unsupported& e) {
    throw Unsupported(cli_message(e.what(), names));
  }
}

// Unfused materializes a head's L x L scores (N:M: kept values and columns): refused up
// front, as the library would refuse it after the others had run (it adds padding to tiles,
// so its own check stays the authority near the limit).
void check_unfused_sizes(const std::vector<int64_t>& seqs,
                         const std::vector<std::pair<AttentionImpl, SparsityPattern>>& pairs) {
  for (const auto& [impl, pattern] : pairs) {
    // The key-selecting patterns have one implementation, without an L x L buffer.
    if (impl != AttentionImpl::unfused || pattern.selects_keys()) continue;
    for (int64_t seq : seqs) {
      const double keys = pattern.dense()
                              ? static_cast<double>(seq)
                              : std::ceil(static_cast<double>(seq) / pattern.m) * pattern.n * 2.0;
      const double bytes = static_cast<double>(seq) * keys * 4.0;
      if (bytes > static_cast<double>(kMaxUnfusedScoreBytes)) {
        char sizes[64];
        std::snprintf(sizes, sizeof sizes, "(%.1f GB), more than its limit of %.1f GB",
                      bytes * 1e-9, static_cast<double>(kMaxUnfusedScoreBytes) * 1e-9);
        throw InvalidArgument("--seq " + std::to_string(seq) +
                              ": --impl unfused materializes one head's scores " + sizes +
                              "; expected a shorter --seq or --impl without unfused");
      }
    }
  }
}

// The inputs and output of one --seq, with an allocation failure said as such.
std::pair<BenchInputs, std::vector<float>> allocate_case(const BenchSetup& setup, int64_t seq) {
  try {
    BenchInputs inputs = make_inputs(setup, seq);
    std::vector<float> out(inputs.q.size());
    return {std::move(inputs), std::move(out)};
  } catch (const std::bad_alloc&) {
    const double bytes =
        static_cast<double>(setup.batch * setup.heads * seq * setup.dim) * (4 * 4 + 3 * 2);
    char size[32];
    std::snprintf(size, sizeof size, "%.1f GB", bytes * 1e-9);
    throw Error("--seq " + std::to_string(seq) +
                ": out of memory while allocating the random inputs and the output (" + size + ")");
  }
}

// A view of the rows [first, first + count) of axis 2, sharing the data.
ConstTensorView rows(ConstTensorView view, int64_t first, int64_t count) {
  view.data = static_cast<const char*>(view.data) + first * view.stride[2] * dtype_size(view.dtype);
  view.shape[2] = count;
  return view;
}

// The query row of sample `s` of `samples`, evenly spaced over [0, seq).
int64_t sampled_row(int64_t s, int64_t samples, int64_t seq) {
  return samples == 1 ? 0 : s * (seq - 1) / (samples - 1);
}

// Calls visit(out value, reference value) for every element of kSampledRows evenly spaced
// query rows per head, the reference computed by impl = reference with `options` (its
// pattern). Each row is computed alone; under the causal rule (Lq = Lk) row i sees exactly
// keys 0..i, so its keys are cut to i + 1 instead of passing `causal`.
template <typename Visit>
void visit_sampled_rows(const BenchInputs& inputs, DType dtype, const float* out,
                        AttentionOptions options, Visit&& visit) {
  const auto [batch, heads, seq, dim] = inputs.shape;
  const int64_t samples = std::min(seq, kSampledRows);
  const bool causal = options.causal;
  options.impl = AttentionImpl::reference;
  options.causal = false;
  std::vector<float> expected(static_cast<size_t>(batch * heads * dim));
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t row = sampled_row(s, samples, seq);
    const int64_t keys = causal ? row + 1 : seq;
    attention(rows(inputs.q_view(dtype), row, 1), rows(inputs.k_view(dtype), 0, keys),
              rows(inputs.v_view(dtype), 0, keys),
              mutable_view(expected.data(), {batch, heads, 1, dim}), options);
    for (int64_t bh = 0; bh < batch * heads; ++bh)
      for (int64_t c = 0; c < dim; ++c)
        visit(static_cast<double>(out[(bh * seq + row) * dim + c]), double{expected[bh * dim + c]});
  }
}

// Largest |out - reference with the same pattern| on the sampled rows.
double sampled_max_abs_error(const BenchInputs& inputs, DType dtype, const float* out,
                             const AttentionOptions& timed) {
  double max_error = 0.0;
  visit_sampled_rows(inputs, dtype, out, timed, [&](double got, double want) {
    const double error = std::abs(got - want);
    if (!(error <= max_error)) max_error = error;  // a NaN sticks
  });
  return max_error;
}

// ||out - dense|| / ||dense|| (Euclidean norms over the sampled rows of every head): how far a
// sparse pattern's output is from dense attention's.
double sampled_dense_relative_error(const BenchInputs& inputs, DType dtype, const float* out,
                                    const AttentionOptions& timed) {
  AttentionOptions dense = timed;
  dense.pattern = {};
  double difference = 0.0, norm = 0.0;
  visit_sampled_rows(inputs, dtype, out, dense, [&](double got, double want) {
    difference += (got - want) * (got - want);
    norm += want * want;
  });
  return norm == 0.0 ? std::sqrt(difference) : std::sqrt(difference / norm);
}

// Mean, over the sampled query rows of sampled_max_abs_error and every (batch, head), of
// the dense softmax probability mass on the entries `timed.pattern` keeps (1 for dense).
// The kept set comes from compressed_scores, so it is exactly the kernels' selection; the
// dense probabilities are computed in double from the same inputs. Under the causal rule
// the keys are cut to row + 1 as for the error: the hidden keys would be -inf and so
// behave like the padding of a partial last group.
// The dense softmax probabilities (double) of query row `row` of head bh over its first
// `keys` keys.
std::vector<double> dense_probabilities(const BenchInputs& inputs, DType dtype, int64_t bh,
                                        int64_t row, int64_t keys, double scale) {
  const int64_t seq = inputs.shape[2], dim = inputs.shape[3];
  std::vector<double> scores(static_cast<size_t>(keys));
  double max_score = -INFINITY;
  for (int64_t j = 0; j < keys; ++j) {
    double dot = 0.0;
    for (int64_t c = 0; c < dim; ++c) {
      dot += BenchInputs::at(dtype, inputs.q, inputs.q16, (bh * seq + row) * dim + c) *
             BenchInputs::at(dtype, inputs.k, inputs.k16, (bh * seq + j) * dim + c);
    }
    scores[j] = scale * dot;
    max_score = std::max(max_score, scores[j]);
  }
  double sum = 0.0;
  for (double& score : scores) sum += (score = std::exp(score - max_score));
  for (double& score : scores) score /= sum;
  return scores;
}

// The selection statistics of a key-selecting pattern on the sampled rows (see
// sampled_kept_mass): kept_mass, and the recall of the kept set against exact top-K (the
// share of topk:K's keys that the pattern keeps; 1 for topk:K itself).
struct SelectionStats {
  double kept_mass = 0.0, recall = 0.0;
};
SelectionStats sampled_selection_stats(const BenchInputs& inputs, DType dtype,
                                       const AttentionOptions& timed) {
  const auto [batch, heads, seq, dim] = inputs.shape;
  const int64_t samples = std::min(seq, kSampledRows);
  AttentionOptions options = timed;
  options.causal = false;
  AttentionOptions exact = options;
  exact.pattern = parse_pattern("topk:" + std::to_string(timed.pattern.keep), "--pattern");
  const double scale = timed.scale ? *timed.scale : 1.0 / std::sqrt(static_cast<double>(dim));
  SelectionStats stats;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t row = sampled_row(s, samples, seq);
    const int64_t keys = timed.causal ? row + 1 : seq;
    const ConstTensorView q = rows(inputs.q_view(dtype), row, 1);
    const ConstTensorView k = rows(inputs.k_view(dtype), 0, keys);
    const ConstTensorView v = rows(inputs.v_view(dtype), 0, keys);
    const SelectedKeys kept = selected_keys(q, k, v, options);
    const SelectedKeys best = selected_keys(q, k, v, exact);
    for (int64_t bh = 0; bh < batch * heads; ++bh) {
      const std::vector<double> p = dense_probabilities(inputs, dtype, bh, row, keys, scale);
      std::vector<char> in_kept(static_cast<size_t>(keys), 0);
      for (int64_t t = 0; t < kept.counts[static_cast<size_t>(bh)]; ++t) {
        const int32_t j = kept.keys[static_cast<size_t>(bh * kept.stride + t)];
        in_kept[static_cast<size_t>(j)] = 1;
        stats.kept_mass += p[static_cast<size_t>(j)];
      }
      const int64_t wanted = best.counts[static_cast<size_t>(bh)];
      int64_t found = 0;
      for (int64_t t = 0; t < wanted; ++t)
        found += in_kept[static_cast<size_t>(best.keys[static_cast<size_t>(bh * best.stride + t)])];
      stats.recall += wanted == 0 ? 1.0 : static_cast<double>(found) / static_cast<double>(wanted);
    }
  }
  const auto rows_seen = static_cast<double>(samples * batch * heads);
  stats.kept_mass /= rows_seen;
  stats.recall /= rows_seen;
  return stats;
}

double sampled_kept_mass(const BenchInputs& inputs, DType dtype, const AttentionOptions& timed) {
  if (timed.pattern.dense()) return 1.0;
  const auto [batch, heads, seq, dim] = inputs.shape;
  const int64_t samples = std::min(seq, kSampledRows);
  AttentionOptions options = timed;
  options.causal = false;
  const double scale = timed.scale ? *timed.scale : 1.0 / std::sqrt(static_cast<double>(dim));
  double total = 0.0;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t row = sampled_row(s, samples, seq);
    const int64_t keys = timed.causal ? row + 1 : seq;
    const CompressedScores kept =
        compressed_scores(rows(inputs.q_view(dtype), row, 1), rows(inputs.k_view(dtype), 0, keys),
                          rows(inputs.v_view(dtype), 0, keys), options);
    for (int64_t bh = 0; bh < batch * heads; ++bh) {
      const std::vector<double> p = dense_probabilities(inputs, dtype, bh, row, keys, scale);
      for (int64_t e = 0; e < kept.kept; ++e) {
        const int32_t column = kept.columns[static_cast<size_t>(bh * kept.kept + e)];
        if (column < keys) total += p[static_cast<size_t>(column)];  // padding carries nothing
      }
    }
  }
  return total / static_cast<double>(samples * batch * heads);
}

AttentionOptions case_options(const BenchCase& config, const BenchSetup& setup) {
  AttentionOptions options;
  options.impl = config.impl;
  options.pattern = config.pattern;
  options.causal = setup.causal;
  options.threads = setup.threads;
  options.isa = setup.isa;
  return options;
}

// One call of a case (also its warm-up: caches, page faults, thread pool) and its errors on
// the sampled rows; the timing comes later (time_cases).
BenchResult check_case(const BenchCase& config, const BenchSetup& setup, const BenchInputs& inputs,
                       std::vector<float>& out) {
  const AttentionOptions options = case_options(config, setup);
  attention(inputs.q_view(config.dtype), inputs.k_view(config.dtype), inputs.v_view(config.dtype),
            mutable_view(out.data(), inputs.shape), options);
  BenchResult result;
  result.config = config;
  result.max_abs_err = sampled_max_abs_error(inputs, config.dtype, out.data(), options);
  if (!config.pattern.dense())
    result.dense_rel_err = sampled_dense_relative_error(inputs, config.dtype, out.data(), options);
  return result;
}

// Timed runs of a group of cases in turn, one call of each per round, so that a drift in
// the machine's speed (other tenants, clocks) moves every case alike and the ratios between
// them stay fair. A case stops after kMinReps runs once it has taken kCaseBudgetSeconds.
void time_cases(std::vector<BenchResult>& group, const BenchSetup& setup, const BenchInputs& inputs,
                int reps, double peak_gflops, std::vector<float>& out) {
  std::vector<std::vector<double>> times_ms(group.size());
  std::vector<double> spent(group.size(), 0.0);
  for (int rep = 0; rep < reps; ++rep) {
    bool ran = false;
    for (size_t c = 0; c < group.size(); ++c) {
      if (rep >= kMinReps && spent[c] > kCaseBudgetSeconds) continue;
      const BenchCase& config = group[c].config;
      const AttentionOptions options = case_options(config, setup);
      const Clock::time_point start = Clock::now();
      attention(inputs.q_view(config.dtype), inputs.k_view(config.dtype),
                inputs.v_view(config.dtype), mutable_view(out.data(), inputs.shape), options);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      times_ms[c].push_back(ms);
      spent[c] += ms * 1e-3;
      ran = true;
    }
    if (!ran) break;
  }
  for (size_t c = 0; c < group.size(); ++c) {
    BenchResult& result = group[c];
    result.ms = median(times_ms[c]);
    result.reps = static_cast<int>(times_ms[c].size());
    result.gflops = attention_flops(setup, result.config.seq) / (result.ms * 1e-3) * 1e-9;
    result.pct_peak = 100.0 * result.gflops / peak_gflops;
  }
}

template <typename T, typename Parse>
std::vector<T> parse_list(const std::vector<std::string>& texts, const char* flag, Parse parse) {
  std::vector<T> values;
  for (const std::string& text : texts) values.push_back(parse(text, flag));
  if (values.empty()) throw InvalidArgument(std::string(flag) + ": expected at least one value");
  return values;
}

// The (impl, pattern) pairs to time for each dtype and L: every combination asked for,
// preceded by fused dense when another pattern is asked for without it, so that
// speedup_vs_dense_fused always has its baseline.
std::vector<std::pair<AttentionImpl, SparsityPattern>> variants(
    const std::vector<AttentionImpl>& impls, const std::vector<SparsityPattern>& patterns) {
  std::vector<std::pair<AttentionImpl, SparsityPattern>> pairs;
  bool sparse = false, dense_fused = false;
  for (SparsityPattern pattern : patterns) {
    for (AttentionImpl impl : impls) {
      pairs.emplace_back(impl, pattern);
      sparse = sparse || !pattern.dense();
      dense_fused = dense_fused || (pattern.dense() && impl == AttentionImpl::fused);
    }
  }
  if (sparse && !dense_fused) pairs.insert(pairs.begin(), {AttentionImpl::fused, {}});
  return pairs;
}

// Runs every variant and dtype on an empty problem (L = 0) of the benchmark's shape, so
// that a bad --dim or --isa is reported before the peak measurement rather than after it.
void check_configuration(const BenchSetup& setup,
                         const std::vector<std::pair<AttentionImpl, SparsityPattern>>& pairs,
                         const std::vector<DType>& dtypes) {
  const std::array<int64_t, 4> shape{setup.batch, setup.heads, 0, setup.dim};
  const float f32 = 0.0f;
  float out = 0.0f;
  const uint16_t bf16 = 0;
  for (const auto& [impl, pattern] : pairs) {
    for (DType dtype : dtypes) {
      AttentionOptions options;
      options.impl = impl;
      options.pattern = pattern;
      options.threads = setup.threads;
      options.isa = setup.isa;
      const ConstTensorView input =
          dtype == DType::f32 ? const_view(&f32, shape) : const_view(&bf16, shape);
      in_cli_terms([&] { attention(input, input, input, mutable_view(&out, shape), options); });
    }
  }
}

// Sets the speedups of one (L, dtype) group from the baselines measured in it.
void set_speedups(std::vector<BenchResult>& group) {
  const auto find = [&](AttentionImpl impl, SparsityPattern pattern) -> const BenchResult* {
    for (const BenchResult& r : group) {
      if (r.config.impl == impl && r.config.pattern.to_string() == pattern.to_string()) {
        return &r;
      }
    }
    return nullptr;
  };
  const BenchResult* dense_fused = find(AttentionImpl::fused, {});
  for (BenchResult& result : group) {
    const BenchResult* unfused = find(AttentionImpl::unfused, result.config.pattern);
    if (unfused) result.speedup_vs_unfused = unfused->ms / result.ms;
    if (dense_fused) result.speedup_vs_dense_fused = dense_fused->ms / result.ms;
  }
}

}  // namespace

void add_bench_attention_options(CLI::App& command, BenchAttentionArgs& args) {
  command.add_option("--seq", args.seq, "sequence lengths (Lq = Lk), comma-separated")
      ->delimiter(',')
      ->check(integer_at_least(1))
      ->capture_default_str();
  command.add_option("--batch", args.batch)->check(integer_at_least(1))->capture_default_str();
  command.add_option("--heads", args.heads)->check(integer_at_least(1))->capture_default_str();
  command.add_option("--dim", args.dim, "head dimension d = dv")
      ->check(integer_at_least(1))
      ->capture_default_str();
  command.add_option("--dtype", args.dtypes, "fp32, bf16, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  command.add_option("--impl", args.impls, "fused, unfused, reference, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  command
      .add_option("--pattern", args.patterns,
                  "dense, N:M (e.g. 2:4, 1:2), topk:K and dsa:K[:block=B] patterns, "
                  "comma-separated; fused dense also runs when another pattern is asked for, as "
                  "the speedup baseline")
      ->delimiter(',')
      ->capture_default_str();
  command.add_option("--threads", args.threads, "0: OpenMP's default")
      ->check(integer_in_range(0, kMaxThreads))
      ->capture_default_str();
  command
      .add_option("--reps", args.reps,
                  "timed runs per case, in turns with the other cases of the same L and dtype "
                  "(fewer once a case has taken 3 s)")
      ->check(integer_at_least(1))
      ->capture_default_str();
  command.add_option("--json", args.json, "also write the results as a JSON array")
      ->type_name("FILE");
  command.add_flag("--causal", args.causal, "causal masking (FLOPs still counted dense)");
}

void run_bench_attention(const BenchAttentionArgs& args, Isa isa) {
  const std::vector<AttentionImpl> impls =
      parse_list<AttentionImpl>(args.impls, "--impl", parse_impl);
  const std::vector<DType> dtypes = parse_list<DType>(args.dtypes, "--dtype", parse_dtype_arg);
  const std::vector<SparsityPattern> patterns =
      parse_list<SparsityPattern>(args.patterns, "--pattern", parse_pattern);
  const auto pairs = variants(impls, patterns);
  if (args.seq.empty()) throw InvalidArgument("--seq: expected at least one length");
  for (int64_t seq : args.seq) {
    int64_t elements = 1;
    for (int64_t factor : {args.batch, args.heads, seq, args.dim}) {
      if (__builtin_mul_overflow(elements, factor, &elements)) {
        throw InvalidArgument("--seq " + std::to_string(seq) +
                              ": B*H*L*d overflows 64 bits; expected a smaller problem");
      }
    }
  }
  check_unfused_sizes(args.seq, pairs);
  if (!args.json.empty()) check_output_file(args.json, "--json");
  require_threads_arg(args.threads);

  BenchSetup setup;
  setup.batch = args.batch;
  setup.heads = args.heads;
  setup.dim = args.dim;
  setup.causal = args.causal;
  setup.isa = resolve_isa(isa);
  setup.threads = args.threads > 0 ? args.threads : omp_get_max_threads();
  setup.cpu = cpu_model_name();
  check_configuration(setup, pairs, dtypes);

  std::printf("dfss %s bench attention: B=%lld H=%lld d=%lld causal=%s threads=%d isa=%s\n",
              version(), static_cast<long long>(setup.batch), static_cast<long long>(setup.heads),
              static_cast<long long>(setup.dim), setup.causal ? "yes" : "no", setup.threads,
              isa_name(setup.isa));
  std::printf("cpu: %s\n", setup.cpu.c_str());
  const double peak_f32 = kernels::measure_fma_peak_gflops(setup.isa, false, setup.threads);
  const bool any_bf16 = std::find(dtypes.begin(), dtypes.end(), DType::bf16) != dtypes.end();
  const double peak_bf16 =
      any_bf16 ? kernels::measure_fma_peak_gflops(setup.isa, true, setup.threads) : peak_f32;
  std::printf("peak (FMA loop, %d threads): fp32 %.1f GFLOP/s", setup.threads, peak_f32);
  if (any_bf16) std::printf(", bf16 %.1f GFLOP/s", peak_bf16);
  std::printf(
      "\nFLOPs = 4*B*H*L*L*d (dense-equivalent for sparse patterns too); max_abs_err = max "
      "|out - reference with the same pattern|, err_vs_dense = ||out - dense|| / ||dense||, "
      "kept_mass = mean dense softmax mass kept, recall = share of exact top-K keys kept, on "
      "%lld query rows per head; vs_dense = fused dense ms / ms\n",
      static_cast<long long>(kSampledRows));
  for (const auto& [impl, pattern] : pairs) {
    for (DType dtype : dtypes) {
      std::printf("kernel %s/%s/%s: %s\n", impl_name(impl), pattern.to_string().c_str(),
                  dtype_arg_name(dtype),
                  attention_kernel_name(impl, dtype, setup.isa, pattern).c_str());
    }
  }
  print_table_header();

  std::vector<BenchResult> results;
  for (int64_t seq : args.seq) {
    auto allocated = allocate_case(setup, seq);
    const BenchInputs& inputs = allocated.first;
    std::vector<float>& out = allocated.second;
    for (DType dtype : dtypes) {
      // Rows of one (L, dtype) group are printed together, once the baselines that the
      // speedups refer to are known.
      std::vector<BenchResult> group;
      std::map<std::string, SelectionStats> selection;  // by pattern: the same for every impl
      for (const auto& [impl, pattern] : pairs) {
        const BenchCase config{impl, dtype, seq, pattern};
        BenchResult result;
        in_cli_terms([&] { result = check_case(config, setup, inputs, out); });
        const std::string key = pattern.to_string();
        if (!selection.contains(key)) {
          // The options of this pattern's case with the default impl.
          const AttentionOptions options =
              case_options({AttentionOptions{}.impl, dtype, seq, pattern}, setup);
          selection[key] = pattern.selects_keys()
                               ? sampled_selection_stats(inputs, dtype, options)
                               : SelectionStats{sampled_kept_mass(inputs, dtype, options), 1.0};
        }
        result.kept_mass = selection[key].kept_mass;
        if (pattern.selects_keys()) result.recall = selection[key].recall;
        group.push_back(result);
      }
      in_cli_terms([&] {
        time_cases(group, setup, inputs, args.reps, dtype == DType::bf16 ? peak_bf16 : peak_f32,
                   out);
      });
      set_speedups(group);
      for (const BenchResult& result : group) {
        print_table_row(result);
        results.push_back(result);
      }
    }
  }

  if (!args.json.empty()) {
    write_text_file(args.json, results_json(results, setup).dump(2) + "\n", "--json");
    std::printf("wrote %s\n", args.json.c_str());
  }
}

}  // namespace dfss::cli
