// The output files of one command, committed together: every file is written under a
// temporary name first, and only when all are complete are they renamed into place. A
// failure before that (or an exception, or SIGINT/SIGTERM/SIGHUP) removes the temporary
// files and leaves every destination as it was; a failed rename puts back the files
// already replaced (from hard-linked backups, where the file system allows them).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/output_target.h"
#include "io/staged_file.h"

namespace dfss::io {

class OutputSet {
 public:
  // Checks `path` now (see check_output) and refuses a file that another output of the set
  // already names. `flag` (e.g. "--out") starts the error messages. Returns an index.
  size_t add(const std::string& path, const std::string& flag = "");
  const OutputTarget& target(size_t index) const { return targets_.at(index); }

  // The temporary file for output `index`, created on first use.
  StagedFile& file(size_t index);

  // Renames every output into place. Each added output must have been written (file()).
  // Throws IoError naming the output at fault; then no destination has changed.
  void commit();

 private:
  std::vector<OutputTarget> targets_;
  std::vector<std::unique_ptr<StagedFile>> files_;
};

}  // namespace dfss::io
