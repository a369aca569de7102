#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "dfss/errors.h"

namespace dfss::io {
namespace {

[[noreturn]] void throw_io(const std::string& path, const char* what, int error) {
  throw IoError(path + ": " + what + ": " + std::strerror(error));
}

// A name no other writer in this or another process uses; the directory must be the
// destination's so that rename() is atomic (same file system).
std::string temporary_name(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

bool write_all(int fd, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes = bytes.subspan(static_cast<size_t>(written));
  }
  return true;
}

}  // namespace

void write_file_atomically(const std::string& path,
                           std::initializer_list<std::span<const uint8_t>> parts) {
  if (path.empty()) throw IoError("(empty path): cannot write: expected a file name");
  const std::string temporary = temporary_name(path);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw_io(path, "cannot create a temporary file next to it", errno);

  for (std::span<const uint8_t> part : parts) {
    if (!write_all(fd, part)) {
      const int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      throw_io(path, "cannot write", error);
    }
  }
  // close() can report a deferred write error (e.g. on NFS); the data is not safe before.
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw_io(path, "cannot write", error);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    throw_io(path, "cannot replace", error);
  }
}

}  // namespace dfss::io
