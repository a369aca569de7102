// Wall time of dfss::attention_backward (fused, fp32): B = 1, H = 12, d = 64, dense or
// N:M, for L = 1024 and 4096 (or the lengths given as arguments), median of 5 runs after a
// warm-up. GFLOP/s counts the model's 10·L²·d per head (2.5x the forward's 4·L²·d), dense
// or not: N:M computes every score to select the kept ones.
// Usage: dfss_backward_bench [threads] [L ...] [dense | N:M]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dfss/attention.h"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  std::vector<int64_t> lengths;
  dfss::SparsityPattern pattern;
  for (int a = 2; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "dense" || arg.find(':') != std::string::npos) {
      pattern = dfss::parse_pattern(arg, "pattern");
    } else {
      lengths.push_back(std::atoll(argv[a]));
    }
  }
  if (lengths.empty()) lengths = {1024, 4096};
  const int64_t heads = 12, d = 64;
  for (int64_t l : lengths) {
    const std::array<int64_t, 4> shape{1, heads, l, d};
    const size_t n = static_cast<size_t>(heads * l * d);
    std::vector<float> q(n), k(n), v(n), out(n), d_out(n), dq(n), dk(n), dv(n);
    std::vector<float> lse(static_cast<size_t>(heads * l));
    uint32_t state = 1;
    for (auto* t : {&q, &k, &v, &d_out})
      for (float& x : *t)
        x = static_cast<float>((state = state * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    dfss::AttentionOptions options;
    options.threads = threads;
    options.pattern = pattern;
    options.log_sum_exp = lse.data();  // the forward's out and log-sum-exp feed the backward
    dfss::attention(dfss::const_view(q.data(), shape), dfss::const_view(k.data(), shape),
                    dfss::const_view(v.data(), shape), dfss::mutable_view(out.data(), shape),
                    options);
    options.log_sum_exp = nullptr;
    auto run = [&] {
      const auto start = std::chrono::steady_clock::now();
      dfss::attention_backward(
          dfss::const_view(q.data(), shape), dfss::const_view(k.data(), shape),
          dfss::const_view(v.data(), shape), dfss::const_view(out.data(), shape),
          dfss::const_view(d_out.data(), shape), lse.data(), dfss::mutable_view(dq.data(), shape),
          dfss::mutable_view(dk.data(), shape), dfss::mutable_view(dv.data(), shape), options);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    run();
    std::vector<double> times;
    for (int r = 0; r < 5; ++r) times.push_back(run());
    std::sort(times.begin(), times.end());
    const double median = times[2];
    const double flops = 10.0 * double(l) * double(l) * double(d) * double(heads);
    std::printf(
        "backward on %s, %s: L=%lld H=%lld d=%lld threads=%d: median %.1f ms, %.1f GFLOP/s "
        "(10*L^2*d/head)\n",
        dfss::isa_name(dfss::resolve_isa(dfss::Isa::automatic)), pattern.to_string().c_str(),
        static_cast<long long>(l), static_cast<long long>(heads), static_cast<long long>(d),
        threads, median * 1e3, flops / median * 1e-9);
  }
}
