// Top-k selection per row: argument checks, the choice between delegate filtering and a
// plain selection over the whole row, and the exact selection among the candidates.
#include "dfss/topk.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_probe.h"
#include "dfss/attention.h"
#include "dfss/errors.h"
#include "topk/topk_rank.h"
#include "topk/topk_select.h"

namespace dfss {
namespace {

using kernels::TopkCandidate;
using kernels::TopkKernels;

void check_arguments(const float* x, int64_t rows, int64_t length, int64_t row_stride, int64_t k,
                     const float* values, const int32_t* indices, int threads) {
  auto fail = [](const std::string& what) { throw InvalidArgument("topk: " + what); };
  if (rows < 0) fail("rows: expected >= 0, got " + std::to_string(rows));
  if (length < 1 || length > std::numeric_limits<int32_t>::max())
    fail("length: expected 1 .. 2^31 - 1 (int32 indices), got " + std::to_string(length));
  if (k < 1 || k > length)
    fail("k: expected 1 <= k <= length (" + std::to_string(length) + "), got " + std::to_string(k));
  if (row_stride < length)
    fail("row_stride: expected >= length (" + std::to_string(length) + "), got " +
         std::to_string(row_stride));
  if (threads < 0 || threads > kMaxThreads)
    fail("threads: expected 0 (OpenMP's default) .. " + std::to_string(kMaxThreads) + ", got " +
         std::to_string(threads));
  if (rows > 0 && (x == nullptr || values == nullptr || indices == nullptr))
    fail("x, values and indices must not be null when rows > 0");
  if (rows > std::numeric_limits<int64_t>::max() / std::max(k, row_stride))
    fail("rows * row_stride overflows: " + std::to_string(rows) + " rows");
}

// The row's candidates, cut to the top k by a radix select when there are many more, then
// sorted into rank order by a radix sort of packed (key, index) pairs.
void topk_row(const TopkKernels& kernels, const float* row, int64_t length, int64_t k,
              float* values, int32_t* indices, topk::SelectScratch& scratch) {
  const int64_t count = topk::gather_keys(kernels, row, length, k, scratch);
  uint32_t* keys = scratch.keys.get(0);
  const int32_t* from = scratch.indices.get(0);
  // Sorting every candidate costs about as much as a select and a sort of k up to ~2k.
  const bool cut = count > 2 * k;
  const int64_t kept = cut ? k : count;
  uint64_t* packed = scratch.packed.get(kept);
  if (cut) {
    const topk::KthKey kth =
        topk::kth_largest_key(kernels, keys, count, k, scratch.select.get(count));
    int64_t ties = k - kth.above, at = 0;
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t key = keys[i];
      const bool take = key > kth.key || (key == kth.key && ties > 0);
      ties -= key == kth.key && take;
      packed[at] = topk::pack_candidate(key, from[i]);
      at += take;
      if (at == k) break;
    }
  } else {
    for (int64_t i = 0; i < count; ++i) packed[i] = topk::pack_candidate(keys[i], from[i]);
  }
  const uint64_t* sorted = topk::sort_packed(packed, scratch.sorted.get(kept), kept);
  for (int64_t i = 0; i < k; ++i) {
    const auto index = static_cast<int32_t>(static_cast<uint32_t>(sorted[i]));
    indices[i] = index;
    values[i] = row[index];
  }
}

}  // namespace

void topk_rows(const float* x, int64_t rows, int64_t length, int64_t row_stride, int64_t k,
               float* values, int32_t* indices, const TopkOptions& options) {
  check_arguments(x, rows, length, row_stride, k, values, indices, options.threads);
  const Isa isa = resolve_isa(options.isa);
  const TopkKernels& kernels = kernels::topk_kernels(isa);
  const int threads = options.threads > 0 ? options.threads : std::max(1, omp_get_max_threads());
  if (rows == 0) return;
  const int team = static_cast<int>(std::min<int64_t>(threads, rows));
  detail::require_threads(team, "threads " + std::to_string(team));  // libgomp would exit
#pragma omp parallel num_threads(team)
  {
    topk::SelectScratch scratch;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r)
      topk_row(kernels, x + r * row_stride, length, k, values + r * k, indices + r * k, scratch);
  }
}

void topk_rows_reference(const float* x, int64_t rows, int64_t length, int64_t row_stride,
                         int64_t k, float* values, int32_t* indices, int threads) {
  check_arguments(x, rows, length, row_stride, k, values, indices, threads);
  if (threads == 0) threads = std::max(1, omp_get_max_threads());
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * row_stride;
    std::vector<TopkCandidate> all(static_cast<size_t>(length));
    for (int64_t j = 0; j < length; ++j)
      all[j] = {topk::selection_key(row[j]), static_cast<int32_t>(j)};
    std::sort(all.begin(), all.end(), topk::RanksHigher{});
    for (int64_t i = 0; i < k; ++i) {
      indices[r * k + i] = all[i].index;
      values[r * k + i] = row[all[i].index];
    }
  }
}

}  // namespace dfss
