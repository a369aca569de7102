#include "cli/bench_common.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "dfss/errors.h"
#include "io/atomic_file.h"
#include "io/file_bytes.h"

namespace dfss::cli {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void check_writable_directory(const std::string& path, const char* flag) {
  std::filesystem::path directory = std::filesystem::path(path).parent_path();
  if (directory.empty()) directory = std::filesystem::path(".");
  if (::access(directory.c_str(), W_OK) != 0) {
    throw IoError(std::string(flag) + " " + path + ": cannot write into '" + directory.string() +
                  "': " + std::strerror(errno));
  }
}

void write_text_file(const std::string& path, const std::string& text, const char* flag) {
  try {
    io::write_file_atomically(path, {{reinterpret_cast<const uint8_t*>(text.data()), text.size()}});
  } catch (const IoError& e) {
    throw IoError(std::string(flag) + " " + e.what());
  }
}

std::string cpu_model_name() {
  std::vector<uint8_t> bytes;
  try {
    bytes = io::read_regular_file("/proc/cpuinfo", "the kernel's CPU description");
  } catch (const IoError&) {
    return "unknown";
  }
  std::istringstream cpuinfo(std::string(bytes.begin(), bytes.end()));
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "unknown" : line.substr(start);
  }
  return "unknown";
}

}  // namespace dfss::cli
