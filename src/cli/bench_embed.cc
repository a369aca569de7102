// `dfss bench embed`: end-to-end throughput of the BERT encoder on synthetic batches of
// equal-length texts, per attention configuration, with where the time goes.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli/bench_common.h"
#include "cli/commands.h"
#include "cli/embedding_run.h"
#include "cli/text_lines.h"
#include "dfss/bert.h"
#include "dfss/errors.h"
#include "dfss/version.h"
#include "kernels/peak/peak.h"

namespace dfss::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kCaseBudgetSeconds = 20.0;  // stop repeating a case after this...
constexpr int kMinReps = 3;                  // ...once it has this many timed runs
constexpr int32_t kFirstWordId = 1000;       // below: [unused*] and special tokens in BERT vocabs

struct Shape {
  int64_t batch = 0, seq = 0;
};

Shape parse_shape(const std::string& text) {
  const size_t x = text.find('x');
  try {
    if (x != std::string::npos && x > 0 && x + 1 < text.size() &&
        text.find_first_not_of("0123456789", 0) == x &&
        text.find_first_not_of("0123456789", x + 1) == std::string::npos) {
      const Shape shape{std::stoll(text.substr(0, x)), std::stoll(text.substr(x + 1))};
      if (shape.batch >= 1 && shape.seq >= 2 && shape.batch <= (1 << 20)) return shape;
    }
  } catch (const std::out_of_range&) {
  }
  throw InvalidArgument(
      "--shapes: expected BATCHxTOKENS with BATCH >= 1 and TOKENS >= 2 (e.g. "
      "32x128), got '" +
      text + "'");
}

// `batch` texts of exactly `seq` tokens: [CLS], random words, [SEP]. Fixed seed.
std::vector<std::vector<int32_t>> synthetic_texts(const BertEncoder& encoder, Shape shape) {
  const tokenizer::Vocab& vocab = encoder.tokenizer().vocab();
  std::mt19937 rng(0x5eed);
  std::uniform_int_distribution<int32_t> word(std::min(kFirstWordId, vocab.size() - 1),
                                              vocab.size() - 1);
  std::vector<std::vector<int32_t>> texts(static_cast<size_t>(shape.batch));
  for (auto& text : texts) {
    text.push_back(vocab.cls_id());
    while (static_cast<int64_t>(text.size()) < shape.seq - 1) text.push_back(word(rng));
    text.push_back(vocab.sep_id());
  }
  return texts;
}

// FLOPs of one forward pass: the GEMMs, plus attention counted dense (4·L²·hidden per
// text and layer), whatever the pattern.
double forward_flops(int64_t hidden, int64_t intermediate, int64_t layers, Shape shape) {
  const double tokens = static_cast<double>(shape.batch * shape.seq);
  const double h = static_cast<double>(hidden), f = static_cast<double>(intermediate);
  const double linear = 2.0 * tokens * (4.0 * h * h + 2.0 * h * f);
  const double attention =
      4.0 * static_cast<double>(shape.batch) * static_cast<double>(shape.seq * shape.seq) * h;
  return static_cast<double>(layers) * (linear + attention);
}

}  // namespace

void add_bench_embed_options(CLI::App& command, BenchEmbedArgs& args) {
  command
      .add_option("--model", args.model, "model folder (config.json, model.safetensors, vocab.txt)")
      ->capture_default_str();
  command.add_option("--shapes", args.shapes, "BATCHxTOKENS, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  command
      .add_option("--attention", args.attentions,
                  "configurations to time, space-separated; each is dense, N:M, or a comma list "
                  "with one entry per layer")
      ->expected(1, -1)
      ->capture_default_str();
  command
      .add_option(
          "--weights", args.weights,
          std::string(kWeightsHelp) + "; space-separated, each timed with every --attention")
      ->expected(1, -1)
      ->capture_default_str();
  command
      .add_option(
          "--precision", args.precisions,
          std::string(kPrecisionHelp) + "; space-separated, each timed with every --weights")
      ->expected(1, -1)
      ->capture_default_str();
  command
      .add_option("--attention-dtype", args.attention_dtypes,
                  std::string(kAttentionDtypeHelp) +
                      "; space-separated, each timed with every "
                      "--attention")
      ->expected(1, -1)
      ->capture_default_str();
  command
      .add_option("--calibration", args.calibration,
                  "texts (one per line, cut to 256 tokens): also time int8 with static scales "
                  "calibrated on them (needs int8 among --precision)")
      ->type_name("TEXTS.txt");
  command.add_option("--threads", args.threads, "0: OpenMP's default")
      ->check(integer_in_range(0, kMaxThreads))
      ->capture_default_str();
  command
      .add_option("--reps", args.reps,
                  "timed runs per case, the cases of a shape in turns (fewer once a case has "
                  "taken 20 s)")
      ->check(integer_at_least(1))
      ->capture_default_str();
  command.add_option("--json", args.json, "also write the results as a JSON array")
      ->type_name("FILE");
}

void run_bench_embed(const BenchEmbedArgs& args, Isa isa) {
  std::vector<Shape> shapes;
  for (const std::string& text : args.shapes) shapes.push_back(parse_shape(text));
  if (shapes.empty()) throw InvalidArgument("--shapes: expected at least one shape");
  if (args.attentions.empty()) throw InvalidArgument("--attention: expected at least one value");
  if (!args.json.empty()) check_output_file(args.json, "--json");
  require_threads_arg(args.threads);
  if (args.weights.empty()) throw InvalidArgument("--weights: expected at least one value");
  if (args.precisions.empty()) throw InvalidArgument("--precision: expected at least one value");
  std::vector<BertEncoder> encoders;
  for (const std::string& precision : args.precisions) {
    for (const std::string& weights : args.weights)
      encoders.push_back(BertEncoder::load(args.model, load_options(weights, precision)));
  }
  if (!args.calibration.empty()) {
    bool int8 = false;
    for (const std::string& precision : args.precisions) int8 = int8 || precision == "int8";
    if (!int8) throw InvalidArgument("--calibration: only with int8 among --precision");
    const std::vector<std::string> lines = read_text_lines(args.calibration);
    if (lines.empty()) {
      throw InvalidArgument("--calibration " + args.calibration +
                            ": expected at least one text (one per line), got an empty file");
    }
    const EmbedInputArgs cut;  // --max-len's default
    EncodeOptions options;
    options.threads = args.threads;
    options.isa = isa;
    for (const std::string& weights : args.weights) {
      encoders.push_back(BertEncoder::load(args.model, load_options(weights, "int8")));
      encoders.back().calibrate_int8(tokenize_lines(encoders.back(), lines, cut), options);
    }
  }
  const BertEncoder& encoder = encoders.front();
  if (args.attention_dtypes.empty())
    throw InvalidArgument("--attention-dtype: expected at least one value");
  std::vector<EncodeOptions> configs;
  for (const std::string& dtype : args.attention_dtypes) {
    for (const std::string& text : args.attentions) {
      EncodeOptions config;
      config.attention = parse_layer_patterns(text, encoder.num_layers(), "--attention");
      config.attention_dtype = parse_dtype_arg(dtype, "--attention-dtype");
      configs.push_back(config);
    }
  }
  for (Shape shape : shapes) {
    if (shape.seq > encoder.max_positions()) {
      throw InvalidArgument("--shapes: " + std::to_string(shape.seq) +
                            " tokens exceed the model's " +
                            std::to_string(encoder.max_positions()) + " positions");
    }
  }

  const int threads = args.threads > 0 ? args.threads : omp_get_max_threads();
  const Isa resolved = resolve_isa(isa);
  const double peak = kernels::measure_fma_peak_gflops(resolved, false, threads);
  std::printf("dfss %s bench embed: model %s, hidden %lld, %lld layers, threads=%d isa=%s\n",
              version(), args.model.c_str(), static_cast<long long>(encoder.hidden_size()),
              static_cast<long long>(encoder.num_layers()), threads, isa_name(resolved));
  std::printf("cpu: %s\npeak (FMA loop, %d threads): fp32 %.1f GFLOP/s\n", cpu_model_name().c_str(),
              threads, peak);
  std::printf("%-10s %-34s %10s %5s %12s %8s %7s %9s %7s %7s %7s\n", "shape", "attention",
              "median ms", "reps", "tokens/s", "GFLOP/s", "%peak", "vs dense", "attn%", "linear%",
              "norm%");

  nlohmann::json rows = nlohmann::json::array();
  for (Shape shape : shapes) {
    const auto texts = synthetic_texts(encoder, shape);
    std::vector<float> out(static_cast<size_t>(shape.batch * encoder.hidden_size()));
    const double flops = forward_flops(encoder.hidden_size(), encoder.intermediate_size(),
                                       encoder.num_layers(), shape);
    // Every (weights, attention) case of the shape, timed in turns so that drift in the
    // machine's speed hits them alike; the first is the baseline of "vs dense".
    struct Case {
      const BertEncoder* encoder;
      EncodeOptions options;
      std::string weights, attention;
      std::vector<double> times_ms;
      EncodeProfile profile;
    };
    std::vector<Case> cases;
    for (const BertEncoder& model : encoders) {
      for (const EncodeOptions& config : configs) {
        Case c{&model, config, linear_layers_name(model), attention_config_name(config), {}, {}};
        c.options.threads = threads;
        c.options.isa = isa;
        model.encode(texts, out, c.options);  // warm-up: weights packed, pages touched
        cases.push_back(std::move(c));
      }
    }
    const Clock::time_point shape_start = Clock::now();
    for (int rep = 0; rep < args.reps; ++rep) {
      for (Case& c : cases) {
        const Clock::time_point start = Clock::now();
        c.encoder->encode(texts, out, c.options, &c.profile);
        c.times_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      }
      const double elapsed = std::chrono::duration<double>(Clock::now() - shape_start).count();
      if (rep + 1 >= kMinReps && elapsed > kCaseBudgetSeconds * static_cast<double>(cases.size()))
        break;
    }
    const double dense_ms = median(cases.front().times_ms);
    for (const Case& c : cases) {
      const double ms = median(c.times_ms);
      const EncodeProfile& profile = c.profile;
      const std::string name =
          c.weights == "dense" ? c.attention : "w " + c.weights + " | " + c.attention;
      const double total =
          profile.embeddings_s + profile.linear_s + profile.attention_s + profile.norm_s;
      const auto share = [&](double part) { return total > 0 ? 100.0 * part / total : 0.0; };
      const double tokens_per_s = static_cast<double>(shape.batch * shape.seq) / (ms * 1e-3);
      const double gflops = flops / (ms * 1e-3) * 1e-9;
      const std::string shape_text = std::to_string(shape.batch) + "x" + std::to_string(shape.seq);
      char speedup[32];
      std::snprintf(speedup, sizeof speedup, "%.3fx", dense_ms / ms);
      std::printf("%-10s %-34s %10.2f %5zu %12.0f %8.1f %7.1f %9s %7.1f %7.1f %7.1f\n",
                  shape_text.c_str(), name.c_str(), ms, c.times_ms.size(), tokens_per_s, gflops,
                  100.0 * gflops / peak, speedup, share(profile.attention_s),
                  share(profile.linear_s), share(profile.norm_s + profile.embeddings_s));
      std::fflush(stdout);
      nlohmann::json row = {
          {"batch", shape.batch},
          {"seq", shape.seq},
          {"attention", layer_patterns_string(c.options.attention)},
          {"attention_dtype", dtype_arg_name(c.options.attention_dtype)},
          {"weights", c.encoder->weight_sparsity()},
          {"precision", precision_name(c.encoder->precision())},
          {"int8_static", c.encoder->int8_calibrated()},
          {"ms", ms},
          {"reps", c.times_ms.size()},
          {"tokens_per_s", tokens_per_s},
          {"gflops", gflops},
          {"pct_peak", 100.0 * gflops / peak},
          {"attention_share", share(profile.attention_s) / 100.0},
          {"linear_share", share(profile.linear_s) / 100.0},
          {"threads", threads},
          {"isa", isa_name(resolved)},
          {"dfss_version", version()},
          {"cpu", cpu_model_name()},
          {"speedup_vs_dense", dense_ms / ms},  // vs the first case
      };
      rows.push_back(row);
    }
  }
  if (!args.json.empty()) {
    write_text_file(args.json, rows.dump(2) + "\n", "--json");
    std::printf("wrote %s\n", args.json.c_str());
  }
}

}  // namespace dfss::cli
