// Cost of each part of the attention kernels on one 6-row tile, L1-resident, one thread:
// where the time of dense and N:M attention goes. The body of the benchmarks, compiled per
// ISA by kernel_parts_<isa>.cc, which defines DFSS_KERNEL_NS and DFSS_PARTS_ISA, includes
// the ISA's vector header and the kernel bodies first, and hands kParts to
// kernel_parts_main.cc. Everything that instantiates a standard-library or Google Benchmark
// template (registration, counters, errors, data) lives there, compiled without ISA flags:
// the linker keeps one copy of such a template for the whole program, and a copy compiled
// for AVX-512 would stop the AVX2 parts with SIGILL.
//   dfss_kernel_parts --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Counter "FMA/ns": vector FMAs per ns (peak = 2 per cycle on the CPUs we target).

#include "kernel_parts_main.h"

namespace {

using namespace dfss::kernels::DFSS_KERNEL_NS;

constexpr int kDim = 64;   // head dimension d = dv
constexpr int kKeys = 64;  // one sparse span

struct Buffers {
  float* v;       // [129][64]
  float* p;       // [6][128]
  float* q_tile;  // [64][6]
  float* k;       // [64][128]
  float* s;       // [6][128]
  float* o;       // [6][64]
  float* kept;    // [6][64]
  int32_t* offsets;
  float* bias;

  // Filled by kernel_parts_data.cc, compiled without ISA flags: the standard library's
  // templates instantiated here would be compiled for this ISA, and the linker keeps one
  // copy for every file of the program.
  Buffers() {
    v = kernel_parts::alloc_normal(129 * kDim, 1.0f);
    p = kernel_parts::alloc_normal(6 * 128, 1e-3f, /*absolute=*/true);
    q_tile = kernel_parts::alloc_normal(kDim * 6, 1.0f);
    k = kernel_parts::alloc_normal(kDim * 128, 1.0f);
    s = kernel_parts::alloc_normal(6 * 128, 1.0f);  // scores: no ties, as in practice
    o = kernel_parts::alloc_zero(6 * kDim);
    kept = kernel_parts::alloc_zero(6 * 64);
    offsets = reinterpret_cast<int32_t*>(kernel_parts::alloc_zero(6 * 64));
    bias = kernel_parts::alloc_zero(128);
    kernel_parts::two_of_four_offsets(offsets, kDim);
  }
};

bool skip(benchmark::State& state) {
  return kernel_parts::skip_unless(state, DFSS_PARTS_ISA);
}

// Register tiles of the score and dense P·V products per 64 keys / 128 keys.
constexpr int kTileCols = kTileVecs * kLanes;
constexpr int kValueVecs = kDim / kLanes;

void qk_64_keys(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  for (auto _ : state) {
    for (int col = 0; col < kKeys; col += kTileCols)
      qk_tile_f32<kTileVecs>(b.q_tile, b.k + col, kDim, b.s + col, KB);
    benchmark::ClobberMemory();
  }
  kernel_parts::report(state, 6.0 * kKeys / kLanes * kDim);
}

void dense_softmax_128_keys(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  // A running max above every score: the steady state, where the max does not move.
  float m[6] = {100, 100, 100, 100, 100, 100}, l[6 * 16] = {}, alpha[6];
  const TileKeys keys{{0, 0, 0, 0, 0, 0}, {KB, KB, KB, KB, KB, KB}};
  for (auto _ : state) {
    online_softmax_tile(b.s, b.bias, 0, 0.125f, keys, m, l, alpha);
    benchmark::ClobberMemory();
  }
  kernel_parts::report(state, 0);  // covers KB = 128 keys
}

void dense_pv_128_keys(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  const float zero[6] = {};
  for (auto _ : state) {
    for_each_value_tile(kDim, [&](int64_t col, auto vecs) {
      pv_tile_f32<decltype(vecs)::value>(b.p, KB, b.v + col, kDim, b.o + col, zero);
    });
    benchmark::ClobberMemory();
  }
  kernel_parts::report(state, 6.0 * kValueVecs * KB);
}

void select_2of4_64_keys(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  for (auto _ : state) {
    for (int r = 0; r < 6; ++r)
      select_row_fast(b.s + r * KB, kKeys, 2, 4, 0,
                      dfss::kernels::KeptIndex::offsets_in_v(128, kDim), b.kept + r * 32,
                      reinterpret_cast<int32_t*>(b.kept) + 6 * 32);
    benchmark::ClobberMemory();
  }
  kernel_parts::report(state, 0);
}

void kept_softmax_32(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  float m[6] = {100, 100, 100, 100, 100, 100}, l[6 * 16] = {}, alpha[6];
  for (auto _ : state) {
    online_softmax_kept(b.kept, 32, m, l, alpha);
    benchmark::ClobberMemory();
  }
  kernel_parts::report(state, 0);
}

void gather_pv_32_kept(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  const float zero[6] = {};
  for (auto _ : state) {
    pv_gather(b.p, b.offsets, 32, 32, b.v, kDim, b.o, zero);
    benchmark::ClobberMemory();
  }
  kernel_parts::report(state, 6.0 * kValueVecs * 32);
}

}  // namespace

// The parts, registered by kernel_parts_main.cc under the ISA's prefix.
const kernel_parts::Part kParts[] = {
    {"qk_64_keys", qk_64_keys},
    {"dense_pv_128_keys", dense_pv_128_keys},
    {"dense_softmax_128_keys", dense_softmax_128_keys},
    {"select_2of4_64_keys", select_2of4_64_keys},
    {"kept_softmax_32", kept_softmax_32},
    {"gather_pv_32_kept", gather_pv_32_kept},
};
