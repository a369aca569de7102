#include "cli/bench_common.h"

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <vector>

#include "dfss/errors.h"
#include "io/file_bytes.h"
#include "io/output_set.h"

namespace dfss::cli {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void check_output_file(const std::string& path, const char* flag) {
  io::check_output(path, flag);
}

void write_text_file(const std::string& path, const std::string& text, const char* flag) {
  io::OutputSet outputs;
  outputs.file(outputs.add(path, flag))
      .write({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  outputs.commit();
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
