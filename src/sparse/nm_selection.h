// The N:M selection rule, in one place for the reference, the compressed-score export and
// the generic kernels: within a group, an entry is kept when fewer than N others outrank
// it. x_j outranks x_i when it is larger, or equal with a lower column, where NaN ranks as
// +inf (so a NaN is kept and makes its row NaN). The rank order is total, so exactly N
// entries of every group are kept.
#pragma once

#include <cmath>
#include <cstdint>

namespace dfss::sparse {

// Internal linkage (static): per-ISA kernel files include these too, and an out-of-line copy
// compiled with AVX-512 flags must never be the one the baseline code calls
// (scripts/check-isa-objects.sh).

static inline float selection_key(float x) {
  return std::isnan(x) ? INFINITY : x;
}

static inline bool outranks(float xj, int64_t j, float xi, int64_t i) {
  xj = selection_key(xj);
  xi = selection_key(xi);
  return xj > xi || (xj == xi && j < i);
}

// Writes the in-group positions of the n kept entries of x[0..m) in increasing order to
// kept[0..n). Columns at or past `present` count as -inf (padding of a partial group).
static inline void select_group(const float* x, int m, int n, int present, int* kept) {
  constexpr float kNegInf = -INFINITY;
  int count = 0;
  for (int i = 0; i < m && count < n; ++i) {
    const float xi = i < present ? x[i] : kNegInf;
    int above = 0;
    for (int j = 0; j < m && above < n; ++j) {
      const float xj = j < present ? x[j] : kNegInf;
      if (j != i && outranks(xj, j, xi, i)) ++above;
    }
    if (above < n) kept[count++] = i;
  }
}

// 2:4 metadata code of a group: the two kept in-group positions lo < hi as lo | hi << 2,
// the value the sparse tensor cores use.
static inline uint16_t metadata_code_2of4(int lo, int hi) {
  return static_cast<uint16_t>(lo | (hi << 2));
}

}  // namespace dfss::sparse
