// `dfss attention`: attention over .npy files, written to a .npy file; with an N:M
// pattern, optionally also the pruned scores as an .npz archive.
#include <CLI/CLI.hpp>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "cli/commands.h"
#include "cli/npy_inputs.h"
#include "cli/scores_export.h"
#include "dfss/attention.h"
#include "dfss/compressed_scores.h"
#include "dfss/errors.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/output_set.h"

namespace dfss::cli {

void add_attention_options(CLI::App& command, AttentionArgs& args) {
  command.add_option("--q", args.q, "queries, float32 [B, H, Lq, d]")
      ->required()
      ->type_name("Q.npy");
  command.add_option("--k", args.k, "keys, float32 [B, H, Lk, d]")->required()->type_name("K.npy");
  command.add_option("--v", args.v, "values, float32 [B, H, Lk, dv]")
      ->required()
      ->type_name("V.npy");
  command
      .add_option("--mask", args.mask,
                  "key-padding mask [B, Lk]: float32 added to the scores, or bool with "
                  "true = attend")
      ->type_name("MASK.npy");
  command.add_flag("--causal", args.causal, "query i sees keys j <= i + Lk - Lq");
  command.add_option("--scale", args.scale, "score scale (default 1/sqrt(d))")
      ->check(fp32_number())
      ->each([&args](const std::string&) { args.has_scale = true; });
  command.add_option("--impl", args.impl, "fused, unfused or reference")->capture_default_str();
  command.add_option("--dtype", args.dtype, "fp32 or bf16 (inputs rounded to bf16)")
      ->capture_default_str();
  command.add_option("--threads", args.threads, "0: OpenMP's default")
      ->check(integer_in_range(0, kMaxThreads))
      ->capture_default_str();
  command.add_option("--out", args.out, "output, float32 [B, H, Lq, dv]")
      ->required()
      ->type_name("OUT.npy");
  command
      .add_option("--pattern", args.pattern,
                  "score sparsity: dense; N:M (keep the N largest of every M keys, "
                  "1 <= N < M <= 8, e.g. 2:4, 1:2); topk:K (the K largest per query row); "
                  "dsa:K[:block=B] (K keys per row in blocks of B chosen by a pooled-key "
                  "predictor, e.g. dsa:256, dsa:256:block=64)")
      ->capture_default_str();
  command
      .add_option("--scores-out", args.scores_out,
                  "with an N:M --pattern: also write the kept scores as .npz (values, columns, "
                  "in_group, pattern; metadata for 2:4)")
      ->type_name("S.npz");
}

namespace {

// What the library's argument names are called on this command line.
std::vector<ArgumentName> argument_names(const AttentionArgs& args) {
  return {
      {"q", "--q " + args.q},
      {"k", "--k " + args.k},
      {"v", "--v " + args.v},
      {"out", "--out " + args.out},
      {"options.mask.additive", "--mask " + args.mask},
      {"options.scale", "--scale"},
      {"options.threads", "--threads"},
      {"options.impl", "--impl " + args.impl},
      {"options.pattern", "--pattern"},
      {"options.isa", "--isa"},
      {"compressed scores", "--scores-out " + args.scores_out},
  };
}

// A view of `data` as `shape`; a shape too large for row-major strides is reported
// against the file it came from.
template <typename T>
auto checked_view(T* data, const std::array<int64_t, 4>& shape, const std::string& what) {
  try {
    if constexpr (std::is_const_v<T>) {
      return const_view(data, shape);
    } else {
      return mutable_view(data, shape);
    }
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(what + ": " + e.what());
  }
}

// Runs `call` (a call of the library); its errors are told in command-line terms.
template <typename Call>
auto in_cli_terms(const AttentionArgs& args, Call&& call) {
  try {
    return call();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(cli_message(e.what(), argument_names(args)));
  } catch (const Unsupported& e) {
    throw Unsupported(cli_message(e.what(), argument_names(args)));
  } catch (const std::bad_alloc&) {
    throw Error("out of memory while computing attention with --impl " + args.impl +
                (args.impl == "fused" ? "" : " (fused needs the least memory)"));
  }
}

// read_input, with running out of memory said as such.
io::NpyArray read_input_or_fail(const std::string& flag, const std::string& path) {
  try {
    return read_input(flag, path);
  } catch (const std::bad_alloc&) {
    throw Error(flag + " " + path + ": out of memory while reading it");
  }
}

}  // namespace

void run_attention(const AttentionArgs& args, Isa isa) {
  // Every argument is checked before any file is read.
  AttentionOptions options;
  options.impl = parse_impl(args.impl, "--impl");
  const DType dtype = parse_dtype_arg(args.dtype, "--dtype");
  options.isa = isa;
  options.causal = args.causal;
  options.threads = args.threads;
  require_threads_arg(args.threads);
  if (args.has_scale) options.scale = args.scale;
  options.pattern = parse_pattern(args.pattern, "--pattern");
  if (!args.scores_out.empty() && !options.pattern.nm()) {
    throw InvalidArgument("--scores-out: needs an N:M --pattern (e.g. --pattern 2:4); got '" +
                          args.pattern + "', " +
                          (options.pattern.dense() ? "which prunes no scores"
                                                   : "whose kept keys are not N:M groups"));
  }
  // The outputs are checked before the work, and committed together after it.
  io::OutputSet outputs;
  const size_t out_index = outputs.add(args.out, "--out");
  const size_t scores_index =
      args.scores_out.empty() ? 0 : outputs.add(args.scores_out, "--scores-out");

  const io::NpyArray q = read_input_or_fail("--q", args.q);
  const io::NpyArray k = read_input_or_fail("--k", args.k);
  const io::NpyArray v = read_input_or_fail("--v", args.v);
  const auto q_shape = require_f32_4d(q, "--q", args.q, "[B, H, Lq, d]");
  const auto k_shape = require_f32_4d(k, "--k", args.k, "[B, H, Lk, d]");
  const auto v_shape = require_f32_4d(v, "--v", args.v, "[B, H, Lk, dv]");
  // Consistency between Q, K and V is left to dfss::attention; in_cli_terms names the flags.

  // The library cannot see a mask's extent, so its shape is checked here.
  std::vector<float> mask;
  if (!args.mask.empty()) {
    mask = additive_mask(read_input_or_fail("--mask", args.mask), "--mask", args.mask, q_shape[0],
                         k_shape[2]);
    options.mask.additive = mask.data();
  }

  const std::array<int64_t, 4> out_shape{q_shape[0], q_shape[1], q_shape[2], v_shape[3]};
  int64_t out_numel = 1;
  for (int64_t dim : out_shape) {
    if (__builtin_mul_overflow(out_numel, dim, &out_numel)) {
      throw InvalidArgument("--out " + args.out + ": shape " + shape_string(out_shape) +
                            " too large: expected at most 2^63 - 1 elements");
    }
  }
  // Uninitialized on purpose: attention() validates shapes before touching it, so a bogus
  // huge shape costs address space only.
  std::unique_ptr<float[]> out;
  try {
    out = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(out_numel));
  } catch (const std::bad_alloc&) {
    throw Error("--out " + args.out + ": out of memory while allocating the output " +
                shape_string(out_shape));
  }

  // bf16 runs on the rounded inputs, which must outlive the views.
  std::vector<uint16_t> q16, k16, v16;
  const std::string q_name = "--q " + args.q, k_name = "--k " + args.k, v_name = "--v " + args.v;
  ConstTensorView q_view = checked_view(q.f32.data(), q_shape, q_name);
  ConstTensorView k_view = checked_view(k.f32.data(), k_shape, k_name);
  ConstTensorView v_view = checked_view(v.f32.data(), v_shape, v_name);
  const TensorView out_view = checked_view(out.get(), out_shape, "--out " + args.out);
  if (dtype == DType::bf16) {
    q16 = to_bf16(q.f32);
    k16 = to_bf16(k.f32);
    v16 = to_bf16(v.f32);
    q_view = checked_view(std::as_const(q16).data(), q_shape, q_name);
    k_view = checked_view(std::as_const(k16).data(), k_shape, k_name);
    v_view = checked_view(std::as_const(v16).data(), v_shape, v_name);
  }
  in_cli_terms(args, [&] { attention(q_view, k_view, v_view, out_view, options); });
  // Both outputs are complete before either replaces its destination, so a failure
  // leaves both as they were.
  if (!args.scores_out.empty()) {
    // Computed before its temporary file is created; freed once written.
    const std::vector<io::NpzEntry> scores = scores_npz_entries(
        in_cli_terms(args, [&] { return compressed_scores(q_view, k_view, v_view, options); }));
    io::write_npz(outputs.file(scores_index), scores);
  }
  io::write_npy(outputs.file(out_index), out.get(), {out_shape.begin(), out_shape.end()});
  outputs.commit();
}

}  // namespace dfss::cli
