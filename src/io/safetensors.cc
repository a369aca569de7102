#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "dfss/errors.h"
#include "io/file_bytes.h"
#include "io/npy.h"

namespace dfss::io {

// Tensor bytes are little-endian and handed out (view_f32) or copied without swapping.
static_assert(std::endian::native == std::endian::little, "dfss assumes a little-endian host");

namespace {

using nlohmann::json;

// The official implementation's limit; real headers are a few hundred KB at most.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A valid header nests three deep (root, entry, shape); the cap stops hostile nesting early.
constexpr int kMaxJsonDepth = 8;
constexpr char kMetadataKey[] = "__metadata__";

struct DTypeSpelling {
  const char* name;
  SafetensorsDType dtype;
};
constexpr DTypeSpelling kDTypes[] = {
    {"F32", SafetensorsDType::f32},   {"F16", SafetensorsDType::f16},
    {"BF16", SafetensorsDType::bf16}, {"F64", SafetensorsDType::f64},
    {"I64", SafetensorsDType::i64},   {"I32", SafetensorsDType::i32},
    {"I16", SafetensorsDType::i16},   {"I8", SafetensorsDType::i8},
    {"U8", SafetensorsDType::u8},     {"BOOL", SafetensorsDType::bool_}};

std::string quote_name(std::string_view text) {
  // Bounded so that a hostile multi-megabyte name cannot bloat every message.
  constexpr size_t kMax = 200;
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "'" + std::string(...).
  std::string out = "'";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out.append("...");
  out.push_back('\'');
  if (text.size() > kMax) out.append(" (" + std::to_string(text.size()) + " bytes)");
  return out;
}

// "[begin, end]", appended piece by piece for the same reason as quote_name.
std::string range_string(uint64_t begin, uint64_t end) {
  std::string out = "[";
  out += std::to_string(begin);
  out += ", ";
  out += std::to_string(end);
  out += ']';
  return out;
}

// "file: " or "file: tensor 'name': ".
std::string where(const std::string& file, const std::string* tensor) {
  return tensor ? file + ": tensor " + quote_name(*tensor) + ": " : file + ": ";
}

// A short description of a JSON value for "got ..." parts of messages.
std::string describe(const json& value) {
  switch (value.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array of " + std::to_string(value.size()) + " elements";
    case json::value_t::string:
      return "the string \"" + value.get<std::string>().substr(0, 64) + "\"";
    default: return value.dump();
  }
}

// The value of a non-negative JSON integer that fits in int64_t, else nullopt. nlohmann
// parses every non-negative integer literal as unsigned; "-0", "1.0" and "1e3" are refused,
// as by the official reader.
std::optional<int64_t> as_index(const json& value) {
  if (!value.is_number_unsigned()) return std::nullopt;
  const auto v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return static_cast<int64_t>(v);
}

// Parses the header, rejecting duplicate keys (nlohmann would silently keep one copy and
// another reader might keep the other, so the file means different things to each) and
// nesting deeper than any valid header.
json parse_json(std::string_view text, const std::string& file) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth) {
      throw FormatError(file + ": header nests deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels; expected {name: {dtype, shape, data_offsets}}");
    }
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end) keys.pop_back();
    if (event == json::parse_event_t::key &&
        !keys.back().insert(parsed.get<std::string>()).second) {
      throw FormatError(file + ": header has the key " + quote_name(parsed.get<std::string>()) +
                        " twice; expected unique keys");
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), check);
  } catch (const json::exception& e) {
    throw FormatError(file + ": header is not valid JSON: " + e.what());
  }
}

std::map<std::string, std::string, std::less<>> parse_metadata(const json& value,
                                                               const std::string& file) {
  if (!value.is_object()) {
    throw FormatError(file + ": __metadata__ is " + describe(value) +
                      "; expected an object of strings");
  }
  std::map<std::string, std::string, std::less<>> metadata;
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) {
      throw FormatError(file + ": __metadata__ entry " + quote_name(key) + " is " + describe(text) +
                        "; expected a string");
    }
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

SafetensorsDType parse_dtype(const json& value, const std::string& at) {
  if (value.is_string()) {
    for (const DTypeSpelling& known : kDTypes) {
      if (value.get<std::string>() == known.name) return known.dtype;
    }
  }
  std::string names;
  for (const DTypeSpelling& known : kDTypes) {
    names += std::string(names.empty() ? "" : ", ") + known.name;
  }
  throw FormatError(at + "dtype is " + describe(value) + "; expected one of " + names);
}

std::vector<int64_t> parse_shape(const json& value, const std::string& at, int64_t* numel) {
  if (!value.is_array()) {
    throw FormatError(at + "shape is " + describe(value) + "; expected an array of integers");
  }
  std::vector<int64_t> shape;
  shape.reserve(value.size());
  *numel = 1;
  for (const json& dim : value) {
    const std::optional<int64_t> size = as_index(dim);
    if (!size) {
      throw FormatError(at + "shape element " + std::to_string(shape.size()) + " is " +
                        describe(dim) + "; expected a non-negative integer below 2^63");
    }
    // Checked in order, as the official reader does: any overflowing prefix is refused,
    // so later stride arithmetic on the shape cannot overflow either.
    if (__builtin_mul_overflow(*numel, *size, numel)) {
      throw FormatError(at + "shape has more than 2^63 - 1 elements");
    }
    shape.push_back(*size);
  }
  return shape;
}

// NumPy and PyTorch write only 0 and 1; anything else is corruption (and not a valid bool).
void check_bools(const TensorInfo& tensor, const std::string& at) {
  for (size_t i = 0; i < tensor.bytes.size(); ++i) {
    if (tensor.bytes[i] > 1) {
      throw FormatError(at + "BOOL element " + std::to_string(i) + " has byte value " +
                        std::to_string(tensor.bytes[i]) + "; expected 0 or 1");
    }
  }
}

TensorInfo parse_entry(const std::string& key, const json& entry, std::span<const uint8_t> data,
                       const std::string& file) {
  const std::string at = where(file, &key);
  if (!entry.is_object()) {
    throw FormatError(at + "entry is " + describe(entry) +
                      "; expected an object with dtype, shape and data_offsets");
  }
  for (const char* required : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(required)) throw FormatError(at + "missing \"" + required + "\"");
  }
  for (const auto& item : entry.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets") {
      throw FormatError(at + "unexpected key " + quote_name(item.key()) +
                        "; expected only dtype, shape and data_offsets");
    }
  }
  TensorInfo tensor;
  tensor.name = key;
  tensor.dtype = parse_dtype(entry.at("dtype"), at);
  int64_t numel = 0;
  tensor.shape = parse_shape(entry.at("shape"), at, &numel);

  const json& offsets = entry.at("data_offsets");
  std::optional<int64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = as_index(offsets[0]);
    end = as_index(offsets[1]);
  }
  if (!begin || !end) {
    throw FormatError(at + "data_offsets is " +
                      (offsets.is_array() ? offsets.dump() : describe(offsets)) +
                      "; expected [begin, end] with non-negative integers");
  }
  const std::string range = range_string(*begin, *end);
  if (*begin > *end) throw FormatError(at + "data_offsets " + range + " end before they begin");
  if (static_cast<uint64_t>(*end) > data.size()) {
    throw FormatError(at + "data_offsets " + range + " run past the data section of " +
                      std::to_string(data.size()) + " bytes");
  }
  int64_t needed = 0;
  const bool overflow =
      __builtin_mul_overflow(numel, safetensors_dtype_size(tensor.dtype), &needed);
  if (overflow || needed != *end - *begin) {
    throw FormatError(
        at + safetensors_dtype_name(tensor.dtype) + " shape " + shape_string(tensor.shape) +
        " needs " + (overflow ? std::string("more than 2^63 - 1") : std::to_string(needed)) +
        " bytes, but data_offsets " + range + " hold " + std::to_string(*end - *begin));
  }
  tensor.bytes = data.subspan(static_cast<size_t>(*begin), static_cast<size_t>(needed));
  tensor.data_offset = static_cast<uint64_t>(*begin);
  if (tensor.dtype == SafetensorsDType::bool_) check_bools(tensor, at);
  return tensor;
}

// The byte ranges must tile the data section exactly, as the format requires: an overlap
// would alias two tensors, and a gap or a tail could hide a second payload.
void check_tiling(const std::vector<TensorInfo>& tensors, uint64_t data_size,
                  const std::string& file) {
  std::vector<const TensorInfo*> order;
  for (const TensorInfo& tensor : tensors) order.push_back(&tensor);
  // Stable, so that tensors with equal ranges are reported in name order.
  std::stable_sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::pair(a->data_offset, a->bytes.size()) < std::pair(b->data_offset, b->bytes.size());
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* tensor : order) {
    const std::string range =
        range_string(tensor->data_offset, tensor->data_offset + tensor->bytes.size());
    if (tensor->data_offset < covered) {
      throw FormatError(where(file, &tensor->name) + "data_offsets " + range + " overlap tensor " +
                        quote_name(previous->name) + ", which ends at " + std::to_string(covered));
    }
    if (tensor->data_offset > covered) {
      throw FormatError(where(file, &tensor->name) + "data_offsets " + range +
                        " leave a gap; expected the tensor to begin at " + std::to_string(covered));
    }
    covered += tensor->bytes.size();
    previous = tensor;
  }
  if (covered != data_size) {
    throw FormatError(file + ": data section has " + std::to_string(data_size) +
                      " bytes, but the tensors cover only the first " + std::to_string(covered));
  }
}

struct Parsed {
  std::vector<TensorInfo> tensors;  // sorted by name
  std::map<std::string, std::string, std::less<>> metadata;
};

Parsed parse_image(std::span<const uint8_t> bytes, const std::string& file) {
  if (bytes.size() < 8) {
    throw FormatError(file + ": file is " + std::to_string(bytes.size()) +
                      " bytes; expected at least 8 (the header length)");
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);  // little-endian host, checked above
  if (header_size > kMaxHeaderBytes) {
    throw FormatError(file + ": header length " + std::to_string(header_size) +
                      " exceeds the cap of " + std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (header_size > bytes.size() - 8) {
    throw FormatError(file + ": header length " + std::to_string(header_size) + " exceeds the " +
                      std::to_string(bytes.size() - 8) + " bytes after the length field");
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
  const std::span<const uint8_t> data = bytes.subspan(8 + header_size);

  const json header = parse_json(text, file);
  if (!header.is_object()) {
    throw FormatError(file + ": header is " + describe(header) + "; expected a JSON object");
  }
  Parsed parsed;
  // nlohmann's objects iterate in key order, so the tensors come out sorted by name.
  for (const auto& [key, entry] : header.items()) {
    if (key == kMetadataKey) {
      parsed.metadata = parse_metadata(entry, file);
    } else {
      parsed.tensors.push_back(parse_entry(key, entry, data, file));
    }
  }
  check_tiling(parsed.tensors, data.size(), file);
  return parsed;
}

}  // namespace

const char* safetensors_dtype_name(SafetensorsDType dtype) {
  for (const DTypeSpelling& known : kDTypes) {
    if (known.dtype == dtype) return known.name;
  }
  return "unknown";
}

int64_t safetensors_dtype_size(SafetensorsDType dtype) {
  switch (dtype) {
    case SafetensorsDType::f64:
    case SafetensorsDType::i64: return 8;
    case SafetensorsDType::f32:
    case SafetensorsDType::i32: return 4;
    case SafetensorsDType::f16:
    case SafetensorsDType::bf16:
    case SafetensorsDType::i16: return 2;
    case SafetensorsDType::i8:
    case SafetensorsDType::u8:
    case SafetensorsDType::bool_: return 1;
  }
  return 1;
}

int64_t TensorInfo::numel() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;  // cannot overflow: checked when parsed
  return count;
}

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  const uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  // Infinity and NaN (payload kept) map to float's all-ones exponent; normal numbers
  // rebias the exponent from 15 to 127.
  const uint32_t wide_exponent = exponent == 0x1F ? 0xFFu : exponent + (127 - 15);
  return std::bit_cast<float>(sign | (wide_exponent << 23) | (mantissa << 13));
}

float bf16_to_f32(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);  // bf16 is float's top half
}

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, const std::string& name) {
  SafetensorsFile file;
  file.name_ = name;
  Parsed parsed = parse_image(bytes, name);
  file.tensors_ = std::move(parsed.tensors);
  file.metadata_ = std::move(parsed.metadata);
  return file;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  // Only a regular file has a size known up front to validate the header against. The
  // mapping stays valid after the file is closed.
  const RegularFile opened(path, "a .safetensors file");
  const int fd = opened.fd();
  const size_t size = opened.size();

  SafetensorsFile file;  // owns the mapping from here on, so a FormatError unmaps it
  file.name_ = path;
  std::span<const uint8_t> bytes;
  if (size >= 8) {  // smaller files are refused by parse_image; mmap refuses length 0
    void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) throw IoError(path + ": cannot map: " + std::strerror(errno));
    file.mapping_ = mapping;
    file.mapping_size_ = size;
    bytes = {static_cast<const uint8_t*>(mapping), size};
  } else {
    // Tiny: read() would do, but parse_image only needs the size to refuse it.
    static const uint8_t kNone[8] = {};
    bytes = {kNone, size};
  }
  Parsed parsed = parse_image(bytes, path);
  file.tensors_ = std::move(parsed.tensors);
  file.metadata_ = std::move(parsed.metadata);
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : name_(std::move(other.name_)),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_size_(std::exchange(other.mapping_size_, 0)) {
  other.tensors_.clear();  // no views into a mapping it no longer owns
}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    unmap();
    name_ = std::move(other.name_);
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_size_ = std::exchange(other.mapping_size_, 0);
    other.tensors_.clear();
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  unmap();
}

void SafetensorsFile::unmap() noexcept {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
  mapping_ = nullptr;
  mapping_size_ = 0;
}

std::string SafetensorsFile::prefix(std::string_view tensor) const {
  const std::string name(tensor);
  return where(name_, &name);
}

const TensorInfo* SafetensorsFile::find(std::string_view tensor) const {
  const auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), tensor,
      [](const TensorInfo& info, std::string_view key) { return info.name < key; });
  return it != tensors_.end() && it->name == tensor ? &*it : nullptr;
}

const TensorInfo& SafetensorsFile::get(std::string_view tensor) const {
  const TensorInfo* info = find(tensor);
  if (info == nullptr) {
    throw FormatError(prefix(tensor) + "not found; the file has " +
                      std::to_string(tensors_.size()) + " tensors");
  }
  return *info;
}

const TensorInfo& SafetensorsFile::get(std::string_view tensor,
                                       const std::vector<int64_t>& shape) const {
  const TensorInfo& info = get(tensor);
  if (info.shape != shape) {
    throw FormatError(prefix(tensor) + "expected shape " + shape_string(shape) + ", got " +
                      shape_string(info.shape));
  }
  return info;
}

std::vector<float> SafetensorsFile::read_f32(std::string_view tensor) const {
  const TensorInfo& info = get(tensor);
  const auto n = static_cast<size_t>(info.numel());
  std::vector<float> values(n);
  // memcpy per element: the bytes need not be aligned.
  switch (info.dtype) {
    case SafetensorsDType::f32:
      if (n > 0) std::memcpy(values.data(), info.bytes.data(), n * sizeof(float));
      return values;
    case SafetensorsDType::f16:
    case SafetensorsDType::bf16: {
      float (*widen)(uint16_t) = info.dtype == SafetensorsDType::f16 ? f16_to_f32 : bf16_to_f32;
      for (size_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, info.bytes.data() + 2 * i, 2);
        values[i] = widen(bits);
      }
      return values;
    }
    default:
      throw FormatError(prefix(tensor) + "dtype is " + safetensors_dtype_name(info.dtype) +
                        "; expected F32, F16 or BF16 to read as float32");
  }
}

std::vector<float> SafetensorsFile::read_f32(std::string_view tensor,
                                             const std::vector<int64_t>& shape) const {
  get(tensor, shape);
  return read_f32(tensor);
}

std::span<const float> SafetensorsFile::view_f32(std::string_view tensor,
                                                 const std::vector<int64_t>& shape) const {
  const TensorInfo& info = get(tensor, shape);
  if (info.dtype != SafetensorsDType::f32) {
    throw FormatError(prefix(tensor) + "dtype is " + safetensors_dtype_name(info.dtype) +
                      "; expected F32 for a zero-copy view (read_f32 converts F16 and BF16)");
  }
  if (reinterpret_cast<uintptr_t>(info.bytes.data()) % alignof(float) != 0) {
    throw FormatError(prefix(tensor) + "data at offset " + std::to_string(info.data_offset) +
                      " of the data section is not 4-byte aligned in memory; expected an "
                      "aligned F32 tensor (read_f32 copies unaligned data)");
  }
  return {reinterpret_cast<const float*>(info.bytes.data()), info.bytes.size() / sizeof(float)};
}

}  // namespace dfss::io
