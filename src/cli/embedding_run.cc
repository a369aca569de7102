#include "cli/embedding_run.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <new>
#include <span>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/text_lines.h"
#include "dfss/errors.h"

namespace dfss::cli {
namespace {

// Below this many batches a progress bar is more noise than help.
constexpr int64_t kProgressMinBatches = 8;

}  // namespace

void add_embed_input_options(CLI::App& command, EmbedInputArgs& args,
                             const std::string& attention_help) {
  command
      .add_option("--model", args.model, "model folder (config.json, model.safetensors, vocab.txt)")
      ->capture_default_str();
  command.add_option("--input", args.input, "texts, one per line, UTF-8")
      ->required()
      ->type_name("TEXTS.txt");
  command.add_option("--attention", args.attention, attention_help)->capture_default_str();
  command.add_option("--batch", args.batch, "texts per forward pass")
      ->check(integer_in_range(1, 1 << 20))
      ->capture_default_str();
  command
      .add_option("--max-len", args.max_len,
                  "tokens per text, [CLS] and [SEP] included; longer texts are cut")
      ->check(integer_in_range(2, 1 << 20))
      ->capture_default_str();
  command.add_option("--threads", args.threads, "0: OpenMP's default")
      ->check(integer_in_range(0, kMaxThreads))
      ->capture_default_str();
  command.add_option("--weights", args.weights, kWeightsHelp)->capture_default_str();
  command.add_option("--precision", args.precision, kPrecisionHelp)->capture_default_str();
  command.add_option("--attention-dtype", args.attention_dtype, kAttentionDtypeHelp)
      ->capture_default_str();
  command.add_option("--calibration", args.calibration, kCalibrationHelp)->type_name("TEXTS.txt");
}

void calibrate_if_asked(BertEncoder& encoder, const EmbedInputArgs& args,
                        const EncodeOptions& options) {
  if (args.calibration.empty()) return;
  if (encoder.precision() != Precision::int8) {
    throw InvalidArgument("--calibration: only with --precision int8 (the model runs " +
                          std::string(precision_name(encoder.precision())) + ")");
  }
  const std::vector<std::string> lines = read_text_lines(args.calibration);
  if (lines.empty()) {
    throw InvalidArgument("--calibration " + args.calibration +
                          ": expected at least one text (one per line), got an empty file");
  }
  encoder.calibrate_int8(tokenize_lines(encoder, lines, args), options);
}

LoadOptions load_options(const std::string& weights, const std::string& precision) {
  LoadOptions options;
  if (weights == "dense")
    options.dense_weights = true;
  else if (weights != "model")
    options.prune_weights =
        parse_block_sparse_pattern(weights, "--weights (model, dense or N:MxV)");
  options.precision = parse_precision(precision, "--precision");
  return options;
}

std::string linear_layers_name(const BertEncoder& encoder) {
  const std::string weights = encoder.weight_sparsity();
  return encoder.precision() == Precision::fp32
             ? weights
             : weights + " " + precision_name(encoder.precision()) +
                   (encoder.int8_calibrated() ? " static" : "");
}

EncodeOptions encode_options(const EmbedInputArgs& args, const BertEncoder& encoder, Isa isa) {
  EncodeOptions options;
  options.attention = parse_layer_patterns(args.attention, encoder.num_layers(), "--attention");
  options.attention_dtype = parse_dtype_arg(args.attention_dtype, "--attention-dtype");
  options.threads = args.threads;
  options.isa = isa;
  return options;
}

std::string attention_config_name(const EncodeOptions& options) {
  const std::string patterns = layer_patterns_string(options.attention);
  return options.attention_dtype == DType::bf16 ? patterns + " bf16" : patterns;
}

std::vector<std::vector<int32_t>> tokenize_lines(const BertEncoder& encoder,
                                                 const std::vector<std::string>& lines,
                                                 const EmbedInputArgs& args) {
  if (args.max_len > encoder.max_positions()) {
    throw InvalidArgument("--max-len: expected at most " + std::to_string(encoder.max_positions()) +
                          " (the model's max_position_embeddings), got " +
                          std::to_string(args.max_len));
  }
  try {
    std::vector<std::vector<int32_t>> texts;
    texts.reserve(lines.size());
    for (const std::string& line : lines) {
      texts.push_back(encoder.tokenizer().encode(line, static_cast<size_t>(args.max_len)));
    }
    return texts;
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("out of memory while tokenizing the " + std::to_string(lines.size()) +
                      " lines of " + args.input);
  }
}

EmbedRun embed_all(const BertEncoder& encoder, const std::vector<std::vector<int32_t>>& texts,
                   const EncodeOptions& options, int64_t batch, const std::string& label) {
  const int64_t count = static_cast<int64_t>(texts.size());
  const int64_t hidden = encoder.hidden_size();
  EmbedRun run;
  const auto floats = static_cast<size_t>(count * hidden);
  try {
    run.embeddings.resize(floats);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("out of memory while allocating the embeddings of " + std::to_string(count) +
                      " texts (" + std::to_string((floats * sizeof(float) + (1 << 20) - 1) >> 20) +
                      " MB)");
  }
  for (const auto& text : texts) run.tokens += static_cast<int64_t>(text.size());

  ProgressBar progress(label, count, kProgressMinBatches * batch);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t first = 0; first < count; first += batch) {
    const int64_t n = std::min(batch, count - first);
    encoder.encode(std::span(texts).subspan(first, n),
                   std::span(run.embeddings).subspan(first * hidden, n * hidden), options);
    progress.update(first + n);
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace dfss::cli
