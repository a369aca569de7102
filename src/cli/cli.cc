#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <string>

#include "cli/commands.h"
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

CLI::Validator integer_at_least(int64_t minimum) {
  return integer_validator(minimum, INT64_MAX, "an integer >= " + std::to_string(minimum),
                           "INT>=" + std::to_string(minimum));
}

CLI::Validator integer_in_range(int64_t minimum, int64_t maximum) {
  const std::string range = std::to_string(minimum) + ".." + std::to_string(maximum);
  return integer_validator(minimum, maximum, "an integer in " + range, "INT:" + range);
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

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, with exit code 0.
    return with_stdout_flushed(app.exit(e) == 0 ? 0 : kExitError);
  }

  // An interrupted write must not leave its temporary file behind.
  io::remove_temporaries_on_signals();
  try {
    const Isa isa = parse_isa(isa_text, "--isa");
    if (info->parsed()) run_info(isa);
    if (attention->parsed()) run_attention(attention_args, isa);
    if (bench_attention->parsed()) run_bench_attention(bench_args, isa);
    if (bench_embed->parsed()) run_bench_embed(bench_embed_args, isa);
    if (bench_topk->parsed()) run_bench_topk(bench_topk_args, isa);
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
