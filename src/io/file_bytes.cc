#include "io/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "dfss/errors.h"

namespace dfss::io {
namespace {

// Read size once the size at open has been used up (or was 0, as for /proc files).
constexpr size_t kChunkBytes = size_t{64} << 10;

// "a FIFO", "a character device", ... for "not a regular file" messages.
const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

// Why a file of `mode` cannot be read as `expected`, or "" if it can.
std::string refusal(const std::string& path, mode_t mode, const char* expected) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return path + ": is a directory; expected " + expected;
  return path + ": not a regular file (" + kind_of(mode) + "); expected " + expected;
}

}  // namespace

InputFile::InputFile(const std::string& path, const char* expected) : path_(path) {
  // O_NONBLOCK: opening a FIFO that has no writer returns at once instead of waiting for
  // one; fstat below then refuses it. O_NOCTTY: a terminal never becomes ours.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd_ < 0) {
    const int open_errno = errno;
    struct stat info;
    // A socket cannot be opened at all (ENXIO); say what it is rather than why open failed.
    if (::stat(path.c_str(), &info) == 0) {
      const std::string problem = refusal(path, info.st_mode, expected);
      if (!problem.empty()) throw IoError(problem);
    }
    throw IoError(path + ": cannot open: " + std::strerror(open_errno));
  }
  struct stat info;
  std::string problem;
  if (::fstat(fd_, &info) != 0) {
    problem = path + ": cannot stat: " + std::strerror(errno);
  } else {
    problem = refusal(path, info.st_mode, expected);
  }
  // Reads of a regular file never return EAGAIN, but the flag is cleared all the same so
  // that the descriptor behaves like one opened normally.
  const int flags = problem.empty() ? ::fcntl(fd_, F_GETFL) : 0;
  if (problem.empty() && (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0)) {
    problem = path + ": cannot clear O_NONBLOCK: " + std::strerror(errno);
  }
  if (!problem.empty()) {
    ::close(fd_);
    throw IoError(problem);
  }
  size_at_open_ = static_cast<uint64_t>(info.st_size);
  const uint64_t max = std::numeric_limits<uint64_t>::max() - 1;
  limit_ =
      size_at_open_ > max - kInputGrowthAllowance ? max : size_at_open_ + kInputGrowthAllowance;
}

InputFile::~InputFile() {
  ::close(fd_);
}

size_t InputFile::read(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    // Never more than one byte past the limit: enough to tell that the file went beyond it.
    const uint64_t allowed = limit_ + 1 - position_;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(out.size() - done, allowed));
    const ssize_t got = ::read(fd_, out.data() + done, want);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw IoError(path_ + ": cannot read: " + std::strerror(errno));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
    position_ += static_cast<uint64_t>(got);
    if (position_ > limit_) {
      throw IoError(path_ + ": grew beyond " + std::to_string(limit_) +
                    " bytes while being read (it had " + std::to_string(size_at_open_) +
                    " when opened); expected a file that is not being written to");
    }
  }
  return done;
}

std::vector<uint8_t> InputFile::read_up_to(uint64_t count) {
  // First what the size at open promises, in one allocation (the common case: a regular
  // file that does not change); then chunk by chunk, so that memory follows the bytes
  // that really arrive.
  const uint64_t promised = size_at_open_ > position_ ? size_at_open_ - position_ : 0;
  std::vector<uint8_t> bytes(static_cast<size_t>(std::min(count, promised)));
  const size_t got = read(bytes);
  if (got < bytes.size()) {
    bytes.resize(got);
    return bytes;
  }
  std::vector<uint8_t> chunk;
  while (bytes.size() < count) {
    if (chunk.empty()) chunk.resize(kChunkBytes);
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), count - bytes.size()));
    const size_t more = read({chunk.data(), want});
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<ptrdiff_t>(more));
    if (more < want) break;
  }
  return bytes;
}

uint64_t InputFile::skip_rest() {
  std::vector<uint8_t> chunk(kChunkBytes);
  uint64_t skipped = 0;
  while (true) {
    const size_t got = read(chunk);
    skipped += got;
    if (got < chunk.size()) return skipped;
  }
}

std::vector<uint8_t> read_regular_file(const std::string& path, const char* expected) {
  InputFile file(path, expected);
  return file.read_rest();
}

}  // namespace dfss::io
