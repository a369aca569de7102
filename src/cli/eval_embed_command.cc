// `dfss eval embed`: how close N:M attention keeps a model's embeddings to the dense ones,
// text by text, and what it does to throughput.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli/bench_common.h"
#include "cli/commands.h"
#include "cli/embedding_run.h"
#include "cli/text_lines.h"
#include "dfss/errors.h"

namespace dfss::cli {
namespace {

struct CosineSummary {
  double mean = 0, min = 0, p1 = 0;
  int64_t argmin = 0;
};

// Per-row cosine in double; the norms are computed, not assumed 1, so that a zero or
// non-finite row shows up instead of passing for a perfect match.
CosineSummary cosine_summary(const std::vector<float>& a, const std::vector<float>& b, int64_t rows,
                             int64_t width) {
  std::vector<double> cosines(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < width; ++i) {
      const double x = a[r * width + i], y = b[r * width + i];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    cosines[r] = dot / std::max(std::sqrt(na * nb), 1e-300);
  }
  CosineSummary s;
  if (rows == 0) return s;
  for (double c : cosines) s.mean += c;
  s.mean /= static_cast<double>(rows);
  s.argmin = std::min_element(cosines.begin(), cosines.end()) - cosines.begin();
  s.min = cosines[s.argmin];
  std::vector<double> sorted = cosines;
  std::sort(sorted.begin(), sorted.end());
  // Nearest-rank percentile.
  s.p1 = sorted[static_cast<size_t>(std::ceil(0.01 * static_cast<double>(rows))) - 1];
  return s;
}

}  // namespace

void add_eval_embed_options(CLI::App& command, EvalEmbedArgs& args) {
  args.input.attention = "2:4";
  add_embed_input_options(command, args.input,
                          "the attention to compare with dense: N:M for every layer or a "
                          "comma list with one entry per layer");
  command.add_option("--json", args.json, "also write the results as JSON")->type_name("FILE");
  command
      .add_option("--reps", args.reps,
                  "timed passes over the texts per attention, interleaved (dense, N:M, dense, "
                  "...) after an untimed warm-up of both; throughput is the median")
      ->check(integer_in_range(1, 1000))
      ->capture_default_str();
}

void run_eval_embed(const EvalEmbedArgs& args, Isa isa) {
  require_threads_arg(args.input.threads);
  if (!args.json.empty()) check_output_file(args.json, "--json");
  // The reference is the dense fp32 model with dense attention; the evaluated one has the
  // asked weights (block-sparse layers), precision and attention.
  const LoadOptions weights = load_options(args.input.weights, args.input.precision);
  BertEncoder encoder = BertEncoder::load(args.input.model, weights);
  LoadOptions dense_weights;
  dense_weights.dense_weights = true;
  const BertEncoder reference = BertEncoder::load(args.input.model, dense_weights);
  const EncodeOptions sparse = encode_options(args.input, encoder, isa);
  calibrate_if_asked(encoder, args.input, sparse);
  EncodeOptions dense = sparse;
  dense.attention.clear();
  dense.attention_dtype = DType::f32;
  const std::vector<std::string> lines = read_text_lines(args.input.input);
  // A cosine and a throughput over no text would be numbers about nothing.
  if (lines.empty()) {
    throw InvalidArgument("--input " + args.input.input +
                          ": expected at least one text (one per line), got an empty file");
  }
  const auto texts = tokenize_lines(encoder, lines, args.input);
  const std::string weight_name = linear_layers_name(encoder);
  const std::string attention_name = attention_config_name(sparse);
  const std::string name = weight_name == "dense" && sparse.attention_dtype == DType::f32
                               ? attention_name
                               : "weights " + weight_name + ", attention " + attention_name;

  // Warm-up, untimed: the first pass of each pays for page faults, weight packing and the
  // thread pool, which would otherwise count against whichever runs first.
  const std::vector<std::vector<int32_t>> warm_up(
      texts.begin(), texts.begin() + std::min<int64_t>(args.input.batch, texts.size()));
  embed_all(reference, warm_up, dense, args.input.batch, "warm-up");
  embed_all(encoder, warm_up, sparse, args.input.batch, "warm-up");
  // Interleaved so that drift in the machine's speed (clock, other load) hits both alike.
  EmbedRun dense_run, sparse_run;
  std::vector<double> dense_seconds, sparse_seconds;
  for (int rep = 0; rep < args.reps; ++rep) {
    EmbedRun dense_rep = embed_all(reference, texts, dense, args.input.batch, "dense");
    EmbedRun sparse_rep = embed_all(encoder, texts, sparse, args.input.batch, name);
    dense_seconds.push_back(dense_rep.seconds);
    sparse_seconds.push_back(sparse_rep.seconds);
    if (rep == 0) {
      dense_run = std::move(dense_rep);
      sparse_run = std::move(sparse_rep);
    }
  }
  dense_run.seconds = median(dense_seconds);
  sparse_run.seconds = median(sparse_seconds);
  const int64_t n = static_cast<int64_t>(texts.size());
  const CosineSummary cos =
      cosine_summary(dense_run.embeddings, sparse_run.embeddings, n, encoder.hidden_size());

  std::printf("texts %lld, tokens %lld (mean %.1f per text), batch %lld, max-len %lld\n",
              static_cast<long long>(n), static_cast<long long>(dense_run.tokens),
              n > 0 ? static_cast<double>(dense_run.tokens) / n : 0.0,
              static_cast<long long>(args.input.batch), static_cast<long long>(args.input.max_len));
  std::printf("cosine(%s, dense): mean %.6f  min %.6f (line %lld)  1st percentile %.6f\n",
              name.c_str(), cos.mean, cos.min, static_cast<long long>(cos.argmin + 1), cos.p1);
  const auto rate = [](const EmbedRun& run) {
    return run.seconds > 0 ? static_cast<double>(run.tokens) / run.seconds : 0.0;
  };
  std::printf(
      "throughput (median of %d interleaved passes after a warm-up): dense %.0f tokens/s, %s "
      "%.0f tokens/s (%.3fx)\n",
      args.reps, rate(dense_run), name.c_str(), rate(sparse_run),
      sparse_run.seconds > 0 ? dense_run.seconds / sparse_run.seconds : 0.0);

  if (!args.json.empty()) {
    const nlohmann::json result = {
        {"attention", layer_patterns_string(sparse.attention)},
        {"weights", encoder.weight_sparsity()},
        {"precision", precision_name(encoder.precision())},
        {"int8_static", encoder.int8_calibrated()},
        {"attention_dtype", dtype_arg_name(sparse.attention_dtype)},
        {"texts", n},
        {"tokens", dense_run.tokens},
        {"batch", args.input.batch},
        {"max_len", args.input.max_len},
        {"reps", args.reps},
        {"cosine_mean", cos.mean},
        {"cosine_min", cos.min},
        {"cosine_min_line", cos.argmin + 1},
        {"cosine_p1", cos.p1},
        {"dense_tokens_per_s", rate(dense_run)},
        {"sparse_tokens_per_s", rate(sparse_run)},
        {"speedup_vs_dense", sparse_run.seconds > 0 ? dense_run.seconds / sparse_run.seconds : 0.0},
    };
    write_text_file(args.json, result.dump(2) + "\n", "--json");
  }
}

}  // namespace dfss::cli
