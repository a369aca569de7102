#include "io/output_target.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "dfss/errors.h"

namespace dfss::io {
namespace {

// The kernel's own limit on links followed while resolving one path.
constexpr int kMaxLinks = 40;

std::string kind_of(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Follows `path` while it is a symbolic link; returns the first path that is not one
// (which need not exist: a dangling link names the file to create).
std::string follow_links(const std::string& path, const std::string& label) {
  std::string current = path;
  for (int i = 0; i <= kMaxLinks; ++i) {
    struct stat status {};
    if (::lstat(current.c_str(), &status) != 0 || !S_ISLNK(status.st_mode)) return current;
    std::string target(static_cast<size_t>(status.st_size > 0 ? status.st_size : PATH_MAX), '\0');
    const ssize_t length = ::readlink(current.c_str(), target.data(), target.size());
    if (length < 0) {
      throw IoError(label + ": cannot read the symbolic link '" + current +
                    "': " + std::strerror(errno));
    }
    target.resize(static_cast<size_t>(length));
    current = target.starts_with('/') ? target : directory_of(current) + "/" + target;
  }
  throw IoError(label + ": too many levels of symbolic links");
}

}  // namespace

bool OutputTarget::same_file(const OutputTarget& other) const {
  if (file == other.file) return true;
  return exists && other.exists && device == other.device && inode == other.inode;
}

void refresh_output(OutputTarget& target) {
  const std::string& label = target.label;
  target.exists = false;
  struct stat status {};
  if (::lstat(target.file.c_str(), &status) == 0) {
    if (S_ISDIR(status.st_mode)) throw IoError(label + ": is a directory; expected a file name");
    if (!S_ISREG(status.st_mode)) {
      throw IoError(label + ": not a regular file (" + kind_of(status.st_mode) +
                    "); dfss writes outputs only to regular files");
    }
    if (status.st_nlink > 1) {
      throw IoError(label + ": has " + std::to_string(status.st_nlink) +
                    " hard links; dfss replaces an output by renaming a new file into place, "
                    "which would leave the other links with the old contents: remove the other "
                    "links or choose another name");
    }
    target.exists = true;
    target.device = status.st_dev;
    target.inode = status.st_ino;
    target.mode = status.st_mode & 07777;
    target.owner = status.st_uid;
    target.group = status.st_gid;
  } else if (errno != ENOENT) {
    throw IoError(label + ": " + std::strerror(errno));
  }
}

OutputTarget check_output(const std::string& path, const std::string& flag) {
  OutputTarget target;
  target.label = flag.empty() ? path : flag + " " + path;
  const std::string& label = target.label;
  if (path.empty()) {
    throw IoError((flag.empty() ? "" : flag + " ") + "(empty path): expected a file name");
  }
  if (path.ends_with('/')) throw IoError(label + ": expected a file name, not a directory");

  const std::string resolved = follow_links(path, label);
  const std::string name = name_of(resolved);
  if (name == "." || name == "..") throw IoError(label + ": is a directory; expected a file name");

  const std::string directory = directory_of(resolved);
  const std::unique_ptr<char, decltype(&std::free)> canonical(
      ::realpath(directory.c_str(), nullptr), &std::free);
  if (!canonical) {
    const int error = errno;
    if (error == ENOENT) throw IoError(label + ": directory '" + directory + "' does not exist");
    throw IoError(label + ": directory '" + directory + "': " + std::strerror(error));
  }
  target.directory = canonical.get();
  target.file = (target.directory == "/" ? "" : target.directory) + "/" + name;

  refresh_output(target);
  if (::access(target.directory.c_str(), W_OK | X_OK) != 0) {
    throw IoError(label + ": cannot write into directory '" + directory +
                  "': " + std::strerror(errno));
  }
  return target;
}

}  // namespace dfss::io
