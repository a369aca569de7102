#include "io/staged_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>

#include "dfss/errors.h"

namespace dfss::io {

std::string random_temporary_name(const std::string& directory) {
  static std::mutex mutex;
  static std::mt19937_64 generator{std::random_device{}() ^ static_cast<uint64_t>(::getpid())};
  constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string name = "/.dfss-";
  const std::lock_guard<std::mutex> lock(mutex);
  for (int i = 0; i < 6; ++i) name += kAlphabet[generator() % (sizeof kAlphabet - 1)];
  return (directory == "/" ? "" : directory) + name;
}

StagedFile::StagedFile(OutputTarget target) : target_(std::move(target)) {
  // A signal between creating the file and registering it would leave the file behind.
  const SignalsHeldBack held_back;
  int error = 0;
  // 0666: the new file gets the permissions the umask allows, like any created file.
  temporary_ = create_unique_in(
      target_.directory,
      [this](const std::string& path) {
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        return fd_ < 0 ? errno : 0;
      },
      &error);
  if (temporary_.empty()) {
    throw IoError(target_.label + ": cannot create a temporary file in '" + target_.directory +
                  "': " + std::strerror(error));
  }
  registration_ = TemporaryRegistration(temporary_);
}

StagedFile::~StagedFile() {
  discard();
}

void StagedFile::fail(const char* what, int error) {
  discard();
  throw IoError(target_.label + ": " + what + ": " + std::strerror(error));
}

void StagedFile::write(std::span<const uint8_t> bytes) {
  if (fd_ < 0) throw IoError(target_.label + ": cannot write: the file is closed");
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd_, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(written));
    size_ += static_cast<uint64_t>(written);
  }
}

void StagedFile::write_at(uint64_t offset, std::span<const uint8_t> bytes) {
  if (fd_ < 0) throw IoError(target_.label + ": cannot write: the file is closed");
  while (!bytes.empty()) {
    const ssize_t written = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(written));
    offset += static_cast<uint64_t>(written);
  }
}

void StagedFile::close() {
  if (fd_ < 0) return;
  if (target_.exists) {
    // Owner before mode: fchown clears set-user-ID bits. Only root (or the owner, for the
    // group) may do this; otherwise the new file belongs to whoever runs dfss.
    if (::fchown(fd_, target_.owner, target_.group) != 0) {
      (void)!::fchown(fd_, static_cast<uid_t>(-1), target_.group);
    }
    if (::fchmod(fd_, target_.mode) != 0) fail("cannot set the permissions", errno);
  }
  const int fd = fd_;
  fd_ = -1;
  // close() can report a deferred write error (e.g. on NFS); the data is not safe before.
  if (::close(fd) != 0) fail("cannot write", errno);
}

void StagedFile::rename_into_place() {
  close();
  if (std::rename(temporary_.c_str(), target_.file.c_str()) != 0) fail("cannot replace", errno);
  placed_ = true;
  registration_.release();
}

void StagedFile::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!placed_ && !temporary_.empty()) {
    ::unlink(temporary_.c_str());
    registration_.release();
    temporary_.clear();
  }
}

}  // namespace dfss::io
