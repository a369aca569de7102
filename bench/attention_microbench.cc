// Micro-benchmarks of the attention implementations through the public API, per ISA:
//   dfss_microbench --benchmark_filter='fused/f32' --benchmark_repetitions=5
// Counters: GFLOP/s at 4·B·H·L²·d flops per call (dense-equivalent).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dfss/dfss.h"

namespace {

struct Inputs {
  std::vector<float> q, k, v, out;
  std::vector<uint16_t> q16, k16, v16;
};

Inputs make_inputs(int64_t heads, int64_t seq, int64_t dim) {
  Inputs in;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = heads * seq * dim;
  for (auto* buffer : {&in.q, &in.k, &in.v}) {
    buffer->resize(n);
    for (float& x : *buffer) x = normal(rng);
  }
  for (auto [src, dst] : {std::pair{&in.q, &in.q16}, {&in.k, &in.k16}, {&in.v, &in.v16}}) {
    dst->resize(n);
    for (int64_t i = 0; i < n; ++i) (*dst)[i] = dfss::float_to_bf16((*src)[i]);
  }
  in.out.resize(n);
  return in;
}

void run(benchmark::State& state, dfss::AttentionImpl impl, dfss::DType dtype, dfss::Isa isa,
         dfss::SparsityPattern pattern) {
  const int64_t heads = 12, dim = 64, seq = state.range(0);
  if (!dfss::isa_supported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  Inputs in = make_inputs(heads, seq, dim);
  const std::array<int64_t, 4> shape{1, heads, seq, dim};
  dfss::ConstTensorView q = dtype == dfss::DType::f32 ? dfss::const_view(in.q.data(), shape)
                                                      : dfss::const_view(in.q16.data(), shape);
  dfss::ConstTensorView k = dtype == dfss::DType::f32 ? dfss::const_view(in.k.data(), shape)
                                                      : dfss::const_view(in.k16.data(), shape);
  dfss::ConstTensorView v = dtype == dfss::DType::f32 ? dfss::const_view(in.v.data(), shape)
                                                      : dfss::const_view(in.v16.data(), shape);
  dfss::AttentionOptions options;
  options.impl = impl;
  options.isa = isa;
  options.pattern = pattern;
  for (auto _ : state) dfss::attention(q, k, v, dfss::mutable_view(in.out.data(), shape), options);
  state.counters["GFLOP/s"] = benchmark::Counter(
      4.0 * heads * seq * seq * dim * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// Decode-shaped calls: Lq query rows (1: one generated token) against Lk = 4096 keys,
// B = 1, H = 12, d = 64, fp32, on 1 and 2 threads (dfss_microbench --benchmark_filter=decode;
// arguments Lq/threads).
void decode(benchmark::State& state, dfss::Isa isa) {
  const int64_t heads = 12, dim = 64, lq = state.range(0), lk = 4096;
  if (!dfss::isa_supported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  Inputs in = make_inputs(heads, lk, dim);
  const std::array<int64_t, 4> q_shape{1, heads, lq, dim}, kv_shape{1, heads, lk, dim};
  dfss::AttentionOptions options;
  options.isa = isa;
  options.threads = static_cast<int>(state.range(1));
  for (auto _ : state)
    dfss::attention(dfss::const_view(in.q.data(), q_shape), dfss::const_view(in.k.data(), kv_shape),
                    dfss::const_view(in.v.data(), kv_shape),
                    dfss::mutable_view(in.out.data(), q_shape), options);
}

// One generated token as a model computes it: Lq = 1 against Lk keys (B = 1, H = 12, d = 64,
// fp32 or bf16), each call reading the next of enough layers' caches (≥ 128 MiB in all) that K and
// V come from memory, not from a cache the previous call filled (dfss_microbench
// --benchmark_filter=decode_layers; arguments Lk/threads; time per call).
void decode_layers(benchmark::State& state, dfss::Isa isa, dfss::DType dtype) {
  const int64_t heads = 12, dim = 64, lk = state.range(0);
  if (!dfss::isa_supported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int64_t cache_bytes = 2 * heads * lk * dim * (dtype == dfss::DType::f32 ? 4 : 2);
  const int64_t layers = std::max<int64_t>(4, (int64_t{128} << 20) / cache_bytes);
  const std::array<int64_t, 4> q_shape{1, heads, 1, dim}, kv_shape{1, heads, lk, dim};
  const bool f32 = dtype == dfss::DType::f32;
  std::vector<Inputs> caches;
  std::vector<std::array<dfss::ConstTensorView, 3>> views;  // q, k, v of each layer
  for (int64_t l = 0; l < layers; ++l) {
    const Inputs& in = caches.emplace_back(make_inputs(heads, lk, dim));
    views.push_back(
        {f32 ? dfss::const_view(in.q.data(), q_shape) : dfss::const_view(in.q16.data(), q_shape),
         f32 ? dfss::const_view(in.k.data(), kv_shape) : dfss::const_view(in.k16.data(), kv_shape),
         f32 ? dfss::const_view(in.v.data(), kv_shape)
             : dfss::const_view(in.v16.data(), kv_shape)});
  }
  const dfss::TensorView out = dfss::mutable_view(caches[0].out.data(), q_shape);
  dfss::AttentionOptions options;
  options.isa = isa;
  options.threads = static_cast<int>(state.range(1));
  size_t layer = 0;
  for (auto _ : state) {
    const auto& [q, k, v] = views[layer];
    dfss::attention(q, k, v, out, options);
    layer = layer + 1 == views.size() ? 0 : layer + 1;
  }
}

void register_all() {
  for (auto isa : {dfss::Isa::avx512, dfss::Isa::avx2}) {
    benchmark::RegisterBenchmark((std::string("decode/fused/f32/") + dfss::isa_name(isa)).c_str(),
                                 decode, isa)
        ->ArgsProduct({{1, 2, 6, 48}, {1, 2}})
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    for (auto dtype : {dfss::DType::f32, dfss::DType::bf16})
      benchmark::RegisterBenchmark((std::string("decode_layers/fused/") + dfss::dtype_name(dtype) +
                                    "/" + dfss::isa_name(isa))
                                       .c_str(),
                                   decode_layers, isa, dtype)
          ->ArgsProduct({{64, 512, 4096}, {1, 2}})
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
  }
  using dfss::AttentionImpl;
  using dfss::DType;
  using dfss::Isa;
  for (const char* pattern : {"dense", "2:4", "1:2", "1:4", "2:8"})
    for (auto impl : {AttentionImpl::fused, AttentionImpl::unfused})
      for (auto dtype : {DType::f32, DType::bf16})
        for (auto isa : {Isa::avx512_bf16, Isa::avx512, Isa::avx2, Isa::scalar}) {
          if (dtype == DType::f32 && isa == Isa::avx512_bf16) continue;  // same kernels as avx512
          const std::string name = std::string(dfss::impl_name(impl)) + "/" + pattern + "/" +
                                   dfss::dtype_name(dtype) + "/" + dfss::isa_name(isa);
          benchmark::RegisterBenchmark(name.c_str(), run, impl, dtype, isa,
                                       dfss::parse_pattern(pattern, "pattern"))
              ->Arg(384)
              ->Arg(1024)
              ->Arg(2048)
              ->Arg(4096)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
        }
  // The key-selecting patterns: fused fp32 only (bf16 inputs are widened on packing).
  for (const char* pattern : {"topk:128", "topk:256", "dsa:256", "dsa:256:block=64"})
    for (auto isa : {Isa::avx512, Isa::avx2, Isa::scalar}) {
      const std::string name = std::string("fused/") + pattern + "/f32/" + dfss::isa_name(isa);
      benchmark::RegisterBenchmark(name.c_str(), run, AttentionImpl::fused, DType::f32, isa,
                                   dfss::parse_pattern(pattern, "pattern"))
          ->Arg(1024)
          ->Arg(4096)
          ->Arg(16384)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
}

const int registered = (register_all(), 0);

}  // namespace
