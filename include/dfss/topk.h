// Exact top-k selection per row: the k largest values of each row and their indices.
//
// Rank order: a larger value ranks higher; equal values rank by lower index; NaN ranks as
// +inf (equal to +inf, so above every number; ties again by index) — the order the N:M
// selection uses, so a NaN score is kept and poisons its row instead of vanishing. Values
// are returned as they are in the row (a NaN stays NaN), in rank order.
#pragma once

#include <cstdint>

#include "dfss/cpu.h"

namespace dfss {

struct TopkOptions {
  Isa isa = Isa::automatic;
  int threads = 0;  // 0: OpenMP's default; at most kMaxThreads; rows are split between threads
};

// For each of `rows` rows of `length` floats (row r starts at x + r * row_stride), writes the
// k highest-ranked values to values[r * k, r * k + k) and their indices (in [0, length)) to
// indices[r * k, ...), in rank order. Needs 1 <= k <= length <= 2^31 - 1 (rows may be 0) and
// row_stride >= length. Throws InvalidArgument naming the argument otherwise. Results do
// not depend on the ISA or the thread count.
void topk_rows(const float* x, int64_t rows, int64_t length, int64_t row_stride, int64_t k,
               float* values, int32_t* indices, const TopkOptions& options = {});

// The same result by a plain full sort of each row: the reference the fast path is tested
// against, and a baseline of the benchmark.
void topk_rows_reference(const float* x, int64_t rows, int64_t length, int64_t row_stride,
                         int64_t k, float* values, int32_t* indices, int threads = 1);

}  // namespace dfss
