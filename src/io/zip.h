// The subset of the ZIP format that NumPy's .npz files use: members stored without
// compression, no encryption, no ZIP64 (every size and offset below 4 GiB), one disk.
// Internal to src/io; npz.h is the interface.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dfss::io::zip {

// A member to write; its contents are the concatenation of `parts`.
struct MemberToWrite {
  std::string name;
  std::vector<std::span<const uint8_t>> parts;
};

// Where write() puts an archive: bytes appended in order, and header fields patched once
// the data after them is known.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void append(std::span<const uint8_t> bytes) = 0;
  virtual void overwrite(uint64_t offset, std::span<const uint8_t> bytes) = 0;
};

// Throws InvalidArgument starting with `what` if the archive of `members` would need
// ZIP64 (a size or offset of 4 GiB or more, or more than 65534 members) or a name is
// longer than 65535 bytes.
void check_limits(const std::vector<MemberToWrite>& members, const std::string& what);

// Writes the archive of `members`, in order, each with a local header, its CRC-32 and a
// central-directory entry, streaming: each member's data is appended as it is, its CRC-32
// computed on the way and patched into its local header, so no copy of the archive is
// held in memory. Timestamps are fixed (1980-01-01) so equal inputs give equal bytes.
// Checks check_limits first, so nothing is written for an archive that cannot be.
void write(const std::vector<MemberToWrite>& members, Sink& sink, const std::string& what);

// The archive image write() produces, in memory.
std::vector<uint8_t> encode(const std::vector<MemberToWrite>& members, const std::string& what);

// A member of a parsed archive; `data` points into the parsed bytes.
struct Member {
  std::string name;
  std::span<const uint8_t> data;
};

// Parses and validates an archive: the end record sits at the end of the image (after an
// optional comment), the central directory fills the space before it exactly, every local
// header agrees with its directory entry, members lie before the directory without
// overlapping, names are unique, methods are "stored" and CRC-32s match. Returns the
// members in directory order. Throws FormatError starting with `name` (and "entry '...'"
// where one member is at fault).
std::vector<Member> parse(std::span<const uint8_t> bytes, const std::string& name);

// `text` made printable for an error message (non-ASCII as \xNN), cut at 80 characters.
std::string printable(std::string_view text);

}  // namespace dfss::io::zip
