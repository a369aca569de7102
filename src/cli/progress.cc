#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dfss::cli {

ProgressBar::ProgressBar(std::string label, int64_t total, int64_t min_total)
    : label_(std::move(label)), total_(total), enabled_(total >= min_total && isatty(2) == 1) {}

ProgressBar::~ProgressBar() {
  if (enabled_) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done) {
  if (!enabled_ || total_ <= 0) return;
  constexpr int kWidth = 30;
  const double fraction = static_cast<double>(done) / static_cast<double>(total_);
  const int filled = static_cast<int>(fraction * kWidth);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double remaining = done > 0 ? elapsed * static_cast<double>(total_ - done) / done : 0.0;
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld  %.0f s left ", label_.c_str(), filled,
               "==============================", kWidth - filled, "", static_cast<long long>(done),
               static_cast<long long>(total_), remaining);
  std::fflush(stderr);
}

}  // namespace dfss::cli
