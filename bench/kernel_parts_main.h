// What the per-ISA kernel-part benchmarks (kernel_parts-inl.h) share, defined in
// kernel_parts_main.cc without ISA flags: operands, Google Benchmark calls, registration.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

#include "dfss/cpu.h"

namespace kernel_parts {

// `floats` values from N(0, 1) times scale (absolute values if asked), one fixed stream;
// buffers are 64-byte aligned and live until the program exits.
float* alloc_normal(int64_t floats, float scale, bool absolute = false);
float* alloc_zero(int64_t floats);
// Element offsets in V ([keys][dv]) of a 2:4 kept set of 64 keys for each of 6 rows
// (two keys per group of four, varying with the row and group), [6][32].
void two_of_four_offsets(int32_t* offsets, int64_t dv);

// True (and the benchmark marked skipped) when the CPU lacks the ISA.
bool skip_unless(benchmark::State& state, dfss::Isa isa);
// Counter "FMA/ns": `fmas` vector FMAs per iteration.
void report(benchmark::State& state, double fmas);

struct Part {
  const char* name;
  void (*run)(benchmark::State& state);
};
struct PartList {
  const Part* parts;
  int64_t count;
};
PartList parts_avx2();
PartList parts_avx512();

}  // namespace kernel_parts
