// Loading command-line .npy inputs into the shapes dfss::attention expects. Errors name the
// option and the file ("--q Q.npy: ...").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/npy.h"

namespace dfss::cli {

// Reads `path`, given as the value of `flag`; read errors are prefixed with `flag`.
io::NpyArray read_input(const std::string& flag, const std::string& path);

// The shape of `array`, which must be a 4-D float32 array laid out as `layout`
// (e.g. "[B, H, Lq, d]"); otherwise throws InvalidArgument naming flag and path.
std::array<int64_t, 4> require_f32_4d(const io::NpyArray& array, const std::string& flag,
                                      const std::string& path, const char* layout);

// An additive key-padding mask [batch, keys] from a float32 array (used as is) or a bool
// array (true = attend -> 0, false -> -inf).
std::vector<float> additive_mask(const io::NpyArray& array, const std::string& flag,
                                 const std::string& path, int64_t batch, int64_t keys);

// Rounds every value to bfloat16 (nearest even).
std::vector<uint16_t> to_bf16(const std::vector<float>& values);

}  // namespace dfss::cli
