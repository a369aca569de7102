#include "io/output_set.h"

#include <unistd.h>

#include <cstdio>

#include "dfss/errors.h"
#include "io/temporary_cleanup.h"

namespace dfss::io {

size_t OutputSet::add(const std::string& path, const std::string& flag) {
  OutputTarget target = check_output(path, flag);
  for (const OutputTarget& earlier : targets_) {
    if (target.same_file(earlier)) {
      throw IoError(target.label + ": names the same file as " + earlier.label +
                    "; each output needs its own file");
    }
  }
  targets_.push_back(std::move(target));
  files_.emplace_back();
  return targets_.size() - 1;
}

StagedFile& OutputSet::file(size_t index) {
  std::unique_ptr<StagedFile>& file = files_.at(index);
  if (!file) file = std::make_unique<StagedFile>(targets_[index]);
  return *file;
}

void OutputSet::commit() {
  for (size_t i = 0; i < files_.size(); ++i) {
    if (!files_[i]) throw IoError(targets_[i].label + ": was never written");
  }
  // The destinations may have changed during the work; they must still pass the checks.
  for (const auto& file : files_) {
    file->refresh_target();
    file->close();
  }

  // From here on the renames must all happen or none.
  const SignalsHeldBack held_back;
  std::vector<std::string> backups(files_.size());
  if (files_.size() > 1) {
    for (size_t i = 0; i < files_.size(); ++i) {
      const OutputTarget& target = files_[i]->target();
      if (!target.exists) continue;
      // Without a backup (no hard links on this file system) this one cannot be undone.
      int error = 0;
      backups[i] = create_unique_in(
          target.directory,
          [&](const std::string& path) {
            return ::link(target.file.c_str(), path.c_str()) == 0 ? 0 : errno;
          },
          &error);
    }
  }
  const auto remove_backups = [&] {
    for (const std::string& backup : backups) {
      if (!backup.empty()) ::unlink(backup.c_str());
    }
  };
  for (size_t i = 0; i < files_.size(); ++i) {
    try {
      files_[i]->rename_into_place();
    } catch (const IoError&) {
      for (size_t j = 0; j < i; ++j) {
        const OutputTarget& target = files_[j]->target();
        if (!backups[j].empty()) {
          if (std::rename(backups[j].c_str(), target.file.c_str()) == 0) backups[j].clear();
        } else if (!target.exists) {
          ::unlink(target.file.c_str());
        }
      }
      remove_backups();
      throw;
    }
  }
  remove_backups();
}

}  // namespace dfss::io
