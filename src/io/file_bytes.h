// Reading a whole input file into memory, for formats that are parsed from a byte image
// (such as .npz archives, whose index is at the end).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfss::io {

// The contents of the regular file at `path`. `expected` says what the file should be
// (e.g. "an .npz file") in errors. Throws IoError naming `path` if it cannot be opened or
// read, or is a directory or another non-regular file (whose size is not known up front).
std::vector<uint8_t> read_regular_file(const std::string& path, const char* expected);

}  // namespace dfss::io
