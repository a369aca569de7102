#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

// A .safetensors image: the 8-byte little-endian header length, the header, the data.
std::string image(const std::string& header, const std::string& data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return out + header + data;
}

// One header entry, written by hand so that tests can also write malformed ones.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// "{entries}", by default padded with spaces to a multiple of 8 bytes as the official
// writer does, so that the data section is aligned.
std::string header(const std::string& entries, bool pad = true) {
  std::string text = "{" + entries + "}";
  if (pad) text.resize((text.size() + 7) / 8 * 8, ' ');
  return text;
}

// `bytes` with the header length field overwritten by `length`.
std::string with_length(std::string bytes, uint64_t length) {
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  return bytes;
}

template <typename T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

SafetensorsFile parse(const std::string& bytes, const std::string& name = "bad.safetensors") {
  return SafetensorsFile::parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                                name);
}

// Seven tensors of different dtypes (one empty) and metadata, data in name order.
std::string sample_image() {
  const std::string data = bytes_of<float>({1.5f, -2.0f, 0.25f, 1e-30f, -0.0f, 3.0f}) +  // a
                           bytes_of<uint16_t>({0x3F80, 0xC040}) +                        // bf
                           bytes_of<uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001}) +        // h
                           bytes_of<int64_t>({-7}) +                                     // i
                           std::string("\x01\x00\x01", 3) +                              // m
                           std::string("\x2A", 1);                                       // u
  const std::string entries =
      "\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"}," + entry("a", "F32", "[2,3]", 0, 24) +
      "," + entry("bf", "BF16", "[2]", 24, 28) + "," + entry("h", "F16", "[2,2]", 28, 36) + "," +
      entry("i", "I64", "[1]", 36, 44) + "," + entry("m", "BOOL", "[3]", 44, 47) + "," +
      entry("u", "U8", "[]", 47, 48) + "," + entry("z", "F32", "[0,4]", 48, 48);
  return image(header(entries), data);
}

void expect_sample(const SafetensorsFile& file) {
  ASSERT_EQ(file.tensors().size(), 7u);
  std::vector<std::string> names;
  for (const TensorInfo& tensor : file.tensors()) names.push_back(tensor.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "bf", "h", "i", "m", "u", "z"}));
  EXPECT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata().at("format"), "pt");

  const TensorInfo* a = file.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, SafetensorsDType::f32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->numel(), 6);
  EXPECT_EQ(file.read_f32("a", {2, 3}),
            (std::vector<float>{1.5f, -2.0f, 0.25f, 1e-30f, -0.0f, 3.0f}));
  const std::span<const float> view = file.view_f32("a", {2, 3});
  EXPECT_EQ(static_cast<const void*>(view.data()), static_cast<const void*>(a->bytes.data()));
  EXPECT_EQ(view[3], 1e-30f);

  EXPECT_EQ(file.read_f32("bf"), (std::vector<float>{1.0f, -3.0f}));
  EXPECT_EQ(file.read_f32("h", {2, 2}), (std::vector<float>{1.0f, -2.0f, 65504.0f, 0x1p-24f}));

  const TensorInfo& i = file.get("i", {1});
  EXPECT_EQ(i.dtype, SafetensorsDType::i64);
  int64_t value = 0;
  std::memcpy(&value, i.bytes.data(), 8);
  EXPECT_EQ(value, -7);
  EXPECT_EQ(file.get("m").bytes.size(), 3u);
  EXPECT_EQ(file.get("m").bytes[1], 0);
  EXPECT_EQ(file.get("u").shape, std::vector<int64_t>{});
  EXPECT_EQ(file.get("u").numel(), 1);
  EXPECT_EQ(file.get("u").bytes[0], 42);
  EXPECT_EQ(file.get("z").numel(), 0);
  EXPECT_TRUE(file.read_f32("z").empty());
  EXPECT_EQ(file.find("absent"), nullptr);
}

TEST(SafetensorsTest, ReadsEveryDTypeThroughFile) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  write_file(path, sample_image());
  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.name(), path);
  expect_sample(file);
}

TEST(SafetensorsTest, ParsesInMemoryWithoutCopying) {
  const std::string bytes = sample_image();
  const SafetensorsFile file = parse(bytes, "mem");
  expect_sample(file);
  // The views point into the caller's buffer.
  const auto* base = reinterpret_cast<const uint8_t*>(bytes.data());
  EXPECT_GE(file.get("a").bytes.data(), base);
  EXPECT_LE(file.get("z").bytes.data(), base + bytes.size());
}

TEST(SafetensorsTest, MoveKeepsTheBytesAlive) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  write_file(path, sample_image());
  SafetensorsFile first = SafetensorsFile::open(path);
  const std::span<const float> view = first.view_f32("a", {2, 3});
  SafetensorsFile second = std::move(first);
  EXPECT_TRUE(first.tensors().empty());  // a moved-from file holds no views
  EXPECT_EQ(view[0], 1.5f);
  SafetensorsFile third = SafetensorsFile::open(path);
  third = std::move(second);  // frees third's own bytes
  EXPECT_EQ(third.view_f32("a", {2, 3})[5], 3.0f);
}

TEST(SafetensorsTest, AcceptsAnEmptyFile) {
  const SafetensorsFile file = parse(image("{}      "));
  EXPECT_TRUE(file.tensors().empty());
  EXPECT_TRUE(file.metadata().empty());
}

TEST(SafetensorsTest, ShapeMismatchNamesFileTensorAndBothShapes) {
  const std::string name = "encoder.layer.0.attention.self.query.weight";
  const std::string bytes = image(header(entry(name, "F32", "[384,385]", 0, 384 * 385 * 4)),
                                  std::string(384 * 385 * 4, '\0'));
  const SafetensorsFile file = parse(bytes, "model.safetensors");
  EXPECT_EQ(message_of<FormatError>([&] {
              file.get(name, {384, 384});
            }),
            "model.safetensors: tensor '" + name + "': expected shape [384, 384], got [384, 385]");
  EXPECT_EQ(message_of<FormatError>([&] { file.read_f32(name, {384}); }),
            "model.safetensors: tensor '" + name + "': expected shape [384], got [384, 385]");
  EXPECT_EQ(file.view_f32(name, {384, 385}).size(), 384u * 385u);
}

TEST(SafetensorsTest, AccessorErrorsNameFileAndTensor) {
  const SafetensorsFile file = parse(sample_image(), "w.safetensors");
  EXPECT_EQ(message_of<FormatError>([&] { file.get("missing"); }),
            "w.safetensors: tensor 'missing': not found; the file has 7 tensors");
  EXPECT_EQ(
      message_of<FormatError>([&] { file.read_f32("i"); }),
      "w.safetensors: tensor 'i': dtype is I64; expected F32, F16 or BF16 to read as float32");
  const std::string f16 = message_of<FormatError>([&] { file.view_f32("h", {2, 2}); });
  EXPECT_TRUE(starts_with(f16, "w.safetensors: tensor 'h': dtype is F16; expected F32")) << f16;
}

TEST(SafetensorsTest, UnalignedF32IsCopiedButNotViewed) {
  // An unpadded header whose length is not a multiple of 4 misaligns the data section.
  const std::string text = header(entry("w", "F32", "[2]", 0, 8), /*pad=*/false);
  ASSERT_NE(text.size() % 4, 0u);
  const std::string bytes = image(text, bytes_of<float>({2.5f, -1.0f}));
  std::vector<uint64_t> storage(bytes.size() / 8 + 1);  // 8-byte aligned base
  std::memcpy(storage.data(), bytes.data(), bytes.size());
  const SafetensorsFile file = SafetensorsFile::parse(
      {reinterpret_cast<const uint8_t*>(storage.data()), bytes.size()}, "u.safetensors");
  EXPECT_EQ(file.read_f32("w"), (std::vector<float>{2.5f, -1.0f}));
  const std::string message = message_of<FormatError>([&] { file.view_f32("w", {2}); });
  EXPECT_TRUE(starts_with(message, "u.safetensors: tensor 'w': data at offset 0")) << message;
  EXPECT_NE(message.find("not 4-byte aligned"), std::string::npos) << message;
}

struct BadCase {
  const char* what;
  std::string bytes;
  std::string tensor;    // "" if the message names no tensor
  std::string fragment;  // must appear in the message
};

std::string f32x2(const std::string& name, uint64_t begin, uint64_t end) {
  return entry(name, "F32", "[2]", begin, end);
}

std::vector<BadCase> bad_cases() {
  const std::string eight(8, '\0');
  const std::string x = "\"x\":";
  return {
      {"short file", std::string("\x02\0\0\0\0", 5), "", "file is 5 bytes; expected at least 8"},
      {"header over cap", with_length(image(""), 200'000'000), "",
       "header length 200000000 exceeds the cap of 100000000 bytes"},
      {"header past file", with_length(image("{}"), 9), "",
       "header length 9 exceeds the 2 bytes after the length field"},
      {"not json", image("{\"x\":"), "", "header is not valid JSON"},
      {"bad utf-8", image("{\"\xff\":1}"), "", "header is not valid JSON"},
      {"trailing garbage", image("{} x"), "", "header is not valid JSON"},
      {"not an object", image("[1, 2]"), "",
       "header is an array of 2 elements; expected a JSON object"},
      {"duplicate tensor", image(header(f32x2("x", 0, 8) + "," + f32x2("x", 0, 8)), eight), "",
       "header has the key 'x' twice"},
      {"deep nesting", image(std::string(100, '[') + std::string(100, ']')), "", "nests deeper"},
      {"metadata not object", image("{\"__metadata__\":[]}"), "",
       "__metadata__ is an array of 0 elements; expected an object of strings"},
      {"metadata value", image("{\"__metadata__\":{\"k\":1}}"), "",
       "__metadata__ entry 'k' is 1; expected a string"},
      {"entry not object", image("{\"x\":3}"), "x", "entry is 3; expected an object"},
      {"missing dtype", image("{\"x\":{\"shape\":[],\"data_offsets\":[0,0]}}"), "x",
       "missing \"dtype\""},
      {"missing shape", image("{\"x\":{\"dtype\":\"U8\",\"data_offsets\":[0,0]}}"), "x",
       "missing \"shape\""},
      {"missing offsets", image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0]}}"), "x",
       "missing \"data_offsets\""},
      {"unknown key",
       image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],\"extra\":1}}"), "x",
       "unexpected key 'extra'; expected only dtype, shape and data_offsets"},
      {"unknown dtype", image(header(entry("x", "F8_E4M3", "[1]", 0, 1)), "\1"), "x",
       "dtype is the string \"F8_E4M3\"; expected one of F32, F16, BF16"},
      {"dtype not string", image("{\"x\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[0,4]}}"), "x",
       "dtype is 4; expected one of"},
      {"shape not array", image(header(entry("x", "U8", "3", 0, 3)), "abc"), "x",
       "shape is 3; expected an array of integers"},
      {"negative dim", image(header(entry("x", "U8", "[1,-3]", 0, 3)), "abc"), "x",
       "shape element 1 is -3; expected a non-negative integer"},
      {"float dim", image(header(entry("x", "U8", "[3.0]", 0, 3)), "abc"), "x",
       "shape element 0 is 3.0; expected a non-negative integer"},
      {"huge dim", image(header(entry("x", "U8", "[9223372036854775808]", 0, 3)), "abc"), "x",
       "shape element 0 is 9223372036854775808"},
      {"shape overflow", image(header(entry("x", "U8", "[4294967296,4294967296,0]", 0, 0))), "x",
       "shape has more than 2^63 - 1 elements"},
      {"offsets arity", image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0]}}"), "x",
       "data_offsets is [0]; expected [begin, end]"},
      {"offsets negative",
       image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[-1,-1]}}"), "x",
       "data_offsets is [-1,-1]; expected [begin, end] with non-negative integers"},
      {"offsets not array",
       image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":\"0\"}}"), "x",
       "data_offsets is the string \"0\""},
      {"begin after end", image(header(entry("x", "U8", "[0]", 5, 4)), "abcde"), "x",
       "data_offsets [5, 4] end before they begin"},
      {"end past data", image(header(f32x2("x", 0, 8)), "abc"), "x",
       "data_offsets [0, 8] run past the data section of 3 bytes"},
      {"size mismatch", image(header(f32x2("x", 0, 4)), "abcd"), "x",
       "F32 shape [2] needs 8 bytes, but data_offsets [0, 4] hold 4"},
      {"bytes overflow", image(header(entry("x", "F64", "[2305843009213693952]", 0, 8)), eight),
       "x", "needs more than 2^63 - 1 bytes"},
      {"overlap", image(header(f32x2("a", 0, 8) + "," + f32x2("x", 4, 12)), eight + "abcd"), "x",
       "data_offsets [4, 12] overlap tensor 'a', which ends at 8"},
      {"same range", image(header(f32x2("a", 0, 8) + "," + f32x2("x", 0, 8)), eight), "x",
       "overlap tensor 'a'"},
      {"gap", image(header(f32x2("a", 0, 8) + "," + f32x2("x", 12, 20)), eight + eight + "abcd"),
       "x", "data_offsets [12, 20] leave a gap; expected the tensor to begin at 8"},
      {"trailing data", image(header(f32x2("x", 0, 8)), eight + "t"), "",
       "data section has 9 bytes, but the tensors cover only the first 8"},
      {"bad bool", image(header(entry("x", "BOOL", "[3]", 0, 3)), std::string("\1\2\0", 3)), "x",
       "BOOL element 1 has byte value 2; expected 0 or 1"},
      {"rank over cap", image(header(entry("x", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1)), "a"), "x",
       "shape has more than 8 dimensions"},
      {"nested dim", image(header(entry("x", "U8", "[[1,2]]", 0, 2)), "ab"), "x",
       "shape element 0 is an array of 2 elements; expected a non-negative integer"},
      {"object dim", image(header(entry("x", "U8", "[1,{}]", 0, 1)), "a"), "x",
       "shape element 1 is an object; expected a non-negative integer"},
      {"shape object", image("{\"x\":{\"dtype\":\"U8\",\"shape\":{},\"data_offsets\":[0,0]}}"), "x",
       "shape is an object; expected an array of integers"},
      {"offsets nested",
       image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,[0],0]}}"), "x",
       "data_offsets is an array of 3 elements; expected [begin, end]"},
      {"offsets long",
       image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0,0,0,0,0]}}"), "x",
       "data_offsets is an array of 6 elements; expected [begin, end]"},
      {"offsets string",
       image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[\"0\",0]}}"), "x",
       "data_offsets is [\"0\",0]; expected [begin, end]"},
      {"dtype array", image("{\"x\":{\"dtype\":[\"U8\"],\"shape\":[0],\"data_offsets\":[0,0]}}"),
       "x", "dtype is an array of 1 elements; expected one of"},
      {"entry array", image("{\"x\":[1,2,3]}"), "x",
       "entry is an array of 3 elements; expected an object"},
      {"duplicate field",
       image("{\"x\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
       "", "header has the key 'dtype' twice"},
      {"duplicate metadata key", image("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}"), "",
       "header has the key 'k' twice"},
      {"metadata twice", image("{\"__metadata__\":{},\"__metadata__\":{}}"), "",
       "header has the key '__metadata__' twice"},
      {"metadata entry object", image("{\"__metadata__\":{\"k\":{}}}"), "",
       "__metadata__ entry 'k' is an object; expected a string"},
      {"negative zero", image(header(entry("x", "U8", "[-0]", 0, 0))), "x",
       "shape element 0 is -0; expected a non-negative integer"},
      {"scalar header", image("null"), "", "header is null; expected a JSON object"},
  };
}

TEST(SafetensorsTest, RejectsEveryViolationNamingFileAndTensor) {
  for (const BadCase& bad : bad_cases()) {
    SCOPED_TRACE(bad.what);
    const std::string message = message_of<FormatError>([&] { parse(bad.bytes); });
    const std::string prefix =
        bad.tensor.empty() ? "bad.safetensors: " : "bad.safetensors: tensor '" + bad.tensor + "': ";
    EXPECT_TRUE(starts_with(message, prefix)) << message;
    EXPECT_NE(message.find(bad.fragment), std::string::npos) << message;
  }
}

TEST(SafetensorsTest, OpenErrorsNameThePath) {
  TempDir dir;
  const std::string missing = dir.file("missing.safetensors");
  EXPECT_TRUE(starts_with(message_of<IoError>([&] { SafetensorsFile::open(missing); }),
                          missing + ": cannot open"));
  EXPECT_TRUE(starts_with(message_of<IoError>([&] { SafetensorsFile::open(dir.path().string()); }),
                          dir.path().string() + ": is a directory"));
  const std::string tiny = dir.file("tiny.safetensors");
  write_file(tiny, "abc");
  EXPECT_EQ(message_of<FormatError>([&] { SafetensorsFile::open(tiny); }),
            tiny + ": file is 3 bytes; expected at least 8 (the header length)");
  // A file that fails validation frees what it read (checked under ASan).
  const std::string bad = dir.file("bad.safetensors");
  write_file(bad, image(header(entry("w", "F32", "[3]", 0, 8)), std::string(8, '\0')));
  EXPECT_TRUE(starts_with(message_of<FormatError>([&] { SafetensorsFile::open(bad); }),
                          bad + ": tensor 'w': F32 shape [3] needs 12 bytes"));
}

TEST(SafetensorsTest, WidensEveryHalfExactly) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const int exponent = (bits >> 10) & 0x1F;
    const int mantissa = bits & 0x3FF;
    const float sign = bits & 0x8000 ? -1.0f : 1.0f;
    const float got = f16_to_f32(static_cast<uint16_t>(bits));
    if (exponent == 0x1F) {
      EXPECT_EQ(std::isnan(got), mantissa != 0) << bits;
      if (mantissa == 0) {
        EXPECT_EQ(got, sign * INFINITY) << bits;
      }
      continue;
    }
    // value = sign * (implicit bit + mantissa / 1024) * 2^(exponent - 15), subnormals
    // with exponent 1 and no implicit bit.
    const float expected = sign * std::ldexp(static_cast<float>((exponent ? 1024 : 0) + mantissa),
                                             (exponent ? exponent : 1) - 25);
    ASSERT_EQ(got, expected) << bits;
    ASSERT_EQ(std::signbit(got), (bits & 0x8000) != 0) << bits;
  }
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xFF80), -INFINITY);
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC1)));
}

// Reads a file written by the official Python package, if it is installed. DFSS_PYTHON
// names the interpreter (default python3); the suite never installs anything itself.
TEST(SafetensorsTest, ReadsFilesWrittenByThePythonPackage) {
  const char* env = std::getenv("DFSS_PYTHON");
  const std::string python = env != nullptr && *env != '\0' ? env : "python3";
  if (std::system(("'" + python + "' -c 'import safetensors, numpy' >/dev/null 2>&1").c_str()) !=
      0) {
    GTEST_SKIP() << python << " cannot import safetensors and numpy";
  }
  TempDir dir;
  const std::string script = dir.file("write.py");
  const std::string path = dir.file("official.safetensors");
  write_file(script, R"(import sys
import numpy as np
from safetensors.numpy import save_file
save_file({
    "encoder.layer.0.attention.self.query.weight":
        np.arange(12, dtype=np.float32).reshape(3, 4) / 8 - 0.5,
    "half": np.array([1.0, -2.5, 65504.0, 6e-8], dtype=np.float16),
    "ids": np.array([[1, 2], [3, -4]], dtype=np.int64),
    "mask": np.array([True, False, True]),
    "small": np.array([-1, 7], dtype=np.int8),
    "scalar": np.array(3.5, dtype=np.float64),
    "empty": np.zeros((0, 3), dtype=np.float32),
}, sys.argv[1], metadata={"format": "np", "source": "dfss test"})
)");
  ASSERT_EQ(std::system(("'" + python + "' '" + script + "' '" + path + "'").c_str()), 0);

  const SafetensorsFile file = SafetensorsFile::open(path);
  EXPECT_EQ(file.tensors().size(), 7u);
  EXPECT_EQ(file.metadata().at("format"), "np");
  EXPECT_EQ(file.metadata().at("source"), "dfss test");
  const std::span<const float> weight =
      file.view_f32("encoder.layer.0.attention.self.query.weight", {3, 4});
  for (size_t i = 0; i < weight.size(); ++i) EXPECT_EQ(weight[i], i / 8.0f - 0.5f) << i;
  const std::vector<float> half = file.read_f32("half", {4});
  EXPECT_EQ(half[0], 1.0f);
  EXPECT_EQ(half[1], -2.5f);
  EXPECT_EQ(half[2], 65504.0f);
  EXPECT_EQ(half[3], 0x1p-24f);  // 6e-8 rounds to the smallest subnormal
  const TensorInfo& ids = file.get("ids", {2, 2});
  EXPECT_EQ(ids.dtype, SafetensorsDType::i64);
  std::vector<int64_t> id_values(4);
  std::memcpy(id_values.data(), ids.bytes.data(), 32);
  EXPECT_EQ(id_values, (std::vector<int64_t>{1, 2, 3, -4}));
  EXPECT_EQ(file.get("mask", {3}).dtype, SafetensorsDType::bool_);
  EXPECT_EQ(file.get("mask").bytes[1], 0);
  EXPECT_EQ(file.get("small", {2}).dtype, SafetensorsDType::i8);
  const TensorInfo& scalar = file.get("scalar", {});
  double value = 0;
  std::memcpy(&value, scalar.bytes.data(), 8);
  EXPECT_EQ(value, 3.5);
  EXPECT_EQ(file.get("empty", {0, 3}).numel(), 0);
}

// Headers of `count` empty U8 tensors "t<i>", written in reverse name order.
std::string many_empty_tensors(int count) {
  std::string entries;
  entries.reserve(static_cast<size_t>(count) * 56);
  for (int i = count - 1; i >= 0; --i) {
    if (!entries.empty()) entries += ',';
    std::string name = "t";  // appended: GCC 12 warns falsely (-Wrestrict) on "t" + string
    name += std::to_string(i);
    entries += entry(name, "U8", "[0]", 0, 0);
  }
  return image(header(entries));
}

// Parsing is linear in the header size: this took minutes when the duplicate-key check
// made it quadratic. (bench/safetensors_header_bench.cc times it.)
TEST(SafetensorsTest, ParsesAHeaderOf200kTensors) {
  constexpr int kCount = 200'000;
  const SafetensorsFile file = parse(many_empty_tensors(kCount));
  ASSERT_EQ(file.tensors().size(), static_cast<size_t>(kCount));
  EXPECT_TRUE(
      std::is_sorted(file.tensors().begin(), file.tensors().end(),
                     [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; }));
  EXPECT_EQ(file.get("t123456", {0}).numel(), 0);
  EXPECT_EQ(file.get("t0").name, "t0");
}

// Huge arrays are refused or counted, never stored: these headers allocated gigabytes.
TEST(SafetensorsTest, HugeArraysInTheHeaderCostNoMemory) {
  constexpr size_t kElements = 5'000'000;
  std::string zeros;
  zeros.reserve(2 * kElements);
  for (size_t i = 0; i < kElements; ++i) zeros += i == 0 ? "0" : ",0";
  std::string message = message_of<FormatError>(
      [&] { parse(image("{\"x\":{\"dtype\":\"U8\",\"shape\":[" + zeros + "]}}")); });
  EXPECT_EQ(message, "bad.safetensors: tensor 'x': shape has more than 8 dimensions");
  message = message_of<FormatError>([&] {
    parse(image("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[" + zeros + "]}}"));
  });
  EXPECT_TRUE(starts_with(
      message, "bad.safetensors: tensor 'x': data_offsets is an array of 5000000 elements"))
      << message;
  message = message_of<FormatError>([&] { parse(image("{\"x\":[" + zeros + "]}")); });
  EXPECT_TRUE(starts_with(message, "bad.safetensors: tensor 'x': entry is an array of 5000000"))
      << message;
}

TEST(SafetensorsTest, MetadataEntriesAreCapped) {
  std::string entries;
  for (int i = 0; i <= 65536; ++i) {
    entries += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":\"v\"";
  }
  EXPECT_EQ(message_of<FormatError>([&] { parse(image("{\"__metadata__\":{" + entries + "}}")); }),
            "bad.safetensors: __metadata__ has more than 65536 entries");
}

}  // namespace
}  // namespace dfss::io
