// libFuzzer target for the in-memory .npy parser: any byte string must be either rejected
// with a FormatError naming the input or accepted, and an accepted array must survive an
// encode/parse round trip with its data unchanged. Crashes, over-reads (ASan) and undefined
// behaviour (UBSan) are findings.
#include <cstdint>
#include <cstring>
#include <vector>

#include "dfss/errors.h"
#include "io/npy.h"

namespace {

constexpr char kName[] = "fuzz.npy";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dfss::io::NpyArray array;
  try {
    array = dfss::io::parse_npy({data, size}, kName);
  } catch (const dfss::FormatError& e) {
    if (std::strncmp(e.what(), kName, sizeof kName - 1) != 0) __builtin_trap();
    return 0;
  }

  const std::vector<uint8_t> encoded = dfss::io::encode_npy(array);
  const dfss::io::NpyArray again = dfss::io::parse_npy(encoded, "re-encoded");
  if (again.dtype != array.dtype || again.shape != array.shape) __builtin_trap();
  // The data is the tail of both images; it must be carried over byte for byte.
  const size_t data_bytes =
      static_cast<size_t>(array.numel() * dfss::io::npy_dtype_size(array.dtype));
  if (data_bytes > size || data_bytes > encoded.size() ||
      std::memcmp(data + size - data_bytes, encoded.data() + encoded.size() - data_bytes,
                  data_bytes) != 0) {
    __builtin_trap();
  }
  return 0;
}
