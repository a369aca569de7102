// The two parts of a .npy file before the data: the binary preamble (magic, version,
// header length) and the header, a Python dict literal. Internal to src/io.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/npy.h"

namespace dfss::io::detail {

// Arrays with more dimensions are rejected (NumPy's own limit is 32 or 64).
inline constexpr size_t kNpyMaxDims = 32;
// Bytes that hold the preamble of every supported version (10 for 1.0, 12 for 2.0/3.0).
inline constexpr size_t kNpyMaxPreambleSize = 12;
// A file size not known yet (see parse_npy_preamble).
inline constexpr uint64_t kNpyUnknownSize = UINT64_MAX;

struct NpyPreamble {
  int major_version = 1;
  uint64_t header_offset = 0;  // where the header text starts
  uint64_t header_length = 0;  // bytes of header text; fits in the file
};

// Parses the preamble from the first min(file_size, kNpyMaxPreambleSize) bytes of a file
// of `file_size` bytes (kNpyUnknownSize while a reader has not yet seen the end: then
// only `first_bytes` is checked). Throws FormatError prefixed with `name`.
NpyPreamble parse_npy_preamble(std::span<const uint8_t> first_bytes, uint64_t file_size,
                               const std::string& name);

struct NpyHeader {
  NpyDType dtype = NpyDType::f32;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  uint64_t data_offset = 0;
  uint64_t data_bytes = 0;  // what the shape and dtype call for
};

// Parses and validates the header text that follows `preamble`. Throws FormatError.
NpyHeader parse_npy_header(const NpyPreamble& preamble, std::string_view header,
                           const std::string& name);

// Throws FormatError ("truncated data" or "trailing data") unless a file of `file_size`
// bytes holds exactly the data `header` calls for after it.
void check_npy_data_size(const NpyHeader& header, uint64_t file_size, const std::string& name);

// Element count of `shape` and its size in bytes for elements of `element_size` bytes.
// Returns an empty string on success, else what is wrong (negative or overflowing).
std::string checked_size(const std::vector<int64_t>& shape, int64_t element_size, int64_t* numel,
                         uint64_t* bytes);

// Preamble and header of a version 1.0 file, padded with spaces and a final '\n' so that
// the data starts at a multiple of 64 bytes. `shape` must have passed checked_size.
std::string format_npy_preamble_and_header(NpyDType dtype, const std::vector<int64_t>& shape);

}  // namespace dfss::io::detail
