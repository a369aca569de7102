// Time to parse a .safetensors header of N empty tensors (in memory, no disk), median of
// 3 runs, and with --memory the peak resident memory of parsing the worst headers the
// 100 MB cap admits. Parsing should be linear in N; it once was quadratic.
// Usage: dfss_safetensors_header_bench [--memory] [N ...]   (default N: 20k 40k 100k 200k 1M)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "io/safetensors.h"

namespace {

// The 8-byte length, `header` padded to 8 bytes, and `data`.
std::string image(std::string header, const std::string& data = "") {
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

// `count` empty U8 tensors; names as long as real ones ("encoder.layer.11.…" is ~45 bytes)
// would only make the header longer per tensor.
std::string empty_tensors(int64_t count) {
  std::string header = "{";
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0) header += ',';
    header +=
        "\"t" + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  return image(header + "}");
}

double parse_seconds(const std::string& bytes, size_t* tensors) {
  const auto start = std::chrono::steady_clock::now();
  const auto file = dfss::io::SafetensorsFile::parse(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "bench.safetensors");
  *tensors = file.tensors().size();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

long peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// Peak RSS while parsing `bytes` beyond the image itself (run in order of growing cost).
void measure(const char* what, const std::string& bytes) {
  const long before = peak_rss_mb();
  const auto start = std::chrono::steady_clock::now();
  std::string outcome = "accepted";
  try {
    size_t tensors = 0;
    parse_seconds(bytes, &tensors);
    outcome += " (" + std::to_string(tensors) + " tensors)";
  } catch (const dfss::FormatError& e) {
    outcome = std::string("refused: ") + std::string(e.what()).substr(0, 90);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-44s header %6.1f MB  %6.2f s  peak RSS +%5ld MB  %s\n", what,
              static_cast<double>(bytes.size()) / 1e6, seconds, peak_rss_mb() - before,
              outcome.c_str());
}

void memory_cases() {
  constexpr size_t kCap = 100'000'000;
  std::string zeros;
  while (zeros.size() < kCap - 100) zeros += zeros.empty() ? "0" : ",0";
  measure("shape array of 50M elements",
          image("{\"x\":{\"dtype\":\"U8\",\"shape\":[" + zeros + "]}}"));
  measure("data_offsets array of 50M elements",
          image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[" + zeros + "]}}"));
  zeros.clear();
  zeros.shrink_to_fit();
  std::string metadata = "{\"__metadata__\":{";
  for (int i = 0; metadata.size() < kCap - 100; ++i) {
    metadata += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\":\"v\"";
  }
  measure("metadata, 8-byte entries to the cap", image(metadata + "}}"));
  metadata.clear();
  metadata.shrink_to_fit();
  int64_t count = 0;
  while (static_cast<size_t>(count) * 52 < kCap - 1000) ++count;
  measure("empty tensors filling the 100 MB cap", empty_tensors(count));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> counts;
  bool memory = false;
  for (int a = 1; a < argc; ++a) {
    if (std::string(argv[a]) == "--memory") {
      memory = true;
    } else {
      counts.push_back(std::atoll(argv[a]));
    }
  }
  if (memory) {
    memory_cases();
    return 0;
  }
  if (counts.empty()) counts = {20'000, 40'000, 100'000, 200'000, 1'000'000};
  std::printf("%10s %12s %12s %14s\n", "tensors", "header MB", "parse s", "ns per tensor");
  for (int64_t count : counts) {
    const std::string bytes = empty_tensors(count);
    std::vector<double> runs;
    size_t tensors = 0;
    for (int rep = 0; rep < 3; ++rep) runs.push_back(parse_seconds(bytes, &tensors));
    std::sort(runs.begin(), runs.end());
    if (tensors != static_cast<size_t>(count)) return 1;
    std::printf("%10lld %12.1f %12.3f %14.0f\n", static_cast<long long>(count),
                static_cast<double>(bytes.size()) / 1e6, runs[1], runs[1] / count * 1e9);
  }
  return 0;
}
