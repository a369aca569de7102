// The dfss subcommands: their arguments, how they register with CLI11, and how they run.
// cli.cc owns parsing and error reporting; each command lives in its own file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/embedding_run.h"
#include "dfss/cpu.h"
#include "dfss/tensor.h"

namespace CLI {
class App;
class Validator;
}  // namespace CLI

namespace dfss::cli {

// `dfss info`: ISAs, kernel names and threads. `isa` is the --isa choice.
void run_info(Isa isa);

struct AttentionArgs {
  std::string q, k, v, mask, out;
  bool causal = false;
  float scale = 0.0f;  // only used when has_scale
  bool has_scale = false;
  std::string impl = "fused";
  std::string dtype = "fp32";
  int threads = 0;
  std::string pattern = "dense";
  std::string scores_out;  // .npz of the pruned scores; needs an N:M pattern
};
void add_attention_options(CLI::App& command, AttentionArgs& args);
void run_attention(const AttentionArgs& args, Isa isa);

struct BenchAttentionArgs {
  std::vector<int64_t> seq{384, 1024, 2048, 4096};
  int64_t batch = 1;
  int64_t heads = 12;
  int64_t dim = 64;
  std::vector<std::string> dtypes{"fp32", "bf16"};
  std::vector<std::string> impls{"fused", "unfused"};
  std::vector<std::string> patterns{"dense"};
  int threads = 0;
  int reps = 5;
  std::string json;
  bool causal = false;
};
void add_bench_attention_options(CLI::App& command, BenchAttentionArgs& args);
void run_bench_attention(const BenchAttentionArgs& args, Isa isa);

struct BenchTopkArgs {
  std::vector<int64_t> lengths{1024, 4096, 16384, 65536, 1048576};
  std::vector<std::string> ks{"8", "64", "256", "2048", "L/16", "L/8"};
  int64_t rows = 0;
  std::vector<std::string> distributions{"uniform",  "normal",     "sorted",
                                         "reversed", "duplicates", "scores"};
  std::vector<std::string> methods{"nth_element+sort", "partial_sort", "heap", "unordered"};
  double seconds = 2.0;
  int threads = 0;
  std::string json;
};
void add_bench_topk_options(CLI::App& command, BenchTopkArgs& args);
void run_bench_topk(const BenchTopkArgs& args, Isa isa);

struct BenchGemmArgs {
  int64_t tokens = 4096;
  std::vector<std::string> shapes{"384:1152", "384:384", "384:1536", "1536:384"};
  std::vector<std::string> patterns{"1:1x16", "2:4x16", "1:4x16", "2:8x16", "2:4x1"};
  int rounds = 15;
  int threads = 0;
  std::string json;
};
void add_bench_gemm_options(CLI::App& command, BenchGemmArgs& args);
void run_bench_gemm(const BenchGemmArgs& args, Isa isa);

struct EmbedArgs {
  EmbedInputArgs input;
  std::string output;
};
void add_embed_options(CLI::App& command, EmbedArgs& args);
void run_embed(const EmbedArgs& args, Isa isa);

struct EvalEmbedArgs {
  EmbedInputArgs input;
  std::string json;
  int reps = 3;  // timed passes per attention, interleaved with the other's
};
void add_eval_embed_options(CLI::App& command, EvalEmbedArgs& args);
void run_eval_embed(const EvalEmbedArgs& args, Isa isa);

struct BenchEmbedArgs {
  std::string model = "models/all-MiniLM-L6-v2";
  std::vector<std::string> shapes{"32x128", "8x512"};
  std::vector<std::string> attentions{"dense", "2:4"};
  std::vector<std::string> weights{"model"};
  std::vector<std::string> precisions{"fp32"};
  std::vector<std::string> attention_dtypes{"fp32"};
  std::string calibration;  // also time int8 with static scales calibrated on these texts
  int threads = 0;
  int reps = 5;
  std::string json;
};
void add_bench_embed_options(CLI::App& command, BenchEmbedArgs& args);
void run_bench_embed(const BenchEmbedArgs& args, Isa isa);

// Accept a decimal integer >= `minimum` (and <= `maximum`); CLI11's own number checks
// print a 300-digit range.
CLI::Validator integer_at_least(int64_t minimum);
CLI::Validator integer_in_range(int64_t minimum, int64_t maximum);
// Accept a finite decimal number that fp32 represents without overflow or underflow to 0
// (CLI11 would turn 1e39 into inf); the message echoes the text.
CLI::Validator fp32_number();

// Upper bound of --threads: far above any real machine, well below what crashes OpenMP.
inline constexpr int kMaxThreads = 1024;

// Before a command's first parallel region: checks that the threads --threads asks for
// (0: OpenMP's default) can be started, since libgomp would end the process otherwise;
// throws dfss::Unsupported naming --threads.
void require_threads_arg(int threads);

// A library argument name ("q", "options.scale") and what the command line calls it
// ("--q Q.npy", "--scale").
struct ArgumentName {
  std::string library, cli;
};
// A library error message in command-line terms: a leading argument name is replaced by
// its `cli` form, later whole-word mentions by the flag alone (the first word of `cli`).
std::string cli_message(const std::string& message, const std::vector<ArgumentName>& names);

// The command line spells dtypes "fp32" and "bf16"; throws InvalidArgument naming
// `argument` for anything else.
DType parse_dtype_arg(const std::string& text, const std::string& argument);
const char* dtype_arg_name(DType dtype);

}  // namespace dfss::cli
