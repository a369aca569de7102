#include "io/zip.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

#include "dfss/errors.h"
#include "io/crc32.h"

namespace dfss::io::zip {
namespace {

// Record signatures and fixed sizes (APPNOTE.TXT 4.3).
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kMaxComment = 0xFFFF;
constexpr uint16_t kZip64ExtraId = 0x0001;

constexpr uint16_t kVersion = 20;    // 2.0: what Python's zipfile writes for stored members
constexpr uint16_t kDosDate = 0x21;  // 1980-01-01, the earliest DOS date
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagStrongEncryption = 0x0040;
constexpr uint16_t kFlagDataDescriptor = 0x0008;
// 0xFFFF / 0xFFFFFFFF in a 16- / 32-bit field mean "see the ZIP64 record".
constexpr uint32_t kMax32 = 0xFFFFFFFF;
constexpr uint16_t kMax16 = 0xFFFF;

// Where the CRC-32 sits in a local header.
constexpr uint64_t kCrcOffset = 14;

uint64_t member_size(const MemberToWrite& member) {
  uint64_t size = 0;
  for (std::span<const uint8_t> part : member.parts) size += part.size();
  return size;
}

void put16(std::vector<uint8_t>& out, uint32_t value) {
  out.push_back(static_cast<uint8_t>(value));
  out.push_back(static_cast<uint8_t>(value >> 8));
}

void put32(std::vector<uint8_t>& out, uint32_t value) {
  put16(out, value & 0xFFFF);
  put16(out, value >> 16);
}

// Little-endian fields of an image; callers check bounds first.
class Bytes {
 public:
  explicit Bytes(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint64_t size() const { return bytes_.size(); }
  uint16_t u16(uint64_t at) const {
    return static_cast<uint16_t>(bytes_[at] | bytes_[at + 1] << 8);
  }
  uint32_t u32(uint64_t at) const { return u16(at) | static_cast<uint32_t>(u16(at + 2)) << 16; }
  uint64_t u64(uint64_t at) const { return u32(at) | static_cast<uint64_t>(u32(at + 4)) << 32; }
  std::string text(uint64_t at, uint64_t length) const {
    return {reinterpret_cast<const char*>(bytes_.data() + at), static_cast<size_t>(length)};
  }
  std::span<const uint8_t> span(uint64_t at, uint64_t length) const {
    return bytes_.subspan(static_cast<size_t>(at), static_cast<size_t>(length));
  }

 private:
  std::span<const uint8_t> bytes_;
};

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::string str(uint64_t value) {
  return std::to_string(value);
}

struct EndRecord {
  uint64_t position = 0;
  uint64_t entries = 0;
  uint64_t directory_offset = 0;
  uint64_t directory_size = 0;
};

// The end-of-central-directory record: the last match whose comment runs exactly to the
// end of the file, which rules out a signature inside the comment.
EndRecord find_end_record(const Bytes& bytes, const std::string& name) {
  const bool npy = bytes.size() >= 6 && bytes.text(0, 6) == "\x93NUMPY";
  const std::string what = npy ? "; this is a .npy file, not an .npz archive"
                               : "; expected a ZIP archive such as np.savez writes";
  if (bytes.size() < kEndSize) {
    throw FormatError(name + ": file has only " + str(bytes.size()) +
                      " bytes, too few for a ZIP end record (22)" + what);
  }
  const uint64_t last = bytes.size() - kEndSize;
  const uint64_t first = last - std::min(last, kMaxComment);
  std::optional<uint64_t> found;
  for (uint64_t at = last + 1; at-- > first;) {
    if (bytes.u32(at) == kEndSignature && bytes.u16(at + 20) == bytes.size() - at - kEndSize) {
      found = at;
      break;
    }
  }
  if (!found) {
    throw FormatError(name + ": no ZIP end-of-central-directory record at the end of the file" +
                      (npy ? what : " (truncated, or not an .npz archive)"));
  }
  const uint64_t at = *found;
  EndRecord end;
  end.position = at;
  end.entries = bytes.u16(at + 10);
  end.directory_size = bytes.u32(at + 12);
  end.directory_offset = bytes.u32(at + 16);
  if (bytes.u16(at + 4) != 0 || bytes.u16(at + 6) != 0 || bytes.u16(at + 8) != end.entries) {
    throw FormatError(name + ": multi-disk (split) ZIP archives are not supported");
  }
  const bool zip64_locator = at >= 20 && bytes.u32(at - 20) == kZip64LocatorSignature;
  if (zip64_locator || end.entries == kMax16 || end.directory_size == kMax32 ||
      end.directory_offset == kMax32) {
    throw FormatError(name + ": ZIP64 archives (over 4 GiB or 65534 entries) are not supported");
  }
  if (end.directory_offset + end.directory_size != at) {
    throw FormatError(name + ": the central directory (offset " + str(end.directory_offset) + ", " +
                      str(end.directory_size) + " bytes) does not end where the end record " +
                      "starts (offset " + str(at) + ")");
  }
  return end;
}

struct Entry {
  std::string name;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t size = 0;
  uint64_t local_offset = 0;
  uint64_t data_offset = 0;  // set from the local header
};

// Reads the directory entry at `*at` (inside [.., end)) and advances past it.
Entry read_directory_entry(const Bytes& bytes, uint64_t* at, uint64_t end, uint64_t index,
                           const std::string& name) {
  const std::string where = name + ": central directory entry " + str(index);
  if (end - *at < kCentralSize) {
    throw FormatError(where + " is truncated: needs " + str(kCentralSize) + " bytes at offset " +
                      str(*at) + ", the directory has " + str(end - *at) + " left");
  }
  const uint64_t p = *at;
  if (bytes.u32(p) != kCentralSignature) {
    throw FormatError(where + " at offset " + str(p) + ": bad signature " + hex32(bytes.u32(p)) +
                      ", expected " + hex32(kCentralSignature));
  }
  const uint64_t variable = uint64_t{bytes.u16(p + 28)} + bytes.u16(p + 30) + bytes.u16(p + 32);
  if (end - p - kCentralSize < variable) {
    throw FormatError(where + " is truncated: its name, extra field and comment need " +
                      str(variable) + " bytes, the directory has " + str(end - p - kCentralSize) +
                      " left");
  }
  Entry entry;
  entry.name = bytes.text(p + kCentralSize, bytes.u16(p + 28));
  const std::string at_entry = name + ": entry '" + printable(entry.name) + "'";
  if (entry.name.empty()) throw FormatError(where + " has an empty name");
  const uint16_t flags = bytes.u16(p + 8);
  entry.method = bytes.u16(p + 10);
  entry.crc = bytes.u32(p + 16);
  const uint32_t compressed = bytes.u32(p + 20), size = bytes.u32(p + 24);
  entry.local_offset = bytes.u32(p + 42);
  if (flags & (kFlagEncrypted | kFlagStrongEncryption)) {
    throw FormatError(at_entry + ": is encrypted; encrypted archives are not supported");
  }
  if (entry.method != 0) {
    throw FormatError(at_entry + ": is compressed (method " + str(entry.method) +
                      (entry.method == 8 ? ", deflate" : "") +
                      "); expected stored entries (method 0) as np.savez writes "
                      "(np.savez_compressed archives are not supported)");
  }
  if (compressed == kMax32 || size == kMax32 || entry.local_offset == kMax32) {
    throw FormatError(at_entry + ": has ZIP64 sizes (4 GiB or more); not supported");
  }
  if (compressed != size) {
    throw FormatError(at_entry + ": stored entry has a compressed size of " + str(compressed) +
                      " bytes but a size of " + str(size) + "; they must be equal");
  }
  if (bytes.u16(p + 34) != 0) {
    throw FormatError(at_entry + ": starts on disk " + str(bytes.u16(p + 34)) +
                      "; multi-disk archives are not supported");
  }
  entry.size = size;
  *at = p + kCentralSize + variable;
  return entry;
}

// The ZIP64 sizes in a local header's extra field, which Python's zipfile (and so
// np.savez) writes with 0xFFFFFFFF placeholders in the fixed fields.
bool zip64_local_sizes_match(const Bytes& bytes, uint64_t extra, uint64_t length, uint64_t size) {
  uint64_t at = extra;
  const uint64_t end = extra + length;
  while (end - at >= 4) {
    const uint16_t id = bytes.u16(at), field = bytes.u16(at + 2);
    if (end - at - 4 < field) return false;
    if (id == kZip64ExtraId) {
      return field >= 16 && bytes.u64(at + 4) == size && bytes.u64(at + 12) == size;
    }
    at += 4 + field;
  }
  return false;
}

// Checks the local header of `entry` against its directory entry and sets data_offset.
// Everything must lie before the central directory at `limit`.
void read_local_header(const Bytes& bytes, Entry& entry, uint64_t limit, const std::string& name) {
  const std::string at_entry = name + ": entry '" + printable(entry.name) + "'";
  const uint64_t p = entry.local_offset;
  if (p > limit || limit - p < kLocalSize) {
    throw FormatError(at_entry + ": local header offset " + str(p) +
                      " leaves no room for a header before the central directory at offset " +
                      str(limit));
  }
  if (bytes.u32(p) != kLocalSignature) {
    throw FormatError(at_entry + ": bad local header signature " + hex32(bytes.u32(p)) +
                      " at offset " + str(p) + ", expected " + hex32(kLocalSignature));
  }
  const uint16_t flags = bytes.u16(p + 6);
  const uint64_t name_length = bytes.u16(p + 26), extra_length = bytes.u16(p + 28);
  if (limit - p - kLocalSize < name_length + extra_length) {
    throw FormatError(at_entry +
                      ": local header name and extra field run into the central "
                      "directory");
  }
  if (bytes.text(p + kLocalSize, name_length) != entry.name) {
    throw FormatError(at_entry + ": local header names it '" +
                      printable(bytes.text(p + kLocalSize, name_length)) + "'");
  }
  if (bytes.u16(p + 8) != entry.method) {
    throw FormatError(at_entry + ": local header method " + str(bytes.u16(p + 8)) +
                      " differs from the central directory's " + str(entry.method));
  }
  const uint32_t crc = bytes.u32(p + 14), compressed = bytes.u32(p + 18), size = bytes.u32(p + 22);
  // With flag bit 3 the CRC and sizes may follow the data in a descriptor instead.
  const bool deferred = (flags & kFlagDataDescriptor) && crc == 0 && compressed == 0 && size == 0;
  const bool zip64 =
      compressed == kMax32 && size == kMax32 &&
      zip64_local_sizes_match(bytes, p + kLocalSize + name_length, extra_length, entry.size);
  if (!deferred &&
      (crc != entry.crc || (!zip64 && (compressed != entry.size || size != entry.size)))) {
    throw FormatError(at_entry + ": local header (CRC " + hex32(crc) + ", " + str(size) +
                      " bytes) disagrees with the central directory (CRC " + hex32(entry.crc) +
                      ", " + str(entry.size) + " bytes)");
  }
  entry.data_offset = p + kLocalSize + name_length + extra_length;
  if (limit - entry.data_offset < entry.size) {
    throw FormatError(at_entry + ": its " + str(entry.size) + " bytes of data at offset " +
                      str(entry.data_offset) + " run past the central directory at offset " +
                      str(limit) + " (truncated or corrupt archive)");
  }
}

}  // namespace

std::string printable(std::string_view text) {
  constexpr size_t kLimit = 80;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kLimit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (text.size() > kLimit) out += "...";
  return out;
}

void check_limits(const std::vector<MemberToWrite>& members, const std::string& what) {
  if (members.size() >= kMax16) {
    throw InvalidArgument(what + ": " + str(members.size()) +
                          " members need ZIP64; at most 65534 are supported");
  }
  uint64_t local_total = 0, directory_total = 0;
  for (const MemberToWrite& member : members) {
    if (member.name.size() > kMax16) {
      throw InvalidArgument(what + ": member name of " + str(member.name.size()) +
                            " bytes; at most 65535 are possible");
    }
    const uint64_t size = member_size(member);
    if (size >= kMax32 || local_total >= kMax32) {
      throw InvalidArgument(what + ": member '" + printable(member.name) +
                            "' would be 4 GiB or more, or start past 4 GiB; this writer does "
                            "not support ZIP64");
    }
    local_total += kLocalSize + member.name.size() + size;
    directory_total += kCentralSize + member.name.size();
  }
  if (local_total >= kMax32 || directory_total >= kMax32) {
    throw InvalidArgument(what +
                          ": the archive would be 4 GiB or more; this writer does not "
                          "support ZIP64");
  }
}

void write(const std::vector<MemberToWrite>& members, Sink& sink, const std::string& what) {
  check_limits(members, what);
  // check_limits guarantees that every size and offset below fits its 32-bit field.
  std::vector<uint8_t> directory;
  uint64_t offset = 0;
  for (const MemberToWrite& member : members) {
    const auto size = static_cast<uint32_t>(member_size(member));
    const auto name_length = static_cast<uint32_t>(member.name.size());
    // Fields shared by the local header and the directory entry, from "version needed".
    const auto common = [&](std::vector<uint8_t>& to, uint32_t crc) {
      put16(to, kVersion);  // version needed to extract
      put16(to, 0);         // flags
      put16(to, 0);         // method: stored
      put16(to, 0);         // time
      put16(to, kDosDate);
      put32(to, crc);
      put32(to, size);  // compressed size
      put32(to, size);
      put16(to, name_length);
      put16(to, 0);  // extra field length
    };
    std::vector<uint8_t> header;
    put32(header, kLocalSignature);
    common(header, 0);  // the CRC is patched in below
    header.insert(header.end(), member.name.begin(), member.name.end());
    sink.append(header);

    // In chunks, so that each piece is still in cache when it is written.
    constexpr size_t kChunk = size_t{1} << 20;
    uint32_t crc = 0;
    for (std::span<const uint8_t> part : member.parts) {
      while (!part.empty()) {
        const std::span<const uint8_t> chunk = part.first(std::min(part.size(), kChunk));
        crc = crc32(chunk, crc);
        sink.append(chunk);
        part = part.subspan(chunk.size());
      }
    }
    std::vector<uint8_t> crc_field;
    put32(crc_field, crc);
    sink.overwrite(offset + kCrcOffset, crc_field);

    put32(directory, kCentralSignature);
    put16(directory, kVersion);  // version made by: 2.0, MS-DOS attributes
    common(directory, crc);
    put16(directory, 0);  // comment length
    put16(directory, 0);  // disk number
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, static_cast<uint32_t>(offset));
    directory.insert(directory.end(), member.name.begin(), member.name.end());
    offset += header.size() + size;
  }
  std::vector<uint8_t> end;
  put32(end, kEndSignature);
  put16(end, 0);  // this disk
  put16(end, 0);  // disk of the directory
  put16(end, static_cast<uint32_t>(members.size()));
  put16(end, static_cast<uint32_t>(members.size()));
  put32(end, static_cast<uint32_t>(directory.size()));
  put32(end, static_cast<uint32_t>(offset));
  put16(end, 0);  // comment length
  sink.append(directory);
  sink.append(end);
}

std::vector<uint8_t> encode(const std::vector<MemberToWrite>& members, const std::string& what) {
  class VectorSink : public Sink {
   public:
    void append(std::span<const uint8_t> bytes) override {
      image.insert(image.end(), bytes.begin(), bytes.end());
    }
    void overwrite(uint64_t offset, std::span<const uint8_t> bytes) override {
      std::copy(bytes.begin(), bytes.end(), image.begin() + static_cast<ptrdiff_t>(offset));
    }
    std::vector<uint8_t> image;
  };
  VectorSink sink;
  write(members, sink, what);
  return std::move(sink.image);
}

std::vector<Member> parse(std::span<const uint8_t> image, const std::string& name) {
  const Bytes bytes(image);
  const EndRecord end = find_end_record(bytes, name);

  std::vector<Entry> entries;
  std::set<std::string> names;
  uint64_t at = end.directory_offset;
  for (uint64_t i = 0; i < end.entries; ++i) {
    Entry entry = read_directory_entry(bytes, &at, end.position, i, name);
    if (!names.insert(entry.name).second) {
      throw FormatError(name + ": entry '" + printable(entry.name) + "' appears twice");
    }
    read_local_header(bytes, entry, end.directory_offset, name);
    entries.push_back(std::move(entry));
  }
  if (at != end.position) {
    throw FormatError(name + ": " + str(end.position - at) +
                      " unexplained bytes after the central directory's " + str(end.entries) +
                      " entries");
  }

  // Overlapping members would let a small file expand into many large arrays.
  std::vector<const Entry*> by_offset;
  for (const Entry& entry : entries) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->local_offset < b->local_offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& before = *by_offset[i - 1];
    if (before.data_offset + before.size > by_offset[i]->local_offset) {
      throw FormatError(name + ": entries '" + printable(before.name) + "' and '" +
                        printable(by_offset[i]->name) + "' overlap");
    }
  }

  std::vector<Member> members;
  for (const Entry& entry : entries) {
    const std::span<const uint8_t> data = bytes.span(entry.data_offset, entry.size);
    const uint32_t crc = crc32(data);
    if (crc != entry.crc) {
      throw FormatError(name + ": entry '" + printable(entry.name) +
                        "': CRC-32 mismatch: " + "the archive says " + hex32(entry.crc) +
                        ", the data has " + hex32(crc) + " (corrupt archive)");
    }
    members.push_back({entry.name, data});
  }
  return members;
}

}  // namespace dfss::io::zip
