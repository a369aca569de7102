// `dfss embed`: sentence embeddings of a text file, written as float32 .npy [texts, hidden].
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/embedding_run.h"
#include "cli/text_lines.h"
#include "dfss/errors.h"
#include "io/npy.h"
#include "io/output_set.h"

namespace dfss::cli {

void add_embed_options(CLI::App& command, EmbedArgs& args) {
  args.input.attention = "dense";
  add_embed_input_options(command, args.input,
                          "dense, N:M (e.g. 2:4) for every layer, or a comma list with one "
                          "entry per layer (e.g. dense,dense,2:4,2:4,2:4,2:4)");
  command.add_option("--output", args.output, "embeddings, float32 [texts, hidden]")
      ->required()
      ->type_name("EMB.npy");
}

void run_embed(const EmbedArgs& args, Isa isa) {
  require_threads_arg(args.input.threads);
  // Checked before the model is loaded, so that a bad --output does not cost a whole run.
  io::OutputSet outputs;
  const size_t output = outputs.add(args.output, "--output");
  BertEncoder encoder =
      BertEncoder::load(args.input.model, load_options(args.input.weights, args.input.precision));
  const EncodeOptions options = encode_options(args.input, encoder, isa);
  calibrate_if_asked(encoder, args.input, options);
  const std::vector<std::string> lines = read_text_lines(args.input.input);
  const auto texts = tokenize_lines(encoder, lines, args.input);
  const EmbedRun run = embed_all(encoder, texts, options, args.input.batch, "embed");
  io::write_npy(outputs.file(output), run.embeddings.data(),
                {static_cast<int64_t>(texts.size()), encoder.hidden_size()});
  outputs.commit();
}

}  // namespace dfss::cli
