// Helpers shared by the tests of per-ISA kernels outside attention (quantize, bf16 and
// block-sparse linear layers, top-k).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "dfss/cpu.h"

namespace dfss::test {

// The kernel ISAs this CPU runs (avx512_bf16 has no kernels of its own in these families).
inline std::vector<Isa> isas_here() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (isa_supported(isa)) isas.push_back(isa);
  return isas;
}

// `count` draws of N(mean, scale²), reproducible from `seed`.
inline std::vector<float> normal(int64_t count, uint32_t seed, float scale = 1.0f,
                                 float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, scale);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace dfss::test
