// CPU time to parse a .safetensors header of N empty tensors (in memory, no disk), median
// of 3 runs, and with --memory the peak resident memory of parsing the worst headers the
// 100 MB cap admits. Parsing should be linear in N; it once was quadratic.
// Usage: dfss_safetensors_header_bench [--memory] [N ...]   (default N: 20k 40k 100k 200k 1M)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
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

// CPU time of this (single-threaded) process: on a shared machine, wall time also counts
// the waits for a core.
double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double parse_seconds(const std::string& bytes, size_t* tensors) {
  const double start = cpu_seconds();
  const auto file = dfss::io::SafetensorsFile::parse(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "bench.safetensors");
  *tensors = file.tensors().size();
  return cpu_seconds() - start;
}

// A "VmRSS:" or "VmHWM:" (peak) line of /proc/self/status, in MB.
long status_mb(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size()) / 1024;
  }
  return -1;
}

// Restarts the peak (VmHWM) from the current resident size.
void reset_peak() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

// Peak RSS while parsing `bytes`, beyond what was resident before (the image itself).
void measure(const char* what, const std::string& bytes) {
  reset_peak();
  const long before = status_mb("VmRSS:");
  const double start = cpu_seconds();
  std::string outcome = "accepted";
  try {
    size_t tensors = 0;
    parse_seconds(bytes, &tensors);
    outcome += " (" + std::to_string(tensors) + " tensors)";
  } catch (const dfss::FormatError& e) {
    outcome = std::string("refused: ") + std::string(e.what()).substr(0, 70);
  }
  const double seconds = cpu_seconds() - start;
  std::printf("%-40s header %5.1f MB %6.2f CPU s  parsing peak RSS +%4ld MB  %s\n", what,
              static_cast<double>(bytes.size()) / 1e6, seconds, status_mb("VmHWM:") - before,
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
  std::string entries = "{";
  for (int64_t i = 0;; ++i) {
    const std::string entry =
        "\"t" + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}";
    if (entries.size() + entry.size() + 2 > kCap) break;
    if (i > 0) entries += ',';
    entries += entry;
  }
  measure("empty tensors filling the 100 MB cap", image(entries + "}"));
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
  std::printf("%10s %12s %12s %14s\n", "tensors", "header MB", "parse CPU s", "ns per tensor");
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
