// One output file being written: the bytes go to a temporary file next to the destination
// (a short hidden name, ".dfss-XXXXXX", so that any valid destination name works), which
// is later renamed over the destination. OutputSet (output_set.h) renames several together.
#pragma once

#include <cerrno>
#include <cstdint>
#include <span>
#include <string>

#include "io/output_target.h"
#include "io/temporary_cleanup.h"

namespace dfss::io {

class StagedFile {
 public:
  // Creates the temporary file in the target's directory. Throws IoError naming the target.
  explicit StagedFile(OutputTarget target);
  // Removes the temporary file unless it was renamed into place.
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Appends `bytes`. Throws IoError naming the target (e.g. "No space left on device").
  void write(std::span<const uint8_t> bytes);
  // Overwrites bytes already written, at `offset` (a header field known only later).
  void write_at(uint64_t offset, std::span<const uint8_t> bytes);
  // Bytes written so far.
  uint64_t size() const { return size_; }

  // Checks the destination again (refresh_output), for what may have changed meanwhile.
  void refresh_target() { refresh_output(target_); }
  // Gives the file the mode and, where permitted, the owner and group of the file it
  // replaces, then closes it; close() reports write errors some file systems defer.
  void close();
  // Renames the closed file over its destination.
  void rename_into_place();
  // Removes the temporary file (no-op once renamed).
  void discard();

  const OutputTarget& target() const { return target_; }
  const std::string& temporary_path() const { return temporary_; }

 private:
  [[noreturn]] void fail(const char* what, int error);

  OutputTarget target_;
  std::string temporary_;
  TemporaryRegistration registration_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool placed_ = false;
};

// `directory` + "/.dfss-XXXXXX" with six random letters or digits.
std::string random_temporary_name(const std::string& directory);

// A fresh name from random_temporary_name for which `create(path)` succeeds; `create`
// returns 0 or an errno value, and names taken already (EEXIST) are retried. Returns the
// path, or "" with *error set.
template <typename Create>
std::string create_unique_in(const std::string& directory, Create create, int* error) {
  constexpr int kTries = 100;
  for (int i = 0; i < kTries; ++i) {
    std::string path = random_temporary_name(directory);
    *error = create(path);
    if (*error == 0) return path;
    if (*error != EEXIST) return "";
  }
  return "";
}

}  // namespace dfss::io
