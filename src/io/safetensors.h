// Hugging Face .safetensors files, the format pretrained model weights ship in.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON header, then the data
// section. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin,
// end]} (offsets relative to the data section) plus an optional "__metadata__" object of
// strings. open() reads the whole file into memory that the SafetensorsFile owns (not a
// mapping, which would fault if the file were truncated or rewritten while in use);
// tensors are views into that memory, not copies.
//
// Everything is validated when the file is opened, before any tensor is handed out, at
// least as strictly as the official implementation: the header length against the file
// and a 100 MB cap; the JSON (well-formed, an object, no duplicate keys); every entry
// (exactly the three keys, a known dtype, at most 8 non-negative dims whose product does
// not overflow, a byte range whose size matches shape and dtype, BOOL bytes 0 or 1); and
// that the ranges tile the data section exactly, without overlaps, gaps or trailing bytes.
// The header is parsed in one streaming pass: time is linear in its size, and memory is
// about 100 bytes per tensor (plus names and shapes) and 100 per metadata entry (at most
// 65536), so the 100 MB cap also bounds the parser's memory.
// Dtypes outside the list below (U16, U32, U64, F8_*, ...) are refused. Malformed data throws
// dfss::FormatError starting with the file name and, for one tensor, "tensor '<name>'";
// a file that cannot be opened or read throws dfss::IoError naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dfss::io {

enum class SafetensorsDType : uint8_t { f32, f16, bf16, f64, i64, i32, i16, i8, u8, bool_ };

// The header's spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8",
// "BOOL".
const char* safetensors_dtype_name(SafetensorsDType dtype);
// Bytes per element.
int64_t safetensors_dtype_size(SafetensorsDType dtype);

struct TensorInfo {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::f32;
  std::vector<int64_t> shape;  // empty for a scalar
  // The tensor's bytes, little-endian, C order, inside the file's bytes (or the parsed
  // buffer); valid while the SafetensorsFile lives, moves included. Not necessarily aligned to the
  // element size.
  std::span<const uint8_t> bytes;
  uint64_t data_offset = 0;  // of `bytes` within the data section, for messages

  // Product of `shape` (1 for a scalar).
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Reads (see io/file_bytes.h) and validates the file at `path`. The bytes are owned by
  // the result, so the file may change or vanish afterwards without effect.
  static SafetensorsFile open(const std::string& path);

  // Validates an in-memory image; `name` starts every error message. Does not copy:
  // `bytes` must outlive the result.
  static SafetensorsFile parse(std::span<const uint8_t> bytes, const std::string& name);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // The path or name given to open() or parse().
  const std::string& name() const { return name_; }
  // All tensors, sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The "__metadata__" entries (empty if the header has none).
  const std::map<std::string, std::string, std::less<>>& metadata() const { return metadata_; }

  // The tensor called `tensor`, or nullptr.
  const TensorInfo* find(std::string_view tensor) const;
  // The tensor called `tensor`; throws FormatError naming the file and tensor if absent.
  const TensorInfo& get(std::string_view tensor) const;
  // get(tensor), which must have exactly `shape`; otherwise throws FormatError such as
  // "model.safetensors: tensor 'w': expected shape [384, 384], got [384, 385]".
  const TensorInfo& get(std::string_view tensor, const std::vector<int64_t>& shape) const;

  // The values of an F32, F16 or BF16 tensor as float32 (a copy, widened exactly). Throws
  // FormatError naming the tensor if it is absent, has another dtype, or (with `shape`)
  // has another shape.
  std::vector<float> read_f32(std::string_view tensor) const;
  std::vector<float> read_f32(std::string_view tensor, const std::vector<int64_t>& shape) const;

  // A zero-copy view of an F32 tensor of exactly `shape`. Throws FormatError if the tensor
  // is absent, not F32, has another shape, or is not 4-byte aligned in memory (the
  // official writer always aligns; read_f32 accepts any placement).
  std::span<const float> view_f32(std::string_view tensor, const std::vector<int64_t>& shape) const;

 private:
  SafetensorsFile() = default;
  // "<file>: tensor '<tensor>': "
  std::string prefix(std::string_view tensor) const;

  std::string name_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string, std::less<>> metadata_;
  std::vector<uint8_t> bytes_;  // the file's contents, for open()ed files only
};

// Widens IEEE half / bfloat16 bits to float32 (exact: every such value is a float).
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);

}  // namespace dfss::io
