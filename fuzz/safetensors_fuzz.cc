// libFuzzer target for the in-memory .safetensors parser: any byte string must be either
// rejected with a FormatError naming the input or accepted, and an accepted file must
// satisfy every promise of the API: views inside the input that tile the data section,
// sizes that match shape and dtype, find() agreeing with tensors(), and read_f32 widening
// exactly the float dtypes. Crashes, over-reads (ASan) and undefined behaviour (UBSan) are
// findings.
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "io/safetensors.h"

namespace {

constexpr char kName[] = "fuzz.safetensors";

bool is_float(dfss::io::SafetensorsDType dtype) {
  using dfss::io::SafetensorsDType;
  return dtype == SafetensorsDType::f32 || dtype == SafetensorsDType::f16 ||
         dtype == SafetensorsDType::bf16;
}

void check_tensor(const dfss::io::SafetensorsFile& file, const dfss::io::TensorInfo& tensor,
                  const uint8_t* begin, const uint8_t* end) {
  if (file.find(tensor.name) != &tensor) __builtin_trap();
  if (tensor.bytes.data() < begin || tensor.bytes.data() + tensor.bytes.size() > end) {
    __builtin_trap();
  }
  const int64_t numel = tensor.numel();
  if (numel < 0 || static_cast<uint64_t>(numel) * dfss::io::safetensors_dtype_size(tensor.dtype) !=
                       tensor.bytes.size()) {
    __builtin_trap();
  }
  if (is_float(tensor.dtype)) {
    if (file.read_f32(tensor.name, tensor.shape).size() != static_cast<size_t>(numel)) {
      __builtin_trap();
    }
    return;
  }
  try {
    file.read_f32(tensor.name);
  } catch (const dfss::FormatError& e) {
    // The refusal must name the file and the tensor.
    const std::string expected = std::string(kName) + ": tensor '";
    if (std::strncmp(e.what(), expected.data(), expected.size()) != 0) __builtin_trap();
    return;
  }
  __builtin_trap();  // a non-float dtype was read as float32
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<dfss::io::SafetensorsFile> file;
  try {
    file.emplace(dfss::io::SafetensorsFile::parse({data, size}, kName));
  } catch (const dfss::FormatError& e) {
    if (std::strncmp(e.what(), kName, sizeof kName - 1) != 0) __builtin_trap();
    return 0;
  }
  // Outside the try: once the file is accepted, nothing below may throw.
  uint64_t covered = 0;
  for (const dfss::io::TensorInfo& tensor : file->tensors()) {
    check_tensor(*file, tensor, data, data + size);
    covered += tensor.bytes.size();
  }
  // Tiling: the tensors' bytes add up to exactly the data section, which ends the input.
  uint64_t header = 0;
  std::memcpy(&header, data, 8);
  if (8 + header + covered != size) __builtin_trap();
  return 0;
}
