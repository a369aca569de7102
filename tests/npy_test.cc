#include "io/npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "dfss/errors.h"
#include "temp_dir.h"
#include "test_helpers.h"

namespace dfss::io {
namespace {

using test::message_of;
using test::starts_with;
using test::TempDir;
using test::write_file;

// A .npy image: preamble of `major`.0 with the exact header length, then header, then data.
std::string image(const std::string& header, const std::string& data = "", int major = 1) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const size_t length = header.size();
  out += static_cast<char>(length & 0xFF);
  out += static_cast<char>((length >> 8) & 0xFF);
  if (major > 1) {
    out += static_cast<char>((length >> 16) & 0xFF);
    out += static_cast<char>(length >> 24);
  }
  return out + header + data;
}

std::string f32_bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4);
}

std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

NpyArray parse(const std::string& bytes, const std::string& name = "mem.npy") {
  return parse_npy({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, name);
}

TEST(NpyTest, RoundTripF32ThroughFile) {
  TempDir dir;
  const std::string path = dir.file("a.npy");
  const std::vector<float> values = {0.0f,
                                     -0.0f,
                                     1.5f,
                                     -2.25f,
                                     1e-30f,
                                     std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::denorm_min()};
  write_npy(path, values.data(), {2, 1, 4});
  const NpyArray array = read_npy(path);
  EXPECT_EQ(array.dtype, NpyDType::f32);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 1, 4}));
  ASSERT_EQ(array.f32.size(), values.size());
  EXPECT_EQ(std::memcmp(array.f32.data(), values.data(), values.size() * 4), 0);
  // The data starts 64-byte aligned, as the NumPy spec asks.
  EXPECT_EQ(std::filesystem::file_size(path), 128u + values.size() * 4);
}

TEST(NpyTest, HeaderMatchesNumPy) {
  TempDir dir;
  const std::string path = dir.file("a.npy");
  const std::vector<float> values(6, 1.0f);
  write_npy(path, values.data(), {2, 3});
  // What np.save(path, np.ones((2, 3), np.float32)) writes.
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string expected =
      image(header + std::string(128 - 10 - header.size() - 1, ' ') + "\n", f32_bytes(values));
  EXPECT_EQ(read_file(path), expected);

  write_npy(path, values.data(), {6});
  EXPECT_NE(read_file(path).find("'shape': (6,), }"), std::string::npos);
  write_npy(path, values.data(), {});  // 0-d: one element
  EXPECT_NE(read_file(path).find("'shape': (), }"), std::string::npos);
}

TEST(NpyTest, RoundTripEveryDTypeInMemory) {
  NpyArray bools;
  bools.dtype = NpyDType::bool_;
  bools.shape = {3};
  bools.bool_ = {1, 0, 1};
  NpyArray doubles;
  doubles.dtype = NpyDType::f64;
  doubles.shape = {1, 2};
  doubles.f64 = {3.5, -1e300};
  NpyArray ints;
  ints.dtype = NpyDType::i64;
  ints.shape = {2};
  ints.i64 = {std::numeric_limits<int64_t>::min(), 7};
  NpyArray empty;
  empty.shape = {0, 5};
  for (const NpyArray& array : {bools, doubles, ints, empty}) {
    const std::vector<uint8_t> bytes = encode_npy(array);
    EXPECT_EQ((bytes.size() - array.numel() * npy_dtype_size(array.dtype)) % 64, 0u);
    const NpyArray back = parse_npy(bytes, "mem");
    EXPECT_EQ(back.dtype, array.dtype);
    EXPECT_EQ(back.shape, array.shape);
    EXPECT_EQ(back.f32, array.f32);
    EXPECT_EQ(back.bool_, array.bool_);
    EXPECT_EQ(back.f64, array.f64);
    EXPECT_EQ(back.i64, array.i64);
  }
}

TEST(NpyTest, AcceptsEveryVersionAndHeaderSpelling) {
  const std::string data = f32_bytes({1, 2, 3, 4, 5, 6});
  const std::vector<std::string> headers = {
      dict("<f4", "False", "(2, 3)"),
      "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}",  // no padding
      "{'shape': (2,3,), 'fortran_order': False, 'descr': '<f4'}   \n",     // any key order
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n",    // Python 2
      " { 'descr' : '<f4' ,\n 'fortran_order' : False , 'shape' : ( 2 , 3 ) } \t\n",
  };
  for (int major : {1, 2, 3}) {
    for (const std::string& header : headers) {
      SCOPED_TRACE(header + " version " + std::to_string(major));
      const NpyArray array = parse(image(header, data, major));
      EXPECT_EQ(array.shape, (std::vector<int64_t>{2, 3}));
      EXPECT_EQ(array.f32, (std::vector<float>{1, 2, 3, 4, 5, 6}));
    }
  }
  EXPECT_EQ(parse(image(dict("<f4", "False", "()"), f32_bytes({9}))).f32, std::vector<float>{9});
  EXPECT_EQ(parse(image(dict("<f4", "False", "(0, 1000000000000)"))).numel(), 0);
  // The other dimensions' product overflows 64 bits (a fuzzer finding: numel() overflowed).
  EXPECT_EQ(parse(image(dict("<f8", "False", "(490, 2547685477758, 85477758, 0)"))).numel(), 0);
}

struct MalformedCase {
  const char* name;
  std::string bytes;
  const char* expected;  // a phrase the message must contain
};

std::vector<MalformedCase> malformed_cases() {
  const std::string six = f32_bytes({1, 2, 3, 4, 5, 6});
  const std::string ok = dict("<f4", "False", "(2, 3)");
  std::string beyond = image(ok, six);
  beyond[8] = static_cast<char>(200);  // header length 200 in a 100-odd-byte file
  beyond.resize(60);
  std::string big_shape = "(";
  for (int i = 0; i < 33; ++i) big_shape += "1, ";
  big_shape += ")";
  return {
      {"empty_file", "", "file is empty"},
      {"shorter_than_magic", "\x93NUM", "magic string"},
      {"bad_magic", "\x93NUMPZ" + image(ok, six).substr(6), "magic string"},
      {"text_file", "hello, world\n", "magic string"},
      {"cut_in_version", "\x93NUMPY\x01", "format version"},
      {"version_1_1", "\x93NUMPY\x01\x01" + image(ok, six).substr(8), "format version 1.1"},
      {"version_4_0", "\x93NUMPY\x04" + image(ok, six).substr(7), "format version 4.0"},
      {"cut_in_header_length", std::string("\x93NUMPY\x02\x00\x10\x00", 10), "header length"},
      {"header_beyond_file", beyond, "header length field says 200"},
      {"missing_key", image("{'descr': '<f4', 'fortran_order': False}", six),
       "missing the key 'shape'"},
      {"unknown_key", image("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", six),
       "unexpected key 'x'"},
      {"duplicate_key",
       image("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", six),
       "duplicate key 'descr'"},
      {"no_opening_brace", image("'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", six),
       "to start with '{'"},
      {"missing_colon", image("{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}", six),
       "expected ':' after the key"},
      {"unterminated_string", image("{'descr: '<f4', 'fortran_order': False, 'shape': (6,)}", six),
       "expected ':'"},
      {"missing_closing_brace",
       image("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", six), "',' or '}'"},
      {"text_after_dict", image(ok + "x", six), "only whitespace after"},
      {"unquoted_key", image("{descr: '<f4', 'fortran_order': False, 'shape': (6,)}", six),
       "a quoted key"},
      {"empty_header", image("", six), "to start with '{'"},
      {"nul_in_header", image(std::string("{'descr': '<f4'\0", 16), six), "',' or '}'"},
      {"fortran_order_true", image(dict("<f4", "True", "(2, 3)"), six), "fortran_order is True"},
      {"fortran_order_not_bool", image(dict("<f4", "0", "(2, 3)"), six), "True or False"},
      {"fortran_order_prefix", image(dict("<f4", "Falsey", "(2, 3)"), six), "True or False"},
      {"unsupported_dtype", image(dict("<i2", "False", "(2, 3)"), six), "unsupported dtype '<i2'"},
      {"big_endian", image(dict(">f4", "False", "(2, 3)"), six), "'>f4' (big-endian)"},
      {"structured_dtype",
       image("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", six),
       "structured dtype"},
      {"negative_dimension", image(dict("<f4", "False", "(-2, 3)"), six), "negative dimension -2"},
      {"dimension_overflow", image(dict("<f4", "False", "(99999999999999999999,)"), six),
       "does not fit in 64 bits"},
      {"product_overflow", image(dict("<f4", "False", "(4294967296, 4294967296)"), six),
       "overflows"},
      {"byte_size_overflow", image(dict("<f4", "False", "(4611686018427387904,)"), six),
       "overflows"},
      {"shape_not_tuple", image(dict("<f4", "False", "(6)"), six), "is not a tuple"},
      {"shape_leading_zero", image(dict("<f4", "False", "(06,)"), six), "leading zeros"},
      {"shape_float", image(dict("<f4", "False", "(6.0,)"), six), "',' or ')'"},
      {"too_many_dimensions", image(dict("<f4", "False", big_shape), six), "more than 32"},
      {"truncated_data", image(ok, six.substr(0, 20)), "truncated data"},
      {"no_data", image(ok), "truncated data"},
      {"trailing_data", image(ok, six + "abcd"), "trailing data"},
      {"bool_not_0_or_1", image(dict("|b1", "False", "(2,)"), "\x01\x02"), "expected 0 or 1"},
  };
}

// Names the case in test output instead of dumping its bytes.
void PrintTo(const MalformedCase& c, std::ostream* os) {
  *os << c.name;
}

class NpyMalformedTest : public testing::TestWithParam<MalformedCase> {};

TEST_P(NpyMalformedTest, FileGivesFormatErrorNamingIt) {
  TempDir dir;
  const std::string path = dir.file("bad.npy");
  write_file(path, GetParam().bytes);
  const std::string message = message_of<FormatError>([&] { read_npy(path); });
  EXPECT_TRUE(starts_with(message, path + ": ")) << message;
  EXPECT_NE(message.find(GetParam().expected), std::string::npos) << message;
}

TEST_P(NpyMalformedTest, MemoryGivesTheSameError) {
  const std::string message = message_of<FormatError>([&] { parse(GetParam().bytes, "buf"); });
  EXPECT_TRUE(starts_with(message, "buf: ")) << message;
  EXPECT_NE(message.find(GetParam().expected), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Npy, NpyMalformedTest, testing::ValuesIn(malformed_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(NpyTest, EveryPrefixOfAValidFileIsAFormatError) {
  const std::string bytes = image(dict("<f4", "False", "(2, 3)"), f32_bytes({1, 2, 3, 4, 5, 6}));
  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_THROW(parse(bytes.substr(0, length)), FormatError) << length;
  }
}

TEST(NpyTest, FileSystemErrorsAreIoErrors) {
  TempDir dir;
  const std::string missing = dir.file("missing.npy");
  std::string message = message_of<IoError>([&] { read_npy(missing); });
  EXPECT_TRUE(starts_with(message, missing + ": cannot open")) << message;

  message = message_of<IoError>([&] { read_npy(dir.path().string()); });
  EXPECT_TRUE(starts_with(message, dir.path().string() + ": is a directory")) << message;
}

TEST(NpyTest, FailedWriteLeavesNothingBehind) {
  TempDir dir;
  const std::vector<float> values(4, 1.0f);

  const std::string no_dir = dir.file("no/such/dir/out.npy");
  std::string message = message_of<IoError>([&] { write_npy(no_dir, values.data(), {4}); });
  EXPECT_TRUE(starts_with(message, no_dir + ": ")) << message;

  // A directory cannot be replaced by a file; it stays, and no temporary file is left.
  const std::string directory = dir.file("taken");
  std::filesystem::create_directory(directory);
  message = message_of<IoError>([&] { write_npy(directory, values.data(), {4}); });
  EXPECT_TRUE(starts_with(message, directory + ": ")) << message;
  EXPECT_TRUE(std::filesystem::is_directory(directory));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);

  message = message_of<InvalidArgument>([&] { write_npy(dir.file("x.npy"), values.data(), {-4}); });
  EXPECT_TRUE(starts_with(message, dir.file("x.npy") + ": invalid shape")) << message;
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.npy")));
}

TEST(NpyTest, WriteReplacesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("a.npy");
  write_file(path, std::string(1000, 'x'));
  const std::vector<float> values = {4, 5};
  write_npy(path, values.data(), {2});
  EXPECT_EQ(read_npy(path).f32, values);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

}  // namespace
}  // namespace dfss::io
