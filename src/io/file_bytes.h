// Reading a whole input file into memory, for formats that are parsed from a byte image
// (such as .npz archives, whose index is at the end).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dfss::io {

// An open regular file (closed on destruction) and its size.
class RegularFile {
 public:
  // Opens `path` read-only; `expected` says what the file should be (e.g. "an .npz file")
  // in errors. Throws IoError naming `path` if it cannot be opened, or is a directory or
  // another non-regular file (whose size is not known up front).
  RegularFile(const std::string& path, const char* expected);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  int fd() const { return fd_; }
  size_t size() const { return size_; }

 private:
  int fd_;
  size_t size_ = 0;
};

// The contents of the regular file at `path`. `expected` says what the file should be
// (e.g. "an .npz file") in errors. Throws IoError naming `path` if it cannot be opened or
// read, or is a directory or another non-regular file (whose size is not known up front).
std::vector<uint8_t> read_regular_file(const std::string& path, const char* expected);

}  // namespace dfss::io
