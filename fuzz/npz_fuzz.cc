// libFuzzer target for the in-memory .npz parser: any byte string must be either rejected
// with a FormatError naming the input or accepted, and an accepted archive must survive an
// encode/parse round trip with every name, dtype, shape and data byte unchanged. Crashes,
// over-reads (ASan) and undefined behaviour (UBSan) are findings.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "io/npz.h"

namespace {

constexpr char kName[] = "fuzz.npz";

bool same(const dfss::io::NpzEntry& a, const dfss::io::NpzEntry& b) {
  const std::span<const uint8_t> x = dfss::io::npy_data(a.array), y = dfss::io::npy_data(b.array);
  return a.name == b.name && a.array.dtype == b.array.dtype && a.array.shape == b.array.shape &&
         x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<dfss::io::NpzEntry> entries;
  try {
    entries = dfss::io::parse_npz({data, size}, kName);
  } catch (const dfss::FormatError& e) {
    if (std::strncmp(e.what(), kName, sizeof kName - 1) != 0) __builtin_trap();
    return 0;
  }

  std::vector<uint8_t> encoded;
  try {
    encoded = dfss::io::encode_npz(entries);
  } catch (const dfss::InvalidArgument& e) {
    // The reader accepts any member name; the writer refuses names that could escape a
    // directory on extraction. Nothing else may fail.
    if (std::string(e.what()).find("entry name") == std::string::npos) __builtin_trap();
    return 0;
  }
  const std::vector<dfss::io::NpzEntry> again = dfss::io::parse_npz(encoded, "re-encoded");
  if (again.size() != entries.size()) __builtin_trap();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!same(entries[i], again[i])) __builtin_trap();
  }
  return 0;
}
