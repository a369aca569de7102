#include "model/finite_check.h"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace dfss::model {

std::optional<size_t> first_non_finite(std::span<const float> values) {
  // NaN and ±inf are the floats whose exponent bits are all ones. Blocks are tested with a
  // branch-free OR (vectorized by the compiler) and searched only when one holds a hit, so
  // scanning a whole model costs about as much as reading it.
  constexpr uint32_t kExponent = 0x7f800000u;
  constexpr size_t kBlock = 4096;
  for (size_t begin = 0; begin < values.size(); begin += kBlock) {
    const size_t end = std::min(values.size(), begin + kBlock);
    uint32_t any = 0;
    for (size_t i = begin; i < end; ++i) {
      any |= (std::bit_cast<uint32_t>(values[i]) & kExponent) == kExponent;
    }
    if (any == 0) continue;
    for (size_t i = begin; i < end; ++i) {
      if ((std::bit_cast<uint32_t>(values[i]) & kExponent) == kExponent) return i;
    }
  }
  return std::nullopt;
}

}  // namespace dfss::model
