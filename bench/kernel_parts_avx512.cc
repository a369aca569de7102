// Cost of each part of the attention kernels on one 6-row tile, L1-resident, one thread,
// AVX-512 (skipped elsewhere): where the time of dense and N:M attention goes.
//   dfss_kernel_parts --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Counter "FMA/ns": vector FMAs per ns (peak ≈ 2 per cycle).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdlib>
#include <random>

#include "dfss/cpu.h"
#include "kernels/attention/attention_common.h"
#include "sparse/nm_selection.h"

#define DFSS_KERNEL_NS bench_avx512
#include "kernels/simd/vec_avx512-inl.h"
// clang-format off
#include "kernels/attention/attention-inl.h"
#include "kernels/simd/nm_select_avx512-inl.h"
#include "kernels/attention/sparse_attention-inl.h"
// clang-format on

namespace {

using namespace dfss::kernels::bench_avx512;

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

  Buffers() {
    auto alloc = [](size_t floats) {
      auto* memory = static_cast<float*>(std::aligned_alloc(64, (floats * 4 + 63) / 64 * 64));
      std::fill(memory, memory + floats, 0.0f);
      return memory;
    };
    v = alloc(129 * kDim);
    p = alloc(6 * 128);
    q_tile = alloc(kDim * 6);
    k = alloc(kDim * 128);
    s = alloc(6 * 128);
    o = alloc(6 * kDim);
    kept = alloc(6 * 64);
    offsets = reinterpret_cast<int32_t*>(alloc(6 * 64));
    bias = alloc(128);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int i = 0; i < 129 * kDim; ++i) v[i] = normal(rng);
    for (int i = 0; i < 6 * 128; ++i) p[i] = std::abs(normal(rng)) * 1e-3f;
    for (int i = 0; i < kDim * 6; ++i) q_tile[i] = normal(rng);
    for (int i = 0; i < kDim * 128; ++i) k[i] = normal(rng);
    for (int i = 0; i < 6 * 128; ++i) s[i] = normal(rng);  // scores: no ties, as in practice
    // A 2:4 kept set: per group of 4, two of the keys.
    for (int r = 0; r < 6; ++r)
      for (int g = 0; g < 16; ++g) {
        offsets[r * 32 + 2 * g] = (4 * g + (r + g) % 2) * kDim;
        offsets[r * 32 + 2 * g + 1] = (4 * g + 2 + (r * g) % 2) * kDim;
      }
  }
};

bool skip(benchmark::State& state) {
  if (dfss::isa_supported(dfss::Isa::avx512)) return false;
  state.SkipWithError("needs AVX-512");
  return true;
}

void report(benchmark::State& state, double fmas) {
  state.counters["FMA/ns"] =
      benchmark::Counter(fmas * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void qk_64_keys(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  for (auto _ : state) {
    qk_tile_f32<4>(b.q_tile, b.k, kDim, b.s, KB);
    benchmark::ClobberMemory();
  }
  report(state, 6.0 * 4 * kDim);
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
  report(state, 0);  // covers KB = 128 keys
}

void dense_pv_128_keys(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  const float zero[6] = {};
  for (auto _ : state) {
    pv_tile_f32<4>(b.p, KB, b.v, kDim, b.o, zero);
    benchmark::ClobberMemory();
  }
  report(state, 6.0 * 4 * KB);
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
  report(state, 0);
}

void kept_softmax_32(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  float m[6] = {100, 100, 100, 100, 100, 100}, l[6 * 16] = {}, alpha[6];
  for (auto _ : state) {
    online_softmax_kept(b.kept, 32, m, l, alpha);
    benchmark::ClobberMemory();
  }
  report(state, 0);
}

void gather_pv_32_kept(benchmark::State& state) {
  if (skip(state)) return;
  Buffers b;
  const float zero[6] = {};
  for (auto _ : state) {
    pv_gather_tile<4>(b.p, b.offsets, 32, 32, b.v, kDim, b.o, zero);
    benchmark::ClobberMemory();
  }
  report(state, 6.0 * 4 * 32);
}

BENCHMARK(qk_64_keys);
BENCHMARK(dense_pv_128_keys);
BENCHMARK(dense_softmax_128_keys);
BENCHMARK(select_2of4_64_keys);
BENCHMARK(kept_softmax_32);
BENCHMARK(gather_pv_32_kept);

}  // namespace
