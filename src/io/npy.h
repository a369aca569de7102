// NumPy .npy files, the array interchange format of the dfss CLI.
//
// Reads format versions 1.0, 2.0 and 3.0 holding a little-endian, C-order array of
// float32 ('<f4'), bool ('|b1'), float64 ('<f8'), int64 ('<i8'), int32 ('<i4') or uint16
// ('<u2'); writes version 1.0.
// Every input is validated before anything is allocated beyond the input's own size:
// malformed data throws dfss::FormatError and an unreadable file dfss::IoError, each with
// a message that starts with the file name and says what was expected and what was found.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dfss::io {

class StagedFile;

enum class NpyDType : uint8_t { f32, bool_, f64, i64, i32, u16 };

// "float32", "bool", "float64", "int64", "int32", "uint16".
const char* npy_dtype_name(NpyDType dtype);
// Bytes per element.
int64_t npy_dtype_size(NpyDType dtype);

// A dense array in C order. Only the vector matching `dtype` holds data (numel() elements);
// typed vectors keep the data aligned and readable without aliasing tricks.
struct NpyArray {
  NpyDType dtype = NpyDType::f32;
  std::vector<int64_t> shape;  // empty for a 0-d array
  std::vector<float> f32;
  std::vector<uint8_t> bool_;  // 0 or 1
  std::vector<double> f64;
  std::vector<int64_t> i64;
  std::vector<int32_t> i32;
  std::vector<uint16_t> u16;

  // Product of `shape` (1 for a 0-d array).
  int64_t numel() const;
};

// "[2, 3]" ("[]" for a 0-d array).
std::string shape_string(const std::vector<int64_t>& shape);

// Reads and validates the .npy file at `path`, a regular file read to its end under the
// rules of io/file_bytes.h.
NpyArray read_npy(const std::string& path);

// Parses an in-memory .npy image; `name` starts every error message (a path, or e.g.
// "<memory>").
NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& name);

// Encodes `array` as a version 1.0 .npy image whose header is padded so that the data
// starts at a multiple of 64 bytes. Throws InvalidArgument if the shape is negative,
// overflows, or does not match the stored element count.
std::vector<uint8_t> encode_npy(const NpyArray& array);

// The two pieces of encode_npy's image, for writers that place them without a copy
// (such as .npz archives): the preamble and header, with the same checks, and the data.
std::string encode_npy_header(const NpyArray& array);
std::span<const uint8_t> npy_data(const NpyArray& array);

// Writes a float32 array of `shape` (C order, product(shape) elements at `data`) to
// `path`. The file is written under a temporary name and renamed into place, so `path`
// is never left half-written. Throws IoError (or InvalidArgument for a bad shape) naming
// `path`.
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// Writes any supported array the same way.
void write_npy(const std::string& path, const NpyArray& array);

// The same two, into an output of an OutputSet (output_set.h), for commands that commit
// several files together; errors name the output's label.
void write_npy(StagedFile& file, const float* data, const std::vector<int64_t>& shape);
void write_npy(StagedFile& file, const NpyArray& array);

}  // namespace dfss::io
