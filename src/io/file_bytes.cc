#include "io/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dfss/errors.h"

namespace dfss::io {

std::vector<uint8_t> read_regular_file(const std::string& path, const char* expected) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  // Closes `fd` on every exit path.
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat info;
  if (::fstat(fd, &info) != 0) throw IoError(path + ": cannot stat: " + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw IoError(path + ": is a directory; expected " + expected);
  if (!S_ISREG(info.st_mode)) {
    throw IoError(path + ": not a regular file; expected " + expected);
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got =
        ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw IoError(path + ": cannot read: " + std::strerror(errno));
    }
    if (got == 0) throw IoError(path + ": cannot read: the file shrank while being read");
    done += static_cast<size_t>(got);
  }
  return bytes;
}

}  // namespace dfss::io
