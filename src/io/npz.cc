#include "io/npz.h"

#include <set>

#include "dfss/errors.h"
#include "io/atomic_file.h"
#include "io/file_bytes.h"
#include "io/zip.h"

namespace dfss::io {
namespace {

constexpr std::string_view kSuffix = ".npy";

void check_name(const std::string& name, const std::string& what) {
  bool ok = !name.empty();
  for (const char c : name) ok = ok && c >= 0x20 && c < 0x7F && c != '/' && c != '\\';
  if (!ok) {
    throw InvalidArgument(what + ": entry name '" + zip::printable(name) +
                          "': expected non-empty printable ASCII without '/' or '\\'");
  }
}

std::vector<uint8_t> encode(const std::vector<NpzEntry>& entries, const std::string& what) {
  std::set<std::string> names;
  std::vector<std::string> headers;  // kept alive for the spans below
  headers.reserve(entries.size());
  std::vector<zip::MemberToWrite> members;
  for (const NpzEntry& entry : entries) {
    check_name(entry.name, what);
    if (!names.insert(entry.name).second) {
      throw InvalidArgument(what + ": entry name '" + entry.name + "' appears twice");
    }
    try {
      headers.push_back(encode_npy_header(entry.array));
    } catch (const InvalidArgument& e) {
      throw InvalidArgument(what + ": entry '" + entry.name + "': " + e.what());
    }
    const std::string& header = headers.back();
    members.push_back({entry.name + std::string(kSuffix),
                       {{reinterpret_cast<const uint8_t*>(header.data()), header.size()},
                        npy_data(entry.array)}});
  }
  return zip::encode(members, what);
}

}  // namespace

std::vector<uint8_t> encode_npz(const std::vector<NpzEntry>& entries) {
  return encode(entries, "encode_npz");
}

void write_npz(const std::string& path, const std::vector<NpzEntry>& entries) {
  const std::vector<uint8_t> image = encode(entries, path);
  write_file_atomically(path, {image});
}

std::vector<NpzEntry> parse_npz(std::span<const uint8_t> bytes, const std::string& name) {
  std::vector<NpzEntry> entries;
  for (const zip::Member& member : zip::parse(bytes, name)) {
    const std::string where = name + ": entry '" + zip::printable(member.name) + "'";
    const std::string_view member_name = member.name;
    if (member_name.size() <= kSuffix.size() || !member_name.ends_with(kSuffix)) {
      throw FormatError(where + ": expected a member named '<key>.npy', as np.savez writes");
    }
    entries.push_back({member.name.substr(0, member.name.size() - kSuffix.size()),
                       parse_npy(member.data, where)});
  }
  return entries;
}

std::vector<NpzEntry> read_npz(const std::string& path) {
  const std::vector<uint8_t> bytes = read_regular_file(path, "an .npz file");
  return parse_npz(bytes, path);
}

const NpyArray* find_npz_array(const std::vector<NpzEntry>& entries, std::string_view name) {
  for (const NpzEntry& entry : entries) {
    if (entry.name == name) return &entry.array;
  }
  return nullptr;
}

}  // namespace dfss::io
