// Where an output file will go, checked before any work so that a long run does not fail
// at the end, and so that an output can never replace something that is not a file.
//
// The rules (docs/output-files.md):
// - a symbolic link is followed: its target is the file written (and replaced atomically);
// - an existing destination must be a regular file: a directory, device, FIFO or socket
//   is refused ("not a regular file"), never replaced;
// - an existing file with several hard links is refused: replacing it by rename would
//   leave the other names with the old contents, and writing in place could leave it
//   half-written;
// - the directory must exist and be writable.
#pragma once

#include <sys/types.h>

#include <string>

namespace dfss::io {

struct OutputTarget {
  std::string label;      // how the user named it in messages, e.g. "--out o.npy"
  std::string directory;  // the canonical directory of the file written
  std::string file;       // the canonical path written: directory + "/" + file name
  bool exists = false;    // the fields below describe the existing file
  dev_t device = 0;
  ino_t inode = 0;
  mode_t mode = 0;
  uid_t owner = 0;
  gid_t group = 0;

  // True if both name the same file (the same path, or two names of one existing file).
  bool same_file(const OutputTarget& other) const;
};

// Checks `path` as described above; `flag` (e.g. "--out", or empty) starts the label.
// Throws IoError starting with the label.
OutputTarget check_output(const std::string& path, const std::string& flag = "");

// Checks again that the destination of `target` may be replaced (it may have changed since
// check_output) and updates the fields that describe the existing file.
void refresh_output(OutputTarget& target);

}  // namespace dfss::io
