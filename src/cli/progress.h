// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dfss::cli {

class ProgressBar {
 public:
  // Draws nothing unless stderr is a terminal and `total` reaches `min_total`.
  ProgressBar(std::string label, int64_t total, int64_t min_total);
  ~ProgressBar();  // ends the line if one was drawn
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done);

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace dfss::cli
