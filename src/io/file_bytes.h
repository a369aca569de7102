// Opening and reading input files. Every file dfss reads (.npy, .npz, .safetensors,
// config.json, vocab.txt, text inputs) is opened here, under one set of rules:
//
// - Opening never blocks and only regular files are read. The file is opened with
//   O_NONBLOCK (so that a FIFO without a writer cannot block open() forever), O_NOCTTY and
//   O_CLOEXEC, checked with fstat and refused before any byte is read unless it is a
//   regular file ("<path>: not a regular file; expected ..." for FIFOs, devices and
//   sockets, "<path>: is a directory; expected ..."). O_NONBLOCK is then cleared.
// - Files are read to their end. The size fstat reports is only a hint for the first
//   buffer: files such as /proc/self/status report 0 and still have contents.
// - Growth is bounded. A file that yields more than its size at open plus
//   kInputGrowthAllowance (one still being appended to) is refused with IoError "<path>:
//   grew beyond N bytes while being read", so it cannot exhaust memory.
// - Memory follows the bytes actually read: asking for more bytes than the file holds
//   (e.g. a length field in a corrupt header) allocates no more than what is there.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dfss::io {

// How many bytes beyond its size at open a file may yield before reading it is refused.
inline constexpr uint64_t kInputGrowthAllowance = uint64_t{64} << 20;

// A regular file open for sequential reading (closed on destruction).
class InputFile {
 public:
  // Opens `path` as described above; `expected` says what the file should be (e.g. "an
  // .npz file") in errors. Throws IoError naming `path` if it cannot be opened or is not a
  // regular file.
  InputFile(const std::string& path, const char* expected);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  // The size fstat reported at open: a hint, not a promise.
  uint64_t size_at_open() const { return size_at_open_; }
  // Bytes read so far.
  uint64_t position() const { return position_; }

  // Fills `out` with the next bytes; returns fewer than out.size() only at end of file.
  // Throws IoError on a read error or once the growth limit is passed.
  size_t read(std::span<uint8_t> out);

  // The next `count` bytes, or fewer if the file ends first. The buffer grows with the
  // bytes that actually arrive, beyond what the size at open promises.
  std::vector<uint8_t> read_up_to(uint64_t count);

  // Everything from the current position to the end of the file.
  std::vector<uint8_t> read_rest() { return read_up_to(UINT64_MAX); }

  // Reads and discards the rest of the file; returns how many bytes it had.
  uint64_t skip_rest();

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_at_open_ = 0;
  uint64_t position_ = 0;
  uint64_t limit_ = 0;  // position_ may not pass this (size at open + growth allowance)
};

// The contents of the regular file at `path`, read to its end under the rules above.
// `expected` says what the file should be (e.g. "an .npz file") in errors.
std::vector<uint8_t> read_regular_file(const std::string& path, const char* expected);

}  // namespace dfss::io
