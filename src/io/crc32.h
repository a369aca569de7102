// CRC-32 as used by ZIP (and zlib, PNG): reflected polynomial 0xEDB88320, initial and final
// value 0xFFFFFFFF. A table-driven version is fast enough for archive I/O and saves a
// zlib dependency.
#pragma once

#include <cstdint>
#include <span>

namespace dfss::io {

// CRC of `bytes` continuing from `crc` (the CRC of the bytes before them; 0 to start).
uint32_t crc32(std::span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace dfss::io
