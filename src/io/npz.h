// NumPy .npz archives: several named arrays in one file, as np.savez writes them (a ZIP
// archive of stored, uncompressed "<name>.npy" members). dfss writes them for multi-array
// exports such as `dfss attention --scores-out`; numpy.load reads them.
//
// The reader is as strict as the .npy reader: the whole ZIP structure is validated
// against the file size (offsets, sizes, local headers, CRC-32s, no overlapping or
// duplicate members) and each member as a .npy image, before it is used. Compressed
// (np.savez_compressed), encrypted, multi-disk and ZIP64 archives are refused. Malformed
// data throws dfss::FormatError starting with the file name and, for one member, "entry
// '<member>'"; an unreadable file throws dfss::IoError.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/npy.h"

namespace dfss::io {

class StagedFile;

struct NpzEntry {
  std::string name;  // the key numpy.load returns: the member name without ".npy"
  NpyArray array;
};

// The archive image of `entries`, in order. Names must be non-empty printable ASCII
// without '/' or '\' (so that extracting the archive cannot escape its directory) and
// unique. Throws InvalidArgument otherwise, for a bad shape (see encode_npy), or for an
// archive of 4 GiB or more (no ZIP64).
std::vector<uint8_t> encode_npz(const std::vector<NpzEntry>& entries);

// Writes encode_npz(entries) to `path` under a temporary name renamed into place, so
// `path` is never left half-written; the archive streams to the file, so no copy of it
// is held in memory. Errors name `path`.
void write_npz(const std::string& path, const std::vector<NpzEntry>& entries);

// The same, into an output of an OutputSet (output_set.h); errors name its label.
void write_npz(StagedFile& file, const std::vector<NpzEntry>& entries);

// Parses an in-memory archive; `name` starts every error message. Every member must be
// called "<key>.npy" with a non-empty key.
std::vector<NpzEntry> parse_npz(std::span<const uint8_t> bytes, const std::string& name);

// Reads and validates the .npz file at `path`.
std::vector<NpzEntry> read_npz(const std::string& path);

// The array called `name`, or nullptr.
const NpyArray* find_npz_array(const std::vector<NpzEntry>& entries, std::string_view name);

}  // namespace dfss::io
