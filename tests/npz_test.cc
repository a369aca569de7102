// Tests of the .npz archive writer and reader (src/io/npz.h, zip.h, crc32.h): round trips,
// strict rejection of malformed archives, and interchange with NumPy itself.
#include "io/npz.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "io/crc32.h"
#include "io/zip.h"
#include "temp_dir.h"

namespace dfss::io {
namespace {

using test::TempDir;

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

NpyArray f32_array(std::vector<int64_t> shape, std::vector<float> values) {
  NpyArray array;
  array.dtype = NpyDType::f32;
  array.shape = std::move(shape);
  array.f32 = std::move(values);
  return array;
}

NpyArray i32_array(std::vector<int64_t> shape, std::vector<int32_t> values) {
  NpyArray array;
  array.dtype = NpyDType::i32;
  array.shape = std::move(shape);
  array.i32 = std::move(values);
  return array;
}

NpyArray u16_array(std::vector<int64_t> shape, std::vector<uint16_t> values) {
  NpyArray array;
  array.dtype = NpyDType::u16;
  array.shape = std::move(shape);
  array.u16 = std::move(values);
  return array;
}

// A small archive with every dtype the scores export uses, an empty and a 0-d array.
std::vector<NpzEntry> sample_entries() {
  return {
      {"values", f32_array({2, 3}, {1.0f, -2.5f, 0.0f, 3.25f, -0.0f, 1e30f})},
      {"columns", i32_array({3}, {0, -7, 2147483647})},
      {"metadata", u16_array({2, 2}, {0x4, 0xE9, 0xFFFF, 0})},
      {"empty", f32_array({0, 5}, {})},
      {"scalar", i32_array({}, {42})},
  };
}

void expect_same(const std::vector<NpzEntry>& actual, const std::vector<NpzEntry>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(actual[i].name, expected[i].name);
    EXPECT_EQ(actual[i].array.dtype, expected[i].array.dtype);
    EXPECT_EQ(actual[i].array.shape, expected[i].array.shape);
    const std::span<const uint8_t> a = npy_data(actual[i].array), e = npy_data(expected[i].array);
    ASSERT_EQ(a.size(), e.size());
    EXPECT_TRUE(std::equal(a.begin(), a.end(), e.begin()));
  }
}

// Expects parse_npz(image) to throw a FormatError that starts with the archive's name and
// contains `expected`.
void expect_format_error(const std::vector<uint8_t>& image, const std::string& expected) {
  try {
    parse_npz(image, "x.npz");
    ADD_FAILURE() << "accepted; expected an error containing: " << expected;
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("x.npz: ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
}

void put16(std::vector<uint8_t>& image, size_t at, uint32_t value) {
  image[at] = static_cast<uint8_t>(value);
  image[at + 1] = static_cast<uint8_t>(value >> 8);
}
void put32(std::vector<uint8_t>& image, size_t at, uint32_t value) {
  put16(image, at, value & 0xFFFF);
  put16(image, at + 2, value >> 16);
}
uint32_t get32(const std::vector<uint8_t>& image, size_t at) {
  return image[at] | image[at + 1] << 8 | image[at + 2] << 16 | uint32_t{image[at + 3]} << 24;
}

// Offsets in an archive written by zip::encode (no comment, no extra fields).
size_t end_record(const std::vector<uint8_t>& image) {
  return image.size() - 22;
}
size_t directory(const std::vector<uint8_t>& image) {
  return get32(image, end_record(image) + 16);
}

TEST(Crc32, MatchesTheStandardCheckValueAndChains) {
  const std::string text = "123456789";
  EXPECT_EQ(crc32(bytes_of(text)), 0xCBF43926u);
  EXPECT_EQ(crc32(bytes_of(text.substr(4)), crc32(bytes_of(text.substr(0, 4)))), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
}

TEST(NpyIntegerDTypes, RoundTripInt32AndUint16) {
  for (const NpyArray& array :
       {i32_array({2, 2}, {-1, 0, 1, INT32_MIN}), u16_array({3}, {0, 0x8000, 0xFFFF})}) {
    const std::vector<uint8_t> image = encode_npy(array);
    const std::string text(image.begin(), image.end());
    EXPECT_NE(text.find(array.dtype == NpyDType::i32 ? "'<i4'" : "'<u2'"), std::string::npos);
    const NpyArray again = parse_npy(image, "mem");
    EXPECT_EQ(again.dtype, array.dtype);
    EXPECT_EQ(again.shape, array.shape);
    EXPECT_EQ(again.i32, array.i32);
    EXPECT_EQ(again.u16, array.u16);
  }
  EXPECT_STREQ(npy_dtype_name(NpyDType::i32), "int32");
  EXPECT_STREQ(npy_dtype_name(NpyDType::u16), "uint16");
  EXPECT_EQ(npy_dtype_size(NpyDType::u16), 2);
  // The data size is still checked against the shape for the new dtypes.
  std::vector<uint8_t> short_data = encode_npy(u16_array({3}, {1, 2, 3}));
  short_data.pop_back();
  EXPECT_THROW(parse_npy(short_data, "mem"), FormatError);
}

TEST(Npz, EncodeParseRoundTripIsDeterministic) {
  const std::vector<NpzEntry> entries = sample_entries();
  const std::vector<uint8_t> image = encode_npz(entries);
  EXPECT_EQ(image, encode_npz(entries));
  expect_same(parse_npz(image, "mem"), entries);
  EXPECT_TRUE(parse_npz(encode_npz({}), "mem").empty());
  const std::vector<NpzEntry> parsed = parse_npz(image, "mem");
  ASSERT_NE(find_npz_array(parsed, "metadata"), nullptr);
  EXPECT_EQ(find_npz_array(parsed, "metadata")->u16[1], 0xE9);
  EXPECT_EQ(find_npz_array(parsed, "nope"), nullptr);
}

TEST(Npz, WriteReadRoundTripReplacesAtomically) {
  const TempDir dir;
  const std::string path = dir.file("a.npz");
  std::ofstream(path) << "old contents";
  write_npz(path, sample_entries());
  expect_same(read_npz(path), sample_entries());
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  }
  // A failed write leaves the old file.
  EXPECT_THROW(write_npz(path, {{"", f32_array({1}, {1.0f})}}), InvalidArgument);
  expect_same(read_npz(path), sample_entries());
  EXPECT_THROW(write_npz(dir.file("missing/b.npz"), sample_entries()), IoError);
}

TEST(Npz, EncodeRejectsBadNamesAndShapes) {
  const NpyArray one = f32_array({1}, {1.0f});
  for (const std::string& name : {std::string(""), std::string("a/b"), std::string("a\\b"),
                                  std::string("tab\there"), std::string("\xc3\xa9")}) {
    SCOPED_TRACE(name);
    EXPECT_THROW(encode_npz({{name, one}}), InvalidArgument);
  }
  try {
    encode_npz({{"a", one}, {"a", one}});
    ADD_FAILURE() << "duplicate accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'a' appears twice"), std::string::npos) << e.what();
  }
  try {
    encode_npz({{"bad", f32_array({2}, {1.0f})}});
    ADD_FAILURE() << "wrong element count accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("entry 'bad'"), std::string::npos) << e.what();
  }
}

TEST(Npz, ReadReportsUnreadableFiles) {
  const TempDir dir;
  EXPECT_THROW(read_npz(dir.file("missing.npz")), IoError);
  try {
    read_npz(dir.path().string());
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(Npz, EveryTruncationIsAFormatError) {
  const std::vector<uint8_t> image = encode_npz(sample_entries());
  for (size_t size = 0; size < image.size(); ++size) {
    SCOPED_TRACE(size);
    const std::vector<uint8_t> prefix(image.begin(), image.begin() + size);
    EXPECT_THROW(parse_npz(prefix, "x.npz"), FormatError);
  }
  expect_format_error({}, "only 0 bytes");
  expect_format_error(std::vector<uint8_t>(image.begin(), image.end() - 1),
                      "no ZIP end-of-central-directory record");
}

TEST(Npz, EveryCorruptByteIsRejectedOrHarmless) {
  const std::vector<uint8_t> image = encode_npz(sample_entries());
  for (size_t at = 0; at < image.size(); ++at) {
    for (uint8_t flip : {0x01, 0x80, 0xFF}) {
      std::vector<uint8_t> corrupt = image;
      corrupt[at] ^= flip;
      try {
        parse_npz(corrupt, "x.npz");  // e.g. a changed timestamp is fine
      } catch (const FormatError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("x.npz: ", 0), 0u) << e.what();
      }
    }
  }
}

TEST(Npz, RejectsCorruptArchivesWithClearMessages) {
  const std::vector<NpzEntry> entries = {{"a", f32_array({2}, {1.0f, 2.0f})},
                                         {"b", i32_array({1}, {5})}};
  const std::vector<uint8_t> image = encode_npz(entries);
  const size_t end = end_record(image), dir = directory(image);
  const size_t a_data = 30 + 5;  // after a.npy's local header and name

  std::vector<uint8_t> bad = image;
  bad[a_data + 100] ^= 1;  // inside the float data of a.npy
  expect_format_error(bad, "entry 'a.npy': CRC-32 mismatch");

  bad = image;
  put16(bad, dir + 10, 8);  // central directory: deflate
  put16(bad, 8, 8);         // local header too
  expect_format_error(bad, "entry 'a.npy': is compressed (method 8, deflate)");

  bad = image;
  put16(bad, dir + 8, 1);
  expect_format_error(bad, "is encrypted");

  bad = image;
  put32(bad, dir + 42, static_cast<uint32_t>(dir));  // local header offset at the directory
  expect_format_error(bad, "entry 'a.npy': local header offset");

  bad = image;
  put32(bad, dir + 42, 3);
  expect_format_error(bad, "entry 'a.npy': bad local header signature");

  bad = image;
  put32(bad, 22, 0);  // local compressed size of a.npy
  expect_format_error(bad, "entry 'a.npy': local header");

  bad = image;
  put32(bad, dir + 20, get32(image, dir + 20) + 1);  // central compressed size only
  expect_format_error(bad, "compressed size");

  bad = image;
  put32(bad, dir + 20, get32(image, dir + 20) + 1000);  // both sizes: past the directory
  put32(bad, dir + 24, get32(image, dir + 24) + 1000);
  expect_format_error(bad, "entry 'a.npy': local header");

  bad = image;
  put16(bad, end + 10, 3);  // three entries, two present
  put16(bad, end + 8, 3);
  expect_format_error(bad, "central directory entry 2 is truncated");

  bad = image;
  put32(bad, end + 12, get32(image, end + 12) - 1);
  expect_format_error(bad, "does not end where the end record starts");

  bad = image;
  put16(bad, end + 4, 1);
  expect_format_error(bad, "multi-disk");

  bad = image;
  put16(bad, end + 8, 0xFFFF);
  put16(bad, end + 10, 0xFFFF);
  expect_format_error(bad, "ZIP64");

  bad = image;
  bad.push_back(0);  // a byte after the end record that its comment length does not cover
  expect_format_error(bad, "no ZIP end-of-central-directory record");

  // A comment that the end record announces is fine.
  bad = image;
  put16(bad, end + 20, 3);
  bad.insert(bad.end(), {'h', 'i', '!'});
  expect_same(parse_npz(bad, "x.npz"), entries);

  const std::vector<uint8_t> npy = encode_npy(f32_array({1}, {1.0f}));
  expect_format_error(npy, "this is a .npy file, not an .npz archive");
}

TEST(Npz, RejectsMembersThatAreNotNpyFiles) {
  const std::string npy = [] {
    const std::vector<uint8_t> image = encode_npy(f32_array({1}, {1.0f}));
    return std::string(image.begin(), image.end());
  }();
  const std::string garbage = "not numpy";
  const auto archive = [](std::vector<std::pair<std::string, const std::string*>> members) {
    std::vector<zip::MemberToWrite> to_write;
    for (const auto& [name, data] : members) to_write.push_back({name, {bytes_of(*data)}});
    return zip::encode(to_write, "test");
  };
  expect_format_error(archive({{"a.txt", &npy}}), "entry 'a.txt': expected a member named");
  expect_format_error(archive({{".npy", &npy}}), "entry '.npy': expected a member named");
  expect_format_error(archive({{"a.npy", &npy}, {"a.npy", &npy}}), "entry 'a.npy' appears twice");
  expect_format_error(archive({{"a.npy", &npy}, {"b.npy", &garbage}}),
                      "x.npz: entry 'b.npy': not a .npy file");
}

TEST(Npz, RejectsOverlappingMembers) {
  // a.npy's data holds a complete local header and data of b.npy; a second directory entry
  // pointing there would make the same bytes count twice.
  const std::string b_npy = [] {
    const std::vector<uint8_t> image = encode_npy(f32_array({1}, {1.0f}));
    return std::string(image.begin(), image.end());
  }();
  const std::vector<uint8_t> inner = zip::encode({{"b.npy", {bytes_of(b_npy)}}}, "inner");
  const size_t b_local_size = 30 + 5 + b_npy.size();
  const std::string a_data(inner.begin(), inner.begin() + b_local_size);
  std::vector<uint8_t> image = zip::encode({{"a.npy", {bytes_of(a_data)}}}, "outer");

  std::vector<uint8_t> b_entry(inner.begin() + directory(inner), inner.end() - 22);
  put32(b_entry, 42, 30 + 5);  // b's local header inside a's data
  const size_t end = end_record(image);
  image.insert(image.begin() + end, b_entry.begin(), b_entry.end());
  const size_t new_end = end + b_entry.size();
  put16(image, new_end + 8, 2);
  put16(image, new_end + 10, 2);
  put32(image, new_end + 12, get32(image, new_end + 12) + static_cast<uint32_t>(b_entry.size()));
  expect_format_error(image, "entries 'a.npy' and 'b.npy' overlap");
}

// A Python 3 that can import NumPy, or "" if there is none.
std::string python_with_numpy() {
  for (const char* python : {"python3", "/usr/bin/python3"}) {
    const std::string command = std::string(python) + " -c 'import numpy' >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return python;
  }
  return "";
}

int run_python(const std::string& python, const std::string& script_path) {
  const int status = std::system((python + " '" + script_path + "'").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Npz, NumpyReadsOurArchivesAndWeReadNumpys) {
  const std::string python = python_with_numpy();
  if (python.empty()) GTEST_SKIP() << "no python3 with numpy";
  const TempDir dir;
  const std::string ours = dir.file("ours.npz"), theirs = dir.file("theirs.npz");
  write_npz(ours, sample_entries());

  const std::string script = dir.file("check.py");
  std::ofstream(script)
      << "import numpy as np\n"
         "z = np.load('"
      << ours
      << "')\n"
         "assert z.files == ['values', 'columns', 'metadata', 'empty', "
         "'scalar'], z.files\n"
         "assert z['values'].dtype == np.float32 and z['values'].shape == (2, 3)\n"
         "assert z['values'][1, 2] == np.float32(1e30)\n"
         "assert z['columns'].dtype == np.int32\n"
         "assert list(z['columns']) == [0, -7, 2147483647]\n"
         "assert z['metadata'].dtype == np.uint16\n"
         "assert z['metadata'].tolist() == [[4, 0xE9], [0xFFFF, 0]]\n"
         "assert z['empty'].shape == (0, 5) and z['scalar'].shape == ()\n"
         "assert int(z['scalar']) == 42\n"
         "np.savez('"
      << theirs
      << "', f=np.arange(6, dtype='<f4').reshape(3, 2), "
         "i=np.array([-3, 9], dtype='<i4'), u=np.array([7], dtype='<u2'))\n";
  ASSERT_EQ(run_python(python, script), 0);

  const std::vector<NpzEntry> entries = read_npz(theirs);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "f");
  EXPECT_EQ(entries[0].array.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(entries[0].array.f32, (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(entries[1].array.i32, (std::vector<int32_t>{-3, 9}));
  EXPECT_EQ(entries[2].array.u16, (std::vector<uint16_t>{7}));
}

}  // namespace
}  // namespace dfss::io
