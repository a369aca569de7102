// Writes a whole file so that readers never see it half-written: the bytes go to a
// temporary file in the same directory, which is then renamed over the destination. The
// destination rules are those of check_output (output_target.h); several files committed
// together use OutputSet (output_set.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace dfss::io {

// Writes the concatenation of `parts` to `path`, replacing any existing file. On failure
// throws dfss::IoError naming `path` and removes the temporary file, leaving `path` as it
// was.
void write_file_atomically(const std::string& path,
                           std::initializer_list<std::span<const uint8_t>> parts);

}  // namespace dfss::io
