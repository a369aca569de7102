#include "kernel_parts_main.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

namespace kernel_parts {

float* alloc_zero(int64_t floats) {
  const auto bytes = static_cast<size_t>((floats * 4 + 63) / 64 * 64);
  auto* memory = static_cast<float*>(std::aligned_alloc(64, bytes));
  std::fill(memory, memory + floats, 0.0f);
  return memory;
}

float* alloc_normal(int64_t floats, float scale, bool absolute) {
  static std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  float* memory = alloc_zero(floats);
  for (int64_t i = 0; i < floats; ++i) {
    const float x = normal(rng);
    memory[i] = (absolute ? std::abs(x) : x) * scale;
  }
  return memory;
}

void two_of_four_offsets(int32_t* offsets, int64_t dv) {
  for (int r = 0; r < 6; ++r)
    for (int g = 0; g < 16; ++g) {
      offsets[r * 32 + 2 * g] = static_cast<int32_t>((4 * g + (r + g) % 2) * dv);
      offsets[r * 32 + 2 * g + 1] = static_cast<int32_t>((4 * g + 2 + (r * g) % 2) * dv);
    }
}

bool skip_unless(benchmark::State& state, dfss::Isa isa) {
  if (dfss::isa_supported(isa)) return false;
  state.SkipWithError("the CPU lacks this ISA");
  return true;
}

void report(benchmark::State& state, double fmas) {
  state.counters["FMA/ns"] = benchmark::Counter(
      fmas * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

namespace {

int register_parts(const char* prefix, PartList list) {
  for (int64_t i = 0; i < list.count; ++i)
    benchmark::RegisterBenchmark((std::string(prefix) + list.parts[i].name).c_str(),
                                 list.parts[i].run);
  return 0;
}

const int kRegistered =
    register_parts("avx512/", parts_avx512()) + register_parts("avx2/", parts_avx2());

}  // namespace

}  // namespace kernel_parts
