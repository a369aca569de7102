#include "cli/text_lines.h"

#include <string_view>

#include "dfss/errors.h"
#include "io/file_bytes.h"
#include "tokenizer/unicode.h"

namespace dfss::cli {

std::vector<std::string> read_text_lines(const std::string& path) {
  const std::vector<uint8_t> bytes =
      io::read_regular_file(path, "a text file (one UTF-8 text per line)");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::vector<std::string> lines;
  std::u32string decoded;  // only for validation
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    decoded.clear();
    if (auto error = tokenizer::detail::decode_utf8(line, decoded)) {
      throw FormatError(path + ":" + std::to_string(lines.size() + 1) + ": invalid UTF-8 at byte " +
                        std::to_string(error->offset + 1) + " of the line: " + error->reason);
    }
    lines.emplace_back(line);
    start = end + 1;
  }
  return lines;
}

}  // namespace dfss::cli
