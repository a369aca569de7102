// What `dfss embed` and `dfss eval embed` share: their common options, tokenizing a text
// file, and running the encoder over it batch by batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dfss/bert.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dfss::cli {

struct EmbedInputArgs {
  std::string model = "models/all-MiniLM-L6-v2";
  std::string input;
  std::string attention;  // default set by each command
  int64_t batch = 32;
  int64_t max_len = 256;
  int threads = 0;
  std::string weights = "model";   // see load_options()
  std::string precision = "fp32";  // see load_options()
  std::string attention_dtype = "fp32";
  std::string calibration;  // texts for static int8 scales; empty: per-token scales
};
void add_embed_input_options(CLI::App& command, EmbedInputArgs& args,
                             const std::string& attention_help);

// The --weights argument (`flag`): "model" (the folder's weights, block-sparse layers from its
// dfss_block_sparse.safetensors if it has one), "dense" (that file ignored) or a block-sparse
// pattern N:MxV (every linear layer pruned to it at load, by magnitude); and the --precision
// argument, fp32, bf16 or int8. Throws InvalidArgument naming the flag at fault otherwise.
LoadOptions load_options(const std::string& weights, const std::string& precision);
inline constexpr char kPrecisionHelp[] =
    "linear layers' numbers: fp32; bf16 (bf16 weights and activations, fp32 accumulation; "
    "needs AVX-512); or int8 (7-bit weights per output row, u8 activations per token); "
    "docs/quantization.md";

// The linear layers in a few words: "dense", "dense int8", "2:4x16 (36/36 linears)".
std::string linear_layers_name(const BertEncoder& encoder);
inline constexpr char kWeightsHelp[] =
    "linear layers: model (the folder's, block-sparse where it has "
    "dfss_block_sparse.safetensors), dense, or N:MxV to prune every layer at load (e.g. 2:4x16)";

inline constexpr char kAttentionDtypeHelp[] =
    "attention's Q, K and V: fp32, or bf16 (rounded after the QKV layer; faster on "
    "AVX512-BF16 CPUs, no gain elsewhere); independent of --precision";

// The encoder options the arguments ask for: --attention parsed against the model's
// layers, --attention-dtype, --threads, and the ISA.
EncodeOptions encode_options(const EmbedInputArgs& args, const BertEncoder& encoder, Isa isa);

// --calibration: with a file, calibrates the int8 layers' static scales on its texts
// (tokenized as --input, with --max-len); refuses it unless the model runs int8.
void calibrate_if_asked(BertEncoder& encoder, const EmbedInputArgs& args,
                        const EncodeOptions& options);
inline constexpr char kCalibrationHelp[] =
    "with --precision int8: texts (one per line) whose activation ranges fix each int8 "
    "layer's input scale (static quantization); without it, scales are per token";

// The attention of `options` in a few words: "2:4", "dense bf16" (bf16 Q, K and V).
std::string attention_config_name(const EncodeOptions& options);

// Checks --max-len against the model, then tokenizes every line ([CLS] ... [SEP], cut to
// --max-len tokens).
std::vector<std::vector<int32_t>> tokenize_lines(const BertEncoder& encoder,
                                                 const std::vector<std::string>& lines,
                                                 const EmbedInputArgs& args);

struct EmbedRun {
  std::vector<float> embeddings;  // [texts, hidden]
  int64_t tokens = 0;
  double seconds = 0;  // encoder time, tokenization excluded
};

// Encodes `texts` in batches of `batch` texts; a progress bar labelled `label` on a
// terminal when there are many.
EmbedRun embed_all(const BertEncoder& encoder, const std::vector<std::vector<int32_t>>& texts,
                   const EncodeOptions& options, int64_t batch, const std::string& label);

}  // namespace dfss::cli
