// Peak resident memory that one attention call adds on top of its inputs and output:
//   dfss_memory_probe L [impl] [pattern] [heads] [dim]
// Prints the process's peak RSS before and after the call (getrusage), so the difference
// is the scratch the implementation needed. Inputs are filled (touched) first.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dfss/dfss.h"

namespace {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // kilobytes on Linux
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: dfss_memory_probe L [fused|unfused] [dense|N:M] [heads] [dim]\n");
    return 2;
  }
  try {
    const int64_t seq = std::stoll(argv[1]);
    dfss::AttentionOptions options;
    options.impl = dfss::parse_impl(argc > 2 ? argv[2] : "fused", "impl");
    options.pattern = dfss::parse_pattern(argc > 3 ? argv[3] : "dense", "pattern");
    const int64_t heads = argc > 4 ? std::stoll(argv[4]) : 12;
    const int64_t dim = argc > 5 ? std::stoll(argv[5]) : 64;
    const std::array<int64_t, 4> shape{1, heads, seq, dim};
    const size_t n = static_cast<size_t>(heads * seq * dim);
    std::vector<float> q(n), k(n), v(n), out(n);
    for (size_t i = 0; i < n; ++i) {
      q[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
      k[i] = static_cast<float>((i * 104729) % 1000) / 1000.0f - 0.5f;
      v[i] = static_cast<float>((i * 1299709) % 1000) / 1000.0f - 0.5f;
      out[i] = 0.0f;
    }
    const double before = peak_rss_mb();
    dfss::attention(dfss::const_view(q.data(), shape), dfss::const_view(k.data(), shape),
                    dfss::const_view(v.data(), shape), dfss::mutable_view(out.data(), shape), options);
    const double after = peak_rss_mb();
    std::printf("L=%lld impl=%s pattern=%s inputs+output=%.1f MB peak_rss_before=%.1f MB peak_rss_after=%.1f MB added=%.1f MB\n",
                static_cast<long long>(seq), dfss::impl_name(options.impl), options.pattern.to_string().c_str(),
                4.0 * n * sizeof(float) / 1048576.0, before, after, after - before);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "dfss_memory_probe: error: %s\n", error.what());
    return 2;
  }
  return 0;
}
