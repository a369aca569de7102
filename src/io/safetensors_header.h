// The JSON header of a .safetensors file, parsed in one streaming pass (nlohmann's SAX
// interface) straight into tensor entries: time linear in the header's size, no JSON
// tree, and memory proportional to what is kept (about 100 bytes per tensor plus its name
// and shape). Internal to src/io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace dfss::io::detail {

// Shapes with more dimensions are refused (real checkpoints have at most 5); the cap also
// bounds what a hostile shape array can allocate.
inline constexpr size_t kSafetensorsMaxRank = 8;
// "__metadata__" entries beyond this are refused (writers store a handful); each costs
// about 100 bytes in memory for as few as 8 in the header.
inline constexpr size_t kSafetensorsMaxMetadataEntries = 65536;

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by name, unique
  std::map<std::string, std::string, std::less<>> metadata;
};

// Parses and validates the header `text`, whose tensors lie in `data` (the data section):
// JSON well-formed, an object, no duplicate keys, nesting no deeper than a valid header's;
// every entry exactly {dtype, shape, data_offsets} with a known dtype, at most
// kSafetensorsMaxRank non-negative dims whose product does not overflow, and a byte range
// inside `data` whose size matches shape and dtype (BOOL bytes 0 or 1). Throws FormatError
// starting with `file` and, for one tensor, "tensor '<name>': ". The tiling of `data` is
// left to the caller.
SafetensorsHeader parse_safetensors_header(std::string_view text, std::span<const uint8_t> data,
                                           const std::string& file);

// The dtype spelled `name` in a header ("F32", ...), if supported.
std::optional<SafetensorsDType> safetensors_dtype_from_name(std::string_view name);
// "F32, F16, ..." for messages.
std::string safetensors_dtype_names();

// Message pieces shared by the reader: 'name' (cut at 200 bytes), "[begin, end]", and
// "file: " or "file: tensor 'name': ".
std::string quote_name(std::string_view text);
std::string range_string(uint64_t begin, uint64_t end);
std::string where(const std::string& file, const std::string* tensor);

}  // namespace dfss::io::detail
