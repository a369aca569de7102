// Reading a text file of one input per line, for the commands that embed texts.
#pragma once

#include <string>
#include <vector>

namespace dfss::cli {

// The lines of the UTF-8 file at `path`, without their "\n" (or "\r\n"). Empty lines are
// texts too; a final newline does not start one more. Throws IoError if the file cannot
// be read (it must be a regular file; see io/file_bytes.h) and FormatError "<path>:<line>: invalid
// UTF-8 at byte <column>: <reason>" for the first malformed line, before anything else is done with
// the file.
std::vector<std::string> read_text_lines(const std::string& path);

}  // namespace dfss::cli
