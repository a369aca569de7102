// The per-layer attention choice of a BERT encoder: "2:4" for all layers, or one per layer.
#include <string>
#include <vector>

#include "dfss/bert.h"
#include "dfss/errors.h"

namespace dfss {

std::vector<SparsityPattern> parse_layer_patterns(const std::string& text, int64_t num_layers,
                                                  const std::string& argument_name) {
  std::vector<std::string> entries;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    entries.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (entries.size() == 1) {
    return std::vector<SparsityPattern>(static_cast<size_t>(num_layers),
                                        parse_pattern(entries[0], argument_name));
  }
  if (static_cast<int64_t>(entries.size()) != num_layers) {
    throw InvalidArgument(argument_name + ": expected one pattern for all layers or a list of " +
                          std::to_string(num_layers) + " (one per layer), got " +
                          std::to_string(entries.size()) + " entries in '" + text + "'");
  }
  std::vector<SparsityPattern> patterns;
  for (size_t i = 0; i < entries.size(); ++i) {
    patterns.push_back(
        parse_pattern(entries[i], argument_name + " (entry " + std::to_string(i + 1) + ")"));
  }
  return patterns;
}

std::string layer_patterns_string(std::span<const SparsityPattern> patterns) {
  if (patterns.empty()) return "dense";
  bool uniform = true;
  for (const SparsityPattern& p : patterns) {
    uniform = uniform && p.n == patterns[0].n && p.m == patterns[0].m;
  }
  if (uniform) return patterns[0].to_string();
  std::string text;
  for (const SparsityPattern& p : patterns) {
    if (!text.empty()) text += ',';
    text += p.to_string();
  }
  return text;
}

}  // namespace dfss
