#include "io/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dfss/errors.h"

namespace dfss::io {

RegularFile::RegularFile(const std::string& path, const char* expected) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat info;
  std::string problem;
  if (::fstat(fd_, &info) != 0) {
    problem = path + ": cannot stat: " + std::strerror(errno);
  } else if (S_ISDIR(info.st_mode)) {
    problem = path + ": is a directory; expected " + expected;
  } else if (!S_ISREG(info.st_mode)) {
    problem = path + ": not a regular file; expected " + expected;
  }
  if (!problem.empty()) {
    ::close(fd_);
    throw IoError(problem);
  }
  size_ = static_cast<size_t>(info.st_size);
}

RegularFile::~RegularFile() {
  ::close(fd_);
}

std::vector<uint8_t> read_regular_file(const std::string& path, const char* expected) {
  const RegularFile file(path, expected);
  const int fd = file.fd();
  std::vector<uint8_t> bytes(file.size());
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
