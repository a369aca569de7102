#include "io/npy.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "dfss/errors.h"
#include "io/file_bytes.h"
#include "io/npy_header.h"
#include "io/output_set.h"

namespace dfss::io {

// Data is copied byte for byte between the file and typed storage.
static_assert(std::endian::native == std::endian::little, "dfss assumes a little-endian host");

namespace {

using detail::NpyHeader;
using detail::NpyPreamble;

// Sizes `array`'s storage for `header` and returns where its bytes go.
std::span<uint8_t> allocate(NpyArray& array, const NpyHeader& header) {
  array.dtype = header.dtype;
  array.shape = header.shape;
  const auto n = static_cast<size_t>(header.numel);
  void* data = nullptr;
  switch (header.dtype) {
    case NpyDType::f32:
      array.f32.resize(n);
      data = array.f32.data();
      break;
    case NpyDType::bool_:
      array.bool_.resize(n);
      data = array.bool_.data();
      break;
    case NpyDType::f64:
      array.f64.resize(n);
      data = array.f64.data();
      break;
    case NpyDType::i64:
      array.i64.resize(n);
      data = array.i64.data();
      break;
    case NpyDType::i32:
      array.i32.resize(n);
      data = array.i32.data();
      break;
    case NpyDType::u16:
      array.u16.resize(n);
      data = array.u16.data();
      break;
  }
  return {static_cast<uint8_t*>(data), static_cast<size_t>(header.data_bytes)};
}

// NumPy itself writes only 0 and 1 for bools; anything else means a corrupt file.
void check_bools(const NpyArray& array, const std::string& name) {
  for (size_t i = 0; i < array.bool_.size(); ++i) {
    if (array.bool_[i] > 1) {
      throw FormatError(name + ": bool element " + std::to_string(i) + " has byte value " +
                        std::to_string(array.bool_[i]) + "; expected 0 or 1");
    }
  }
}

std::span<const uint8_t> storage_bytes(const NpyArray& array) {
  const void* data = nullptr;
  size_t count = 0;
  switch (array.dtype) {
    case NpyDType::f32:
      data = array.f32.data();
      count = array.f32.size();
      break;
    case NpyDType::bool_:
      data = array.bool_.data();
      count = array.bool_.size();
      break;
    case NpyDType::f64:
      data = array.f64.data();
      count = array.f64.size();
      break;
    case NpyDType::i64:
      data = array.i64.data();
      count = array.i64.size();
      break;
    case NpyDType::i32:
      data = array.i32.data();
      count = array.i32.size();
      break;
    case NpyDType::u16:
      data = array.u16.data();
      count = array.u16.size();
      break;
  }
  return {static_cast<const uint8_t*>(data),
          count * static_cast<size_t>(npy_dtype_size(array.dtype))};
}

// Header for writing `numel` elements of `dtype` as `shape`; `name` prefixes errors.
std::string header_for_writing(NpyDType dtype, const std::vector<int64_t>& shape,
                               size_t stored_elements, const std::string& name) {
  if (shape.size() > detail::kNpyMaxDims) {
    throw InvalidArgument(name + ": shape " + shape_string(shape) + " has more than " +
                          std::to_string(detail::kNpyMaxDims) + " dimensions");
  }
  int64_t numel = 0;
  uint64_t bytes = 0;
  const std::string problem = detail::checked_size(shape, npy_dtype_size(dtype), &numel, &bytes);
  if (!problem.empty()) {
    throw InvalidArgument(name + ": invalid shape " + shape_string(shape) + ": " + problem);
  }
  if (static_cast<uint64_t>(numel) != stored_elements) {
    throw InvalidArgument(name + ": shape " + shape_string(shape) + " has " +
                          std::to_string(numel) + " elements, but " +
                          std::to_string(stored_elements) + " are stored");
  }
  return detail::format_npy_preamble_and_header(dtype, shape);
}

std::span<const uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

}  // namespace

const char* npy_dtype_name(NpyDType dtype) {
  switch (dtype) {
    case NpyDType::f32: return "float32";
    case NpyDType::bool_: return "bool";
    case NpyDType::f64: return "float64";
    case NpyDType::i64: return "int64";
    case NpyDType::i32: return "int32";
    case NpyDType::u16: return "uint16";
  }
  return "unknown";
}

int64_t npy_dtype_size(NpyDType dtype) {
  switch (dtype) {
    case NpyDType::f32: return 4;
    case NpyDType::bool_: return 1;
    case NpyDType::f64: return 8;
    case NpyDType::i64: return 8;
    case NpyDType::i32: return 4;
    case NpyDType::u16: return 2;
  }
  return 1;
}

int64_t NpyArray::numel() const {
  // An empty array may have other dimensions whose product overflows (NumPy writes such
  // files and the parser accepts them), so a zero is looked for before multiplying.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // cannot overflow: checked when parsed
  return count;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& name) {
  const NpyPreamble preamble = detail::parse_npy_preamble(
      bytes.first(std::min(bytes.size(), detail::kNpyMaxPreambleSize)), bytes.size(), name);
  const std::string_view header_text(
      reinterpret_cast<const char*>(bytes.data()) + preamble.header_offset, preamble.header_length);
  const NpyHeader header = detail::parse_npy_header(preamble, header_text, name);
  detail::check_npy_data_size(header, bytes.size(), name);
  NpyArray array;
  const std::span<uint8_t> data = allocate(array, header);
  if (!data.empty()) std::memcpy(data.data(), bytes.data() + header.data_offset, data.size());
  check_bools(array, name);
  return array;
}

NpyArray read_npy(const std::string& path) {
  // Read front to back to the end of the file: its size at open is only a hint (see
  // file_bytes.h). The preamble first, in two steps since its length depends on the version.
  InputFile file(path, "a .npy file");
  uint8_t first[detail::kNpyMaxPreambleSize];
  size_t got = file.read({first, 8});
  const size_t length_size = got == 8 && first[6] == 1 ? 2 : 4;
  if (got == 8) got += file.read({first + 8, length_size});
  const bool ended = got < 8 + length_size;
  const std::span<const uint8_t> first_bytes(first, got);
  const NpyPreamble preamble =
      detail::parse_npy_preamble(first_bytes, ended ? got : detail::kNpyUnknownSize, path);

  const std::vector<uint8_t> header_bytes = file.read_up_to(preamble.header_length);
  if (header_bytes.size() < preamble.header_length) {
    // Now that the size is known, the preamble check reports the short header.
    detail::parse_npy_preamble(first_bytes, file.position(), path);
  }
  const NpyHeader header = detail::parse_npy_header(
      preamble, {reinterpret_cast<const char*>(header_bytes.data()), header_bytes.size()}, path);

  NpyArray array;
  if (file.size_at_open() >= header.data_offset + header.data_bytes) {
    // The usual case: the size at open vouches for the data, which is read in place.
    const std::span<uint8_t> data = allocate(array, header);
    const size_t read = file.read(data);
    if (read < data.size()) detail::check_npy_data_size(header, file.position(), path);
  } else {
    // The file claims less (it is truncated, or reports no size as /proc files do): the
    // buffer follows the bytes that arrive rather than the header's promise.
    const std::vector<uint8_t> data = file.read_up_to(header.data_bytes);
    if (data.size() < header.data_bytes) {
      detail::check_npy_data_size(header, file.position(), path);
    }
    const std::span<uint8_t> storage = allocate(array, header);
    if (!data.empty()) std::memcpy(storage.data(), data.data(), data.size());
  }
  const uint64_t trailing = file.skip_rest();
  if (trailing > 0) detail::check_npy_data_size(header, file.position(), path);
  check_bools(array, path);
  return array;
}

std::string encode_npy_header(const NpyArray& array) {
  return header_for_writing(array.dtype, array.shape,
                            storage_bytes(array).size() / npy_dtype_size(array.dtype),
                            "encode_npy");
}

std::span<const uint8_t> npy_data(const NpyArray& array) {
  return storage_bytes(array);
}

std::vector<uint8_t> encode_npy(const NpyArray& array) {
  const std::span<const uint8_t> data = storage_bytes(array);
  const std::string header = encode_npy_header(array);
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_npy(StagedFile& file, const float* data, const std::vector<int64_t>& shape) {
  const std::string& name = file.target().label;
  int64_t numel = 0;
  uint64_t bytes = 0;
  // Validated here so that a bad shape cannot make the byte count below wrap around.
  const std::string problem = detail::checked_size(shape, 4, &numel, &bytes);
  if (!problem.empty()) {
    throw InvalidArgument(name + ": invalid shape " + shape_string(shape) + ": " + problem);
  }
  file.write(as_bytes(header_for_writing(NpyDType::f32, shape, numel, name)));
  file.write({reinterpret_cast<const uint8_t*>(data), bytes});
}

void write_npy(StagedFile& file, const NpyArray& array) {
  const std::span<const uint8_t> data = storage_bytes(array);
  file.write(as_bytes(header_for_writing(
      array.dtype, array.shape, data.size() / npy_dtype_size(array.dtype), file.target().label)));
  file.write(data);
}

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  OutputSet outputs;
  write_npy(outputs.file(outputs.add(path)), data, shape);
  outputs.commit();
}

void write_npy(const std::string& path, const NpyArray& array) {
  OutputSet outputs;
  write_npy(outputs.file(outputs.add(path)), array);
  outputs.commit();
}

}  // namespace dfss::io
