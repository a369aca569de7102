// Sets OpenMP's thread count for the calling thread's parallel regions (oneDNN's included)
// and restores it on exit. Only the calling thread's setting changes, nothing process-wide.
#pragma once

#include <omp.h>

namespace dfss::model {

class ThreadCountScope {
 public:
  // `threads` <= 0 leaves the count as it is.
  explicit ThreadCountScope(int threads) : saved_(omp_get_max_threads()), active_(threads > 0) {
    if (active_) omp_set_num_threads(threads);
  }
  ~ThreadCountScope() {
    if (active_) omp_set_num_threads(saved_);
  }
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;

 private:
  int saved_;
  bool active_;
};

}  // namespace dfss::model
