// oneDNN primitives are specialized to their shapes; the encoder's row count (tokens in a
// batch) varies, so each layer keeps one primitive per row count it has seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace dfss::model {

template <typename Entry>
class RowCountCache {
 public:
  // The entry for `rows`, made by `make(rows)` the first time. Returned by value: entries
  // are oneDNN handles (cheap shared copies), and another thread may evict the slot.
  template <typename Make>
  Entry get(int64_t rows, Make&& make) {
    std::lock_guard lock(mutex_);
    if (auto found = entries_.find(rows); found != entries_.end()) return found->second;
    // A long run of ragged batches must not grow the cache forever.
    if (entries_.size() >= kMaxEntries) entries_.clear();
    return entries_.emplace(rows, make(rows)).first->second;
  }

 private:
  static constexpr size_t kMaxEntries = 64;
  std::mutex mutex_;
  std::map<int64_t, Entry> entries_;
};

}  // namespace dfss::model
