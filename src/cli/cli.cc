#include "cli/cli.h"

#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <new>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "core/thread_probe.h"
#include "dfss/errors.h"
#include "dfss/version.h"
#include "io/temporary_cleanup.h"

namespace dfss::cli {
namespace {

constexpr int kExitError = 2;

// Everything written to stdout is flushed and checked, so that output lost to a full disk
// or a closed descriptor (`dfss info > /dev/full`) fails the command instead of passing.
int with_stdout_flushed(int exit_code) {
  // std::cout writes through stdout's buffer, so either flush may be the one that fails.
  errno = 0;
  std::cout.flush();
  bool failed = !std::cout.good();
  int error = failed ? errno : 0;
  if (std::fflush(stdout) != 0) {
    failed = true;
    error = errno;
  }
  if (!failed && !std::ferror(stdout)) return exit_code;
  std::cerr << "dfss: error: cannot write to standard output"
            << (error != 0 ? std::string(": ") + std::strerror(error) : std::string()) << "\n";
  return kExitError;
}

}  // namespace

namespace {

CLI::Validator integer_validator(int64_t minimum, int64_t maximum, const std::string& expected,
                                 const std::string& name) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        int64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), end, value);
        if (error != std::errc() || stop != end || value < minimum || value > maximum) {
          return "expected " + expected + ", got '" + text + "'";
        }
        return "";
      },
      name);
}

}  // namespace

CLI::Validator fp32_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        // Parsed as double so that values beyond fp32 are recognized as such, not as inf.
        double value = 0;
        const char* begin = text.data() + (text.starts_with('+') ? 1 : 0);
        const char* end = text.data() + text.size();
        const auto [stop, error] = std::from_chars(begin, end, value);
        if (error == std::errc::result_out_of_range) {
          return "expected a number in fp32 range, got '" + text + "' (out of range for fp32)";
        }
        if (error != std::errc() || stop != end || !std::isfinite(value)) {
          return "expected a finite number, got '" + text + "'";
        }
        const double magnitude = std::fabs(value);
        if (magnitude > std::numeric_limits<float>::max() ||
            (magnitude > 0 && magnitude < std::numeric_limits<float>::denorm_min())) {
          return "expected a number in fp32 range (magnitude 1.4e-45 to 3.4e38, or 0), got '" +
                 text + "' (out of range for fp32)";
        }
        return "";
      },
      "");
}

namespace {

// CLI11 takes "--name=" as "--name" and then the next argument as its value, so that
// `--pattern= --out x` complains about --out; and it drops the empty items of a list
// (`--seq 1,,2` runs 1 and 2). Both are refused here, before CLI11 sees them. `app` is
// followed down the subcommands named, so that each option is looked up where it applies.
void refuse_empty_inline_values(CLI::App& app, int argc, char** argv) {
  CLI::App* command = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") return;
    const auto named =
        command->get_subcommands([&](const CLI::App* sub) { return sub->get_name() == arg; });
    if (!named.empty()) {
      command = named.front();
      continue;
    }
    if (!arg.starts_with("--")) continue;
    const size_t equals = arg.find('=');
    const std::string name(arg.substr(0, equals));
    if (equals == arg.size() - 1) {
      throw InvalidArgument(name + ": expected a value, got an empty one");
    }
    const CLI::Option* option = nullptr;
    for (CLI::App* scope = command; scope != nullptr && option == nullptr;
         scope = scope->get_parent()) {
      option = scope->get_option_no_throw(name);
    }
    if (option == nullptr || option->get_delimiter() == '\0') continue;
    const std::string_view value = equals != std::string_view::npos ? arg.substr(equals + 1)
                                   : i + 1 < argc                   ? std::string_view(argv[i + 1])
                                                                    : std::string_view();
    const std::string separator(1, option->get_delimiter());
    if (value.find(separator + separator) != std::string_view::npos ||
        value.starts_with(separator) || value.ends_with(separator)) {
      throw InvalidArgument(name + ": expected a value, got an empty item in '" +
                            std::string(value) + "'");
    }
  }
}

// Checked before any other validator of each option, so that an empty value
// (`--scale ''`) is reported as such rather than as whatever the empty text fails as.
CLI::Validator non_empty() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return text.empty() ? "expected a value, got an empty one" : "";
      },
      "");
}

// Every option that takes a value, in `app` and its subcommands, refuses an empty one.
void refuse_empty_values(CLI::App& app) {
  for (CLI::Option* option : app.get_options([](const CLI::Option*) { return true; })) {
    if (option->get_type_size_max() > 0) option->transform(non_empty());
  }
  for (CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; })) {
    refuse_empty_values(*command);
  }
}

std::string error_message(const CLI::App*, const CLI::Error& error) {
  return std::string("dfss: error: ") + error.what() + "\nRun with --help for more information.\n";
}

}  // namespace

CLI::Validator integer_at_least(int64_t minimum) {
  return integer_validator(minimum, INT64_MAX, "an integer >= " + std::to_string(minimum),
                           "INT>=" + std::to_string(minimum));
}

CLI::Validator integer_in_range(int64_t minimum, int64_t maximum) {
  const std::string range = std::to_string(minimum) + ".." + std::to_string(maximum);
  return integer_validator(minimum, maximum, "an integer in " + range, "INT:" + range);
}

void require_threads_arg(int threads) {
  const int resolved = threads > 0 ? threads : std::max(1, omp_get_max_threads());
  detail::require_threads(
      resolved,
      "--threads " + std::to_string(threads) +
          (threads > 0 ? std::string() : " (OpenMP's default, " + std::to_string(resolved) + ")"));
}

std::string cli_message(const std::string& message, const std::vector<ArgumentName>& names) {
  // The leading "argument: " says which argument is at fault; it gets the full form, which
  // may hold a path, so the mentions below are looked for only after it.
  std::string result;
  size_t i = 0;
  for (const auto& [library, cli] : names) {
    if (message.starts_with(library + ": ") || message.starts_with(library + " = ")) {
      result = cli;
      i = library.size();
      break;
    }
  }
  // Later mentions ("(same as q)", "overlapping options.mask.additive") get the flag only,
  // matched as whole words: "q" but not "Lq", "out" but not "without".
  const auto is_word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  };
  while (i < message.size()) {
    const ArgumentName* mention = nullptr;
    if (i == 0 || !is_word(message[i - 1])) {
      for (const ArgumentName& name : names) {
        const size_t end = i + name.library.size();
        // Only a name that fits in the rest of the message can be there.
        if (end > message.size() || message.compare(i, name.library.size(), name.library) != 0)
          continue;
        // A sentence's full stop may follow the name.
        const bool ends_word =
            end == message.size() || !is_word(message[end]) ||
            (message[end] == '.' && (end + 1 == message.size() || !is_word(message[end + 1])));
        if (ends_word) {
          mention = &name;
          break;
        }
      }
    }
    if (mention == nullptr) {
      result += message[i++];
    } else {
      result += mention->cli.substr(0, mention->cli.find(' '));
      i += mention->library.size();
    }
  }
  return result;
}

DType parse_dtype_arg(const std::string& text, const std::string& argument) {
  if (text == "fp32") return DType::f32;
  if (text == "bf16") return DType::bf16;
  throw InvalidArgument(argument + ": expected one of fp32, bf16; got '" + text + "'");
}

const char* dtype_arg_name(DType dtype) {
  return dtype == DType::f32 ? "fp32" : "bf16";
}

int run(int argc, char** argv) {
  CLI::App app("dfss: dynamic N:M sparse attention on CPU", "dfss");
  app.set_version_flag("--version", std::string("dfss ") + version());
  app.require_subcommand(1);
  // Lets global options such as --isa also follow the subcommand.
  app.fallthrough();

  std::string isa_text = "auto";
  app.add_option("--isa", isa_text,
                 "kernels to use: auto, scalar, avx2, avx512, avx512_bf16 (default: DFSS_ISA "
                 "or the best this CPU supports)");

  CLI::App* info = app.add_subcommand("info", "Show the detected ISA, kernels and threads");

  AttentionArgs attention_args;
  CLI::App* attention = app.add_subcommand("attention", "Run attention on .npy files");
  add_attention_options(*attention, attention_args);

  BenchAttentionArgs bench_args;
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  bench->fallthrough();
  CLI::App* bench_attention =
      bench->add_subcommand("attention", "Time attention implementations on random inputs");
  add_bench_attention_options(*bench_attention, bench_args);

  BenchTopkArgs bench_topk_args;
  CLI::App* bench_topk = bench->add_subcommand(
      "topk", "Time top-k selection per row against std::nth_element, partial_sort and a heap");
  add_bench_topk_options(*bench_topk, bench_topk_args);

  BenchGemmArgs bench_gemm_args;
  CLI::App* bench_gemm =
      bench->add_subcommand("gemm", "Time block-sparse linear layers against oneDNN's dense GEMM");
  add_bench_gemm_options(*bench_gemm, bench_gemm_args);

  BenchEmbedArgs bench_embed_args;
  CLI::App* bench_embed = bench->add_subcommand(
      "embed", "Time the sentence-embedding model end to end on synthetic batches");
  add_bench_embed_options(*bench_embed, bench_embed_args);

  EmbedArgs embed_args;
  CLI::App* embed = app.add_subcommand(
      "embed", "Sentence embeddings of a text file (BERT, e.g. all-MiniLM-L6-v2)");
  add_embed_options(*embed, embed_args);

  EvalEmbedArgs eval_embed_args;
  CLI::App* eval = app.add_subcommand("eval", "Accuracy of sparse attention on real models");
  eval->require_subcommand(1);
  eval->fallthrough();
  CLI::App* eval_embed = eval->add_subcommand(
      "embed", "Per-text cosine of N:M-attention embeddings to dense ones, and throughput");
  add_eval_embed_options(*eval_embed, eval_embed_args);

  app.failure_message(error_message);
  refuse_empty_values(app);
  try {
    refuse_empty_inline_values(app, argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, with exit code 0.
    return with_stdout_flushed(app.exit(e) == 0 ? 0 : kExitError);
  } catch (const Error& e) {
    std::cerr << "dfss: error: " << e.what() << "\n";
    return with_stdout_flushed(kExitError);
  }

  // An interrupted write must not leave its temporary file behind.
  io::remove_temporaries_on_signals();
  try {
    const Isa isa = parse_isa(isa_text, "--isa");
    // Checked here once for every command, which would otherwise each word it their own way.
    if (isa != Isa::automatic && !isa_supported(isa)) {
      throw Unsupported(std::string("--isa: expected an ISA this CPU supports (best: ") +
                        isa_name(detected_isa()) + "), got " + isa_name(isa));
    }
    if (info->parsed()) run_info(isa);
    if (attention->parsed()) run_attention(attention_args, isa);
    if (bench_attention->parsed()) run_bench_attention(bench_args, isa);
    if (bench_embed->parsed()) run_bench_embed(bench_embed_args, isa);
    if (bench_topk->parsed()) run_bench_topk(bench_topk_args, isa);
    if (bench_gemm->parsed()) run_bench_gemm(bench_gemm_args, isa);
    if (embed->parsed()) run_embed(embed_args, isa);
    if (eval_embed->parsed()) run_eval_embed(eval_embed_args, isa);
    return with_stdout_flushed(0);
  } catch (const Error& e) {
    std::cerr << "dfss: error: " << e.what() << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "dfss: error: out of memory\n";
  }
  return with_stdout_flushed(kExitError);
}

}  // namespace dfss::cli
