// `dfss attention`: attention over .npy files, written to a .npy file; with an N:M
// pattern, optionally also the pruned scores as an .npz archive.
#include <CLI/CLI.hpp>
#include <memory>

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
                  "score sparsity: dense, or N:M (keep the N largest of every M keys, "
                  "1 <= N < M <= 8, e.g. 2:4, 1:2)")
      ->capture_default_str();
  command
      .add_option("--scores-out", args.scores_out,
                  "with an N:M --pattern: also write the kept scores as .npz (values, columns, "
                  "in_group, pattern; metadata for 2:4)")
      ->type_name("S.npz");
}

void run_attention(const AttentionArgs& args, Isa isa) {
  // Every argument is checked before any file is read.
  AttentionOptions options;
  options.impl = parse_impl(args.impl, "--impl");
  const DType dtype = parse_dtype_arg(args.dtype, "--dtype");
  options.isa = isa;
  options.causal = args.causal;
  options.threads = args.threads;
  if (args.has_scale) options.scale = args.scale;
  options.pattern = parse_pattern(args.pattern, "--pattern");
  if (!args.scores_out.empty() && options.pattern.dense()) {
    throw InvalidArgument("--scores-out: needs an N:M --pattern (e.g. --pattern 2:4); got '" +
                          args.pattern + "', which prunes no scores");
  }
  // The outputs are checked before the work, and committed together after it.
  io::OutputSet outputs;
  const size_t out_index = outputs.add(args.out, "--out");
  const size_t scores_index =
      args.scores_out.empty() ? 0 : outputs.add(args.scores_out, "--scores-out");

  const io::NpyArray q = read_input("--q", args.q);
  const io::NpyArray k = read_input("--k", args.k);
  const io::NpyArray v = read_input("--v", args.v);
  const auto q_shape = require_f32_4d(q, "--q", args.q, "[B, H, Lq, d]");
  const auto k_shape = require_f32_4d(k, "--k", args.k, "[B, H, Lk, d]");
  const auto v_shape = require_f32_4d(v, "--v", args.v, "[B, H, Lk, dv]");
  // Consistency between Q, K and V is left to dfss::attention, which names the argument.

  // The library cannot see a mask's extent, so its shape is checked here.
  std::vector<float> mask;
  if (!args.mask.empty()) {
    mask =
        additive_mask(read_input("--mask", args.mask), "--mask", args.mask, q_shape[0], k_shape[2]);
    options.mask.additive = mask.data();
  }

  const std::array<int64_t, 4> out_shape{q_shape[0], q_shape[1], q_shape[2], v_shape[3]};
  int64_t out_numel = 1;
  for (int64_t dim : out_shape) {
    if (__builtin_mul_overflow(out_numel, dim, &out_numel)) {
      throw InvalidArgument("--out: output shape " + shape_string(out_shape) + " is too large");
    }
  }
  // Uninitialized on purpose: attention() validates shapes before touching it, so a bogus
  // huge shape costs address space only.
  const auto out = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(out_numel));

  // bf16 runs on the rounded inputs, which must outlive the views.
  std::vector<uint16_t> q16, k16, v16;
  ConstTensorView q_view = const_view(q.f32.data(), q_shape);
  ConstTensorView k_view = const_view(k.f32.data(), k_shape);
  ConstTensorView v_view = const_view(v.f32.data(), v_shape);
  if (dtype == DType::bf16) {
    q16 = to_bf16(q.f32);
    k16 = to_bf16(k.f32);
    v16 = to_bf16(v.f32);
    q_view = const_view(q16.data(), q_shape);
    k_view = const_view(k16.data(), k_shape);
    v_view = const_view(v16.data(), v_shape);
  }
  attention(q_view, k_view, v_view, mutable_view(out.get(), out_shape), options);
  // Both outputs are complete before either replaces its destination, so a failure
  // leaves both as they were.
  if (!args.scores_out.empty()) {
    // Computed before its temporary file is created; freed once written.
    const std::vector<io::NpzEntry> scores =
        scores_npz_entries(compressed_scores(q_view, k_view, v_view, options));
    io::write_npz(outputs.file(scores_index), scores);
  }
  io::write_npy(outputs.file(out_index), out.get(), {out_shape.begin(), out_shape.end()});
  outputs.commit();
}

}  // namespace dfss::cli
