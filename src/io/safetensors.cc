#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "dfss/errors.h"
#include "io/file_bytes.h"
#include "io/npy.h"
#include "io/safetensors_header.h"

namespace dfss::io {

// Tensor bytes are little-endian and handed out (view_f32) or copied without swapping.
static_assert(std::endian::native == std::endian::little, "dfss assumes a little-endian host");

namespace {

using detail::quote_name;
using detail::range_string;
using detail::where;

// The official implementation's limit; real headers are a few hundred KB at most.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

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

// The image's header, with the tensors checked to tile its data section.
detail::SafetensorsHeader parse_image(std::span<const uint8_t> bytes, const std::string& file) {
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
  detail::SafetensorsHeader header = detail::parse_safetensors_header(text, data, file);
  check_tiling(header.tensors, data.size(), file);
  return header;
}

}  // namespace

namespace detail {

std::optional<SafetensorsDType> safetensors_dtype_from_name(std::string_view name) {
  for (const DTypeSpelling& known : kDTypes) {
    if (name == known.name) return known.dtype;
  }
  return std::nullopt;
}

std::string safetensors_dtype_names() {
  std::string names;
  for (const DTypeSpelling& known : kDTypes) {
    names += std::string(names.empty() ? "" : ", ") + known.name;
  }
  return names;
}

}  // namespace detail

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
  detail::SafetensorsHeader header = parse_image(bytes, name);
  file.tensors_ = std::move(header.tensors);
  file.metadata_ = std::move(header.metadata);
  return file;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  // Read into memory rather than mapped: a mapping faults (SIGBUS) on access once the
  // file is truncated or rewritten in place, and model files do get replaced while a
  // long job runs. Reading costs one copy at load, and the memory is the same as a
  // mapping whose pages have all been touched, which inference does.
  std::vector<uint8_t> bytes = read_regular_file(path, "a .safetensors file");
  SafetensorsFile file = parse(bytes, path);
  file.bytes_ = std::move(bytes);  // a vector's move keeps its buffer, so the views stay valid
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : name_(std::move(other.name_)),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)),
      bytes_(std::move(other.bytes_)) {
  other.tensors_.clear();  // no views into bytes it no longer owns
}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    name_ = std::move(other.name_);
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
    bytes_ = std::move(other.bytes_);
    other.tensors_.clear();
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() = default;

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
