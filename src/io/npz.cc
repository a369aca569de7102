#include "io/npz.h"

#include <set>

#include "dfss/errors.h"
#include "io/file_bytes.h"
#include "io/output_set.h"
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

// The zip members of `entries`, checked; `headers` keeps the .npy headers they point to.
std::vector<zip::MemberToWrite> members_of(const std::vector<NpzEntry>& entries,
                                           const std::string& what,
                                           std::vector<std::string>& headers) {
  std::set<std::string> names;
  headers.clear();
  headers.reserve(entries.size());  // no reallocation: the spans below point into it
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
  return members;
}

class StagedFileSink : public zip::Sink {
 public:
  explicit StagedFileSink(StagedFile& file) : file_(file) {}
  void append(std::span<const uint8_t> bytes) override { file_.write(bytes); }
  void overwrite(uint64_t offset, std::span<const uint8_t> bytes) override {
    file_.write_at(offset, bytes);
  }

 private:
  StagedFile& file_;
};

}  // namespace

std::vector<uint8_t> encode_npz(const std::vector<NpzEntry>& entries) {
  const std::string what = "encode_npz";
  std::vector<std::string> headers;
  return zip::encode(members_of(entries, what, headers), what);
}

void write_npz(StagedFile& file, const std::vector<NpzEntry>& entries) {
  const std::string& what = file.target().label;
  std::vector<std::string> headers;
  const std::vector<zip::MemberToWrite> members = members_of(entries, what, headers);
  StagedFileSink sink(file);
  zip::write(members, sink, what);
}

void write_npz(const std::string& path, const std::vector<NpzEntry>& entries) {
  OutputSet outputs;
  write_npz(outputs.file(outputs.add(path)), entries);
  outputs.commit();
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
