// The top-k rank order on (key, index) candidates, shared by the fast path and the reference.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/topk/topk_kernels.h"

namespace dfss::topk {

using kernels::TopkCandidate;

static inline float selection_key(float x) {
  return std::isnan(x) ? INFINITY : x;
}

// Larger key first; equal keys by lower index.
struct RanksHigher {
  bool operator()(const TopkCandidate& a, const TopkCandidate& b) const {
    return a.key > b.key || (a.key == b.key && a.index < b.index);
  }
};

}  // namespace dfss::topk
